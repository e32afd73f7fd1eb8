package main

// Mail as the service wires it from WALLETAUTH_* settings: `walletauth mail
// list` shows the outbox with mail off; the start log names the mode and no
// log line holds a code; a mail queued while the SMTP server is down is
// delivered, once, by the next instance.

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/config"
	"github.com/walletauth/walletauth/mail/mailtest"
	"github.com/walletauth/walletauth/passwords"
)

func TestMailListShowsTheCodes(t *testing.T) {
	dbURL := sqliteURL(t)
	a := newTestApp(t, withEnv("DATABASE_URL", dbURL))
	email := apitest.UniqueEmail(t)
	apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}), http.StatusAccepted)
	var out, errOut bytes.Buffer
	getenv := mapEnv(map[string]string{"WALLETAUTH_DATABASE_URL": dbURL})
	if err := run(context.Background(), []string{"mail", "list"}, getenv, &out, &errOut); err != nil {
		t.Fatalf("mail list: %v: %s", err, errOut.String())
	}
	if !strings.Contains(out.String(), email) || !strings.Contains(out.String(), a.lastCode(t, email)) {
		t.Errorf("mail list does not show the mail and its code:\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"mail", "list", "--json"}, getenv, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"text":`) {
		t.Errorf("--json: %s", out.String())
	}
}

// The log says at start whether mail is on, and never holds a code.
func TestMailLogNamesTheModeAndNoCode(t *testing.T) {
	srv := mailtest.Start(t)
	for _, mode := range []string{"off", "on"} {
		t.Run(mode, func(t *testing.T) {
			env := map[string]string{
				"WALLETAUTH_DATABASE_URL":    sqliteURL(t),
				"WALLETAUTH_SECRET_KEY_FILE": t.TempDir() + "/k",
				"WALLETAUTH_LOG_LEVEL":       "debug",
			}
			if mode == "on" {
				env["WALLETAUTH_SMTP_URL"] = srv.URL()
				env["WALLETAUTH_MAIL_FROM"] = "walletauth <no-reply@example.com>"
			}
			cfg, err := config.Load(mapEnv(env))
			if err != nil {
				t.Fatal(err)
			}
			var logBuf lockedBuffer
			params := passwords.TestParams()
			clock := newTestClock()
			ap, err := newApp(context.Background(), cfg, slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})),
				appOptions{now: clock.Now, passwordParams: &params})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ap.close() })
			a := &testApp{app: ap, clock: clock, Client: apitest.Client{Handler: ap.handler, IP: apitest.RandomIP(t)}}
			if !strings.Contains(logBuf.String(), `"mail is `+mode) {
				t.Errorf("the start log does not say mail is %s:\n%s", mode, logBuf.String())
			}
			email := apitest.UniqueEmail(t)
			a.Signup(t, email)
			verify := a.lastCode(t, email)
			a.otpLogin(t, email)
			apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}), http.StatusAccepted)
			reset := a.lastCode(t, email)
			apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/password/reset", map[string]string{"email": email, "code": reset, "password": "a-new-Password-77"}), http.StatusOK)
			if mode == "on" {
				srv.Wait(3, 10*time.Second)
				time.Sleep(100 * time.Millisecond) // the sender's log lines after the last delivery
			}
			for _, code := range []string{verify, reset} {
				if regexp.MustCompile(`(^|\D)` + code + `(\D|$)`).MatchString(logBuf.String()) {
					t.Errorf("the log holds the code %s:\n%s", code, logBuf.String())
				}
			}
		})
	}
}

// The SMTP server is down and the instance restarts: the queued mail is
// delivered by the next instance once the server is up, once.
func TestQueuedMailSurvivesARestart(t *testing.T) {
	srv := mailtest.Start(t)
	srv.Down()
	clock := newTestClock()
	env := []string{"DATABASE_URL", sqliteURL(t), "SMTP_URL", srv.URL(), "MAIL_FROM", "walletauth <no-reply@example.com>",
		"SECRET_KEY_FILE", t.TempDir() + "/k"}
	a := newTestApp(t, withEnv(env...), withClock(clock))
	email := apitest.UniqueEmail(t)
	apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}), http.StatusAccepted)
	// Wait for the failed attempt to be recorded, then stop the instance.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rows, err := newOutbox(a.cfg, a.db, a.now).List(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 1 && rows[0].Attempts == 1 && rows[0].LockedUntil == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox: %+v", rows)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	srv.Up()
	clock.Advance(time.Minute) // past the backoff
	newTestApp(t, withEnv(env...), withClock(clock))
	got := srv.Wait(1, 10*time.Second)
	if mailtest.Code(mailtest.Parse(t, got[0].Data).Parts["text/plain"]) == "" {
		t.Error("the delivered mail states no code")
	}
	// (Without Redis the code itself lived in the first instance's memory:
	// with one instance and no Redis a restart ends the codes in flight.)
	time.Sleep(100 * time.Millisecond)
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d deliveries, want 1", n)
	}
}
