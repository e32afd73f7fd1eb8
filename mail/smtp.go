package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// SMTPConfig says where and how mail is handed over.
type SMTPConfig struct {
	// URL is smtp://[user:pass@]host[:port] (STARTTLS when the server
	// offers it; port 587 by default) or smtps://[user:pass@]host[:port]
	// (implicit TLS; port 465 by default).
	URL string
	// From is the From header, e.g. `walletauth <no-reply@example.com>`.
	From string
	// Timeout bounds connecting and each SMTP command (default 10s).
	Timeout time.Duration
	// TLSConfig, when set, is used for STARTTLS and implicit TLS (e.g.
	// trusted roots); by default the system roots verify the server's
	// certificate for the URL's host.
	TLSConfig *tls.Config
}

// SMTP is a Transport over an SMTP server, through github.com/wneessen/go-mail.
// One connection per delivery: the outbox sends little, and a fresh
// connection never trips over a server that dropped an idle one.
type SMTP struct {
	host string
	opts []gomail.Option
	from string
}

// ParseSMTPURL checks an SMTP URL the way NewSMTP reads it.
func ParseSMTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Scheme != "smtp" && u.Scheme != "smtps" {
		return nil, errors.New("want smtp://[user:pass@]host:port or smtps://…")
	}
	if u.Hostname() == "" {
		return nil, errors.New("the URL names no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, errors.New("the port must be 1-65535")
		}
	}
	if u.Path != "" && u.Path != "/" {
		return nil, errors.New("the URL takes no path")
	}
	return u, nil
}

// NewSMTP returns the transport described by cfg.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	u, err := ParseSMTPURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("mail: SMTP URL: %w", err)
	}
	if _, err := parseFrom(cfg.From); err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	port := 587
	opts := []gomail.Option{gomail.WithTimeout(timeout)}
	if u.Scheme == "smtps" {
		port = 465
		opts = append(opts, gomail.WithSSL())
	} else {
		// STARTTLS when offered, plain otherwise (a relay on localhost).
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p) // checked by ParseSMTPURL
	}
	opts = append(opts, gomail.WithPort(port))
	if cfg.TLSConfig != nil {
		tc := cfg.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = u.Hostname()
		}
		opts = append(opts, gomail.WithTLSConfig(tc))
	}
	if u.User != nil && u.User.Username() != "" {
		pass, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(u.User.Username()), gomail.WithPassword(pass))
	}
	return &SMTP{host: u.Hostname(), opts: opts, from: cfg.From}, nil
}

func parseFrom(from string) (*gomail.Msg, error) {
	m := gomail.NewMsg()
	if err := m.From(from); err != nil {
		return nil, fmt.Errorf("mail: From %q: %w", from, err)
	}
	return m, nil
}

// Build turns an outbox row into the MIME message sent: multipart/alternative
// with the text/plain part first and the HTML part after it.
func (s *SMTP) Build(r Row) (*gomail.Msg, error) {
	m, err := parseFrom(s.from)
	if err != nil {
		return nil, err
	}
	if err := m.To(r.ToAddr); err != nil {
		return nil, &PermanentError{Err: fmt.Errorf("mail: recipient: %w", err)}
	}
	m.Subject(r.Subject)
	m.SetMessageIDWithValue(r.MessageID)
	m.SetDateWithValue(r.CreatedAt)
	m.SetBodyString(gomail.TypeTextPlain, r.TextBody)
	if r.HTMLBody != "" {
		m.AddAlternativeString(gomail.TypeTextHTML, r.HTMLBody)
	}
	return m, nil
}

// Send delivers r. A 5xx refusal is a *PermanentError; a server that cannot
// be reached, a 4xx and anything else are temporary.
func (s *SMTP) Send(ctx context.Context, r Row) error {
	m, err := s.Build(r)
	if err != nil {
		return err
	}
	c, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("mail: SMTP client: %w", err)
	}
	err = c.DialAndSendWithContext(ctx, m)
	if err == nil {
		return nil
	}
	if permanent(err) {
		return &PermanentError{Err: err}
	}
	return fmt.Errorf("mail: send: %w", err)
}

// permanent reports whether err is a 5xx refusal of this mail (at MAIL,
// RCPT or DATA). A 5xx before any mail (greeting, EHLO, AUTH: a wrong
// password, say) is about the server or the settings, not the mail: it is
// retried, so mail queued while an operator fixes the settings still goes.
func permanent(err error) bool {
	var se *gomail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		return code >= 500 && code < 600
	}
	return false
}
