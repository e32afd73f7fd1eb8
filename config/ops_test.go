package config_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/config"
)

// A bad WALLETAUTH_HTTP_ADDR is blamed on itself only, not on the SIWE
// settings whose defaults are made from it.
func TestBadHTTPAddrIsBlamedOnItself(t *testing.T) {
	for _, v := range []string{"http://127.0.0.1:8080", "localhost", "127.0.0.1:99999", "127.0.0.1:port", "a b:80"} {
		t.Run(v, func(t *testing.T) {
			_, err := config.Load(env("HTTP_ADDR", v))
			if err == nil {
				t.Fatalf("Load accepted HTTP_ADDR=%q", v)
			}
			msg := err.Error()
			if !strings.Contains(msg, "WALLETAUTH_HTTP_ADDR") {
				t.Errorf("error %q does not name WALLETAUTH_HTTP_ADDR", msg)
			}
			if strings.Contains(msg, "SIWE_") {
				t.Errorf("error %q blames a SIWE setting for a bad HTTP_ADDR", msg)
			}
		})
	}
	// An explicit SIWE_URI that is wrong is still reported beside it.
	_, err := config.Load(env("HTTP_ADDR", "localhost", "SIWE_DOMAIN", "a.example", "SIWE_URI", "https://b.example"))
	if err == nil || !strings.Contains(err.Error(), "WALLETAUTH_SIWE_URI") {
		t.Errorf("explicit bad SIWE_URI beside a bad HTTP_ADDR: %v", err)
	}
}

// Error messages are for a person: no raw Go error text (strconv, url)
// that repeats the value or speaks of parsing internals.
func TestErrorsHaveNoRawGoText(t *testing.T) {
	cases := [][2]string{
		{"HTTP_ADDR", "127.0.0.1:abc"},
		{"DATABASE_URL", "postgres://u:s3cret@h:badport/db"},
		{"DB_MAX_OPEN_CONNS", "99999999999999999999"},
		{"MEMORY_CHALLENGES_MAX", "1e6"},
		{"CHAIN_IDS", "99999999999999999999999"},
		{"RPC_URLS", "1=http://[::1"},
		{"TOKEN_TTL", "10"},
		{"PARTNER_RATE", "9999999999999999999999/1m"},
		{"CORS_ORIGINS", "http://[::1"},
	}
	for _, tc := range cases {
		_, err := config.Load(env(tc[0], tc[1]))
		if err == nil {
			t.Errorf("Load accepted %s=%q", tc[0], tc[1])
			continue
		}
		msg := err.Error()
		for _, raw := range []string{"strconv.", "invalid syntax", "parse \"", "s3cret", "value out of range"} {
			if strings.Contains(msg, raw) {
				t.Errorf("%s=%q: error %q has raw Go text %q", tc[0], tc[1], msg, raw)
			}
		}
	}
}

func TestUnknownVariables(t *testing.T) {
	got := config.Unknown([]string{
		"PATH=/usr/bin",
		"WALLETAUTH_CHAINIDS=1",
		"WALLETAUTH_HTTP_ADDR=:8080",
		"WALLETAUTH_TEST_DATABASE_URL=postgres://x",
		"WALLETAUTH_SECRETKEY=x",
		"WALLETAUTH_WHATEVER_THIS_IS=1",
		"WALLETAUTH_CHAINIDS=2",
	})
	want := []config.UnknownVariable{
		{Name: "WALLETAUTH_CHAINIDS", Suggestion: "WALLETAUTH_CHAIN_IDS"},
		{Name: "WALLETAUTH_SECRETKEY", Suggestion: "WALLETAUTH_SECRET_KEY"},
		{Name: "WALLETAUTH_WHATEVER_THIS_IS"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Unknown = %+v, want %+v", got, want)
	}
	var all []string
	for _, s := range config.Settings() {
		all = append(all, config.Prefix+s.Name+"=x")
	}
	if u := config.Unknown(all); len(u) != 0 {
		t.Errorf("known settings reported unknown: %+v", u)
	}
}

// With PostgreSQL there is no default key file: one per working directory
// would seal partners' keys differently for each CLI run.
func TestNoDefaultKeyFileWithPostgres(t *testing.T) {
	if c := mustLoad(t, "DATABASE_URL", "postgres://u@h:5432/db"); c.SecretKeyFile != "" {
		t.Errorf("PostgreSQL: SecretKeyFile = %q, want none", c.SecretKeyFile)
	}
	if c := mustLoad(t, "DATABASE_URL", "postgres://u@h:5432/db", "SECRET_KEY_FILE", "/run/secrets/k"); c.SecretKeyFile != "/run/secrets/k" {
		t.Errorf("PostgreSQL, explicit file: SecretKeyFile = %q", c.SecretKeyFile)
	}
	if c := mustLoad(t, "DATABASE_URL", "sqlite:///data/w.db"); c.SecretKeyFile != "/data/walletauth.key" {
		t.Errorf("SQLite: SecretKeyFile = %q, want beside the database", c.SecretKeyFile)
	}
}
