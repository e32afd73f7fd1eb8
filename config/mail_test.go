package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/walletauth/walletauth/config"
)

func TestMailSettings(t *testing.T) {
	c := mustLoad(t)
	if c.SMTPURL != "" || c.EmailCodeTTL != 10*time.Minute || c.SMTPTimeout != 10*time.Second ||
		c.MailGiveUpAfter != time.Hour || c.MailRetention != 24*time.Hour ||
		c.EmailSendPerAddress != (config.Rate{Max: 5, Window: time.Hour}) || c.EmailSendPerIP != (config.Rate{Max: 30, Window: time.Hour}) {
		t.Errorf("defaults: %+v", c)
	}
	c = mustLoad(t, "SMTP_URL", "smtps://u:p%40ss@smtp.example.com:465", "MAIL_FROM", "walletauth <no-reply@example.com>",
		"EMAIL_CODE_TTL", "5m", "EMAIL_SEND_PER_ADDRESS", "3/10m")
	if c.SMTPURL != "smtps://u:p%40ss@smtp.example.com:465" || c.EmailCodeTTL != 5*time.Minute || c.EmailSendPerAddress != (config.Rate{Max: 3, Window: 10 * time.Minute}) {
		t.Errorf("values: %+v", c)
	}
	mustLoad(t, "SMTP_URL", "smtp://127.0.0.1:1025", "MAIL_FROM", "no-reply@example.com")
}

func TestBadMailSettingsNameTheVariable(t *testing.T) {
	from := []string{"MAIL_FROM", "walletauth <no-reply@example.com>"}
	cases := []struct {
		name  string
		pairs []string
	}{
		{"SMTP_URL", append([]string{"SMTP_URL", "http://smtp.example.com"}, from...)},
		{"SMTP_URL", append([]string{"SMTP_URL", "smtp://"}, from...)},
		{"SMTP_URL", append([]string{"SMTP_URL", "smtp://h:70000"}, from...)},
		{"SMTP_URL", append([]string{"SMTP_URL", "smtp://h/x"}, from...)},
		{"MAIL_FROM", []string{"SMTP_URL", "smtp://h:25"}},
		{"MAIL_FROM", []string{"MAIL_FROM", "not an address"}},
		{"SMTP_TIMEOUT", []string{"SMTP_TIMEOUT", "soon"}},
		{"EMAIL_CODE_TTL", []string{"EMAIL_CODE_TTL", "0"}},
		{"MAIL_GIVE_UP_AFTER", []string{"MAIL_GIVE_UP_AFTER", "0s"}},
		{"MAIL_RETENTION", []string{"MAIL_RETENTION", "-1h"}},
		{"EMAIL_SEND_PER_ADDRESS", []string{"EMAIL_SEND_PER_ADDRESS", "5"}},
		{"EMAIL_SEND_PER_IP", []string{"EMAIL_SEND_PER_IP", "x/1h"}},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+strings.Join(tc.pairs, ","), func(t *testing.T) {
			_, err := config.Load(env(tc.pairs...))
			if err == nil {
				t.Fatalf("Load accepted %q", tc.pairs)
			}
			if !strings.Contains(err.Error(), config.Prefix+tc.name) {
				t.Errorf("error %q does not name %s%s", err, config.Prefix, tc.name)
			}
		})
	}
}
