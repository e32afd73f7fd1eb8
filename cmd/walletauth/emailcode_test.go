package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/walletauth/walletauth/config"
	walletmail "github.com/walletauth/walletauth/mail"
	"github.com/walletauth/walletauth/mail/mailtest"
	"github.com/walletauth/walletauth/passwords"
	"github.com/walletauth/walletauth/users"
	"github.com/walletauth/walletauth/wallet"
)

// lastCode is the code of the newest mail queued to email, read from the
// outbox as `walletauth mail list` does (mail is off in these apps).
func (a *testApp) lastCode(t testing.TB, email string) string {
	t.Helper()
	rows, err := newOutbox(a.cfg, a.db, a.now).List(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if users.EmailKey(r.ToAddr) == users.EmailKey(email) {
			code := mailtest.Code(r.TextBody)
			if code == "" {
				t.Fatalf("the mail to %s states no six-digit code:\n%s", email, r.TextBody)
			}
			return code
		}
	}
	t.Fatalf("no mail to %s in the outbox", email)
	return ""
}

func (a *testApp) mailCount(t testing.TB) int {
	t.Helper()
	rows, err := newOutbox(a.cfg, a.db, a.now).List(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

// otpLogin asks for a sign-in code and signs in with it.
func (a *testApp) otpLogin(t testing.TB, email string) (loginJSON, *http.Response) {
	t.Helper()
	rec := a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email})
	wantStatus(t, rec, http.StatusAccepted)
	rec = a.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": a.lastCode(t, email)})
	wantStatus(t, rec, http.StatusOK)
	var out loginJSON
	decodeJSON(t, rec, &out)
	return out, rec.Result()
}

func wrongCode(code string) string {
	if code == "999999" {
		return "999998"
	}
	return "999999"
}

func TestEmailOTPSignInCreatesAndLogsIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		email := uniqueEmail(t)
		rec := a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email})
		wantStatus(t, rec, http.StatusAccepted)
		var exp struct {
			ExpiresAt string `json:"expires_at"`
		}
		decodeJSON(t, rec, &exp)
		if at, err := time.Parse(time.RFC3339, exp.ExpiresAt); err != nil || !at.Equal(a.clock.Now().Add(10*time.Minute)) {
			t.Errorf("expires_at %q, want now + 10m", exp.ExpiresAt)
		}
		code := a.lastCode(t, email)
		rec = a.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": strings.ToUpper(email), "code": code})
		wantStatus(t, rec, http.StatusOK)
		if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
		var first loginJSON
		decodeJSON(t, rec, &first)
		if !first.Created || first.User.Email == nil || *first.User.Email != email || !first.User.EmailVerified {
			t.Fatalf("first code sign-in: %s", rec.Body)
		}
		if me := a.me(t, first.AuthToken); !me.EmailVerified {
			t.Error("GET /v1/users/me: email not verified")
		}
		// The code works once.
		rec = a.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": code})
		wantError(t, rec, http.StatusUnauthorized, "code_invalid")

		again, _ := a.otpLogin(t, email)
		if again.Created || again.User.ID != first.User.ID {
			t.Errorf("second code sign-in: created %v, id %s, want the same account", again.Created, again.User.ID)
		}
	})
}

// A password account whose email is not verified: a code sign-in logs into
// it (the mailbox is proven) and verifies the address. Whoever set the
// password never proved the mailbox (perhaps someone who signed up with
// another's address, to wait for its owner: pre-hijacking), so the password
// goes and the sessions it opened end; a verified account keeps both.
func TestEmailOTPLogsIntoAPasswordAccount(t *testing.T) {
	a := newTestApp(t)
	email := uniqueEmail(t)
	su := a.signup(t, email)
	if su.User.EmailVerified {
		t.Fatal("verified at signup")
	}
	got, _ := a.otpLogin(t, strings.ToUpper(email))
	if got.Created || got.User.ID != su.User.ID || !got.User.EmailVerified {
		t.Fatalf("code sign-in into the password account: %+v", got)
	}
	wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": testPassword}),
		http.StatusUnauthorized, "invalid_credentials")
	wantError(t, a.do(t, http.MethodGet, "/v1/users/me", nil, bearer(su.AuthToken)...), http.StatusUnauthorized, "unauthorized")
	wantStatus(t, a.do(t, http.MethodGet, "/v1/users/me", nil, bearer(got.AuthToken)...), http.StatusOK)

	// The owner sets a password again; from now on code sign-ins keep it.
	wantStatus(t, a.do(t, http.MethodPut, "/v1/users/me/password", map[string]string{"password": "a-new-Password-77"}, bearer(got.AuthToken)...), http.StatusOK)
	again, _ := a.otpLogin(t, email)
	a.login(t, email, "a-new-Password-77")
	wantStatus(t, a.do(t, http.MethodGet, "/v1/users/me", nil, bearer(got.AuthToken)...), http.StatusOK)
	if again.User.ID != su.User.ID {
		t.Fatalf("second code sign-in into another account: %+v", again)
	}
}

func TestEmailOTPErrors(t *testing.T) {
	a := newTestApp(t)
	wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": "not-an-email"}), http.StatusBadRequest, "invalid_email")
	wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", `{"email": 5}`), http.StatusBadRequest, "invalid_json")

	email := uniqueEmail(t)
	wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}), http.StatusAccepted)
	code := a.lastCode(t, email)
	rec := a.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": code, "referral_code": "NOSUCH99"})
	wantError(t, rec, http.StatusBadRequest, "invalid_referral_code")
	// The referral code's mistake did not use the code up; five wrong
	// tries then kill it.
	for i := 0; i < 5; i++ {
		rec = a.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": wrongCode(code)})
		wantError(t, rec, http.StatusUnauthorized, "code_invalid")
	}
	rec = a.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": code})
	wantError(t, rec, http.StatusUnauthorized, "code_invalid")

	// Expired after 10 minutes.
	wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}), http.StatusAccepted)
	code = a.lastCode(t, email)
	a.clock.Advance(10*time.Minute + time.Second)
	rec = a.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": code})
	wantError(t, rec, http.StatusUnauthorized, "code_invalid")
}

func TestEmailOTPWithReferralCode(t *testing.T) {
	a := newTestApp(t)
	referrer := a.signup(t, uniqueEmail(t))
	email := uniqueEmail(t)
	wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}), http.StatusAccepted)
	rec := a.do(t, http.MethodPost, "/v1/auth/email/otp/verify",
		map[string]string{"email": email, "code": a.lastCode(t, email), "referral_code": referrer.User.ReferralCode})
	wantStatus(t, rec, http.StatusOK)
	var got loginJSON
	decodeJSON(t, rec, &got)
	if got.User.Referrer == nil || *got.User.Referrer != referrer.User.Username {
		t.Errorf("referrer %v, want %s", got.User.Referrer, referrer.User.Username)
	}
}

func TestEmailCodeRequestsAreRateLimited(t *testing.T) {
	a := newTestApp(t)
	email := uniqueEmail(t)
	for i := 0; i < 5; i++ {
		wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}), http.StatusAccepted)
	}
	rec := a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": strings.ToUpper(email)})
	wantError(t, rec, http.StatusTooManyRequests, "rate_limited")
	if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 1 || s > 3600 {
		t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
	}
	wantError(t, a.do(t, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}), http.StatusTooManyRequests, "rate_limited")
	a.clock.Advance(time.Hour + time.Second)
	wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}), http.StatusAccepted)

	b := newTestApp(t, withEnv("EMAIL_SEND_PER_IP", "3/1h"))
	for i := 0; i < 3; i++ {
		wantStatus(t, b.do(t, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": uniqueEmail(t)}), http.StatusAccepted)
	}
	wantError(t, b.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": uniqueEmail(t)}), http.StatusTooManyRequests, "rate_limited")
}

// The same answer for a known and an unknown address.
func TestNoEnumeration(t *testing.T) {
	a := newTestApp(t)
	known := uniqueEmail(t)
	a.signup(t, known)
	for _, path := range []string{"/v1/auth/email/otp", "/v1/auth/password/forgot"} {
		k := a.do(t, http.MethodPost, path, map[string]string{"email": known})
		u := a.do(t, http.MethodPost, path, map[string]string{"email": uniqueEmail(t)})
		if k.Code != http.StatusAccepted || u.Code != k.Code || len(k.Body.String()) != len(u.Body.String()) {
			t.Errorf("%s: known %d %s, unknown %d %s", path, k.Code, k.Body, u.Code, u.Body)
		}
	}
	wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": "nonsense"}), http.StatusAccepted)
}

func TestPasswordResetEndsOtherSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		email := uniqueEmail(t)
		su := a.signup(t, email)
		other := a.login(t, email, testPassword)
		a.me(t, other.AuthToken) // cached on this instance

		wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": strings.ToUpper(email)}), http.StatusAccepted)
		code := a.lastCode(t, email)
		rec := a.do(t, http.MethodPost, "/v1/auth/password/reset", map[string]string{"email": email, "code": code, "password": "short"})
		wantError(t, rec, http.StatusBadRequest, "weak_password")
		rec = a.do(t, http.MethodPost, "/v1/auth/password/reset", map[string]string{"email": email, "code": wrongCode(code), "password": "a-new-Password-77"})
		wantError(t, rec, http.StatusUnauthorized, "code_invalid")
		rec = a.do(t, http.MethodPost, "/v1/auth/password/reset", map[string]string{"email": email, "code": code, "password": "a-new-Password-77"})
		wantStatus(t, rec, http.StatusOK)
		if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q", cc)
		}
		var got loginJSON
		decodeJSON(t, rec, &got)
		if got.Created || got.User.ID != su.User.ID || !got.User.EmailVerified {
			t.Fatalf("reset answer: %s", rec.Body)
		}
		a.wantUnauthorized(t, su.AuthToken)
		a.wantUnauthorized(t, other.AuthToken)
		a.me(t, got.AuthToken)
		wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": testPassword}),
			http.StatusUnauthorized, "invalid_credentials")
		a.login(t, email, "a-new-Password-77")
		// Used once.
		rec = a.do(t, http.MethodPost, "/v1/auth/password/reset", map[string]string{"email": email, "code": code, "password": "another-Password-88"})
		wantError(t, rec, http.StatusUnauthorized, "code_invalid")
	})
}

func TestPasswordResetOfUnknownAddressMailsNothing(t *testing.T) {
	a := newTestApp(t)
	n := a.mailCount(t)
	wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": uniqueEmail(t)}), http.StatusAccepted)
	if a.mailCount(t) != n {
		t.Error("a reset mail was queued for an address no account has")
	}
	rec := a.do(t, http.MethodPost, "/v1/auth/password/reset", map[string]string{"email": uniqueEmail(t), "code": "123456", "password": "a-new-Password-77"})
	wantError(t, rec, http.StatusUnauthorized, "code_invalid")
}

func TestSignupMailsAVerificationCode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		email := uniqueEmail(t)
		su := a.signup(t, email)
		rec := a.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": wrongCode(a.lastCode(t, email))}, bearer(su.AuthToken)...)
		wantError(t, rec, http.StatusUnauthorized, "code_invalid")
		rec = a.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": a.lastCode(t, email)}, bearer(su.AuthToken)...)
		wantStatus(t, rec, http.StatusOK)
		var u userJSON
		decodeJSON(t, rec, &u)
		if !u.EmailVerified || u.Email == nil || *u.Email != email {
			t.Fatalf("after confirm: %s", rec.Body)
		}
		if !a.me(t, su.AuthToken).EmailVerified {
			t.Error("GET /v1/users/me: not verified")
		}
		rec = a.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]any{}, bearer(su.AuthToken)...)
		wantError(t, rec, http.StatusConflict, "email_already_verified")
	})
}

func TestEmailVerificationResendAndChange(t *testing.T) {
	a := newTestApp(t)
	email := uniqueEmail(t)
	su := a.signup(t, email, "language", "de")
	rec := a.do(t, http.MethodPost, "/v1/users/me/email/verification", nil, bearer(su.AuthToken)...)
	wantStatus(t, rec, http.StatusAccepted)
	rows, err := newOutbox(a.cfg, a.db, a.now).List(context.Background(), 1)
	if err != nil || len(rows) != 1 || rows[0].Kind != walletmail.KindVerifyEmail || !strings.Contains(rows[0].TextBody, "bestätigen") {
		t.Fatalf("the resent verification mail is not the German one: %+v %v", rows, err)
	}

	taken := uniqueEmail(t)
	a.signup(t, taken)
	rec = a.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]string{"email": strings.ToUpper(taken)}, bearer(su.AuthToken)...)
	wantError(t, rec, http.StatusConflict, "email_taken")
	rec = a.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]string{"email": "bad"}, bearer(su.AuthToken)...)
	wantError(t, rec, http.StatusBadRequest, "invalid_email")

	// Change: the email changes only once the new mailbox is proven.
	newEmail := uniqueEmail(t)
	rec = a.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]string{"email": newEmail}, bearer(su.AuthToken)...)
	wantStatus(t, rec, http.StatusAccepted)
	if me := a.me(t, su.AuthToken); me.Email == nil || *me.Email != email {
		t.Fatalf("the email changed before the code was confirmed: %v", me.Email)
	}
	code := a.lastCode(t, newEmail)
	rec = a.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": code}, bearer(su.AuthToken)...)
	wantStatus(t, rec, http.StatusOK)
	me := a.me(t, su.AuthToken)
	if me.Email == nil || *me.Email != newEmail || !me.EmailVerified {
		t.Fatalf("after the change: %+v", me)
	}
	a.login(t, newEmail, testPassword)
	wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": testPassword}), http.StatusUnauthorized, "invalid_credentials")

	// Taken meanwhile: 409 at confirm.
	third := uniqueEmail(t)
	rec = a.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]string{"email": third}, bearer(su.AuthToken)...)
	wantStatus(t, rec, http.StatusAccepted)
	code = a.lastCode(t, third)
	a.signup(t, third)
	rec = a.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": code}, bearer(su.AuthToken)...)
	wantError(t, rec, http.StatusConflict, "email_taken")
	wantError(t, a.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": "123456"}), http.StatusUnauthorized, "unauthorized")
}

// A wallet-only account: no email to verify or to change a password of,
// until it adds one (POST /v1/users/me/email mails a code too).
func TestWalletAccountEmailNotSet(t *testing.T) {
	a := newTestApp(t)
	tok, _ := benchProfLoginT(t, a.router, benchProfKeysT(t, 1)[0])
	rec := a.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]any{}, bearer(tok)...)
	wantError(t, rec, http.StatusConflict, "email_not_set")
	rec = a.do(t, http.MethodPut, "/v1/users/me/password", map[string]string{"password": "a-new-Password-77"}, bearer(tok)...)
	wantError(t, rec, http.StatusConflict, "email_not_set")

	email := uniqueEmail(t)
	rec = a.do(t, http.MethodPost, "/v1/users/me/email", map[string]string{"email": email, "password": testPassword}, bearer(tok)...)
	wantStatus(t, rec, http.StatusOK)
	rec = a.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": a.lastCode(t, email)}, bearer(tok)...)
	wantStatus(t, rec, http.StatusOK)
	if me := a.me(t, tok); !me.EmailVerified || me.Email == nil || *me.Email != email {
		t.Fatalf("after adding and confirming the email: %+v", me)
	}

	// A wallet account can also take an email by verification alone.
	tok2, _ := benchProfLoginT(t, a.router, benchProfKeysT(t, 1)[0])
	email2 := uniqueEmail(t)
	wantStatus(t, a.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]string{"email": email2}, bearer(tok2)...), http.StatusAccepted)
	wantStatus(t, a.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": a.lastCode(t, email2)}, bearer(tok2)...), http.StatusOK)
	// It has no password: PUT /v1/users/me/password needs no current one.
	wantStatus(t, a.do(t, http.MethodPut, "/v1/users/me/password", map[string]string{"password": "a-new-Password-77"}, bearer(tok2)...), http.StatusOK)
	a.login(t, email2, "a-new-Password-77")
}

func TestChangePassword(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		email := uniqueEmail(t)
		su := a.signup(t, email)
		other := a.login(t, email, testPassword)
		a.me(t, other.AuthToken)
		put := func(body map[string]string) *httptest.ResponseRecorder {
			return a.do(t, http.MethodPut, "/v1/users/me/password", body, bearer(su.AuthToken)...)
		}
		wantError(t, put(map[string]string{"password": "a-new-Password-77"}), http.StatusUnauthorized, "invalid_credentials")
		wantError(t, put(map[string]string{"current_password": "wrong-password-1", "password": "a-new-Password-77"}), http.StatusUnauthorized, "invalid_credentials")
		wantError(t, put(map[string]string{"current_password": testPassword, "password": "password"}), http.StatusBadRequest, "weak_password")
		rec := put(map[string]string{"current_password": testPassword, "password": "a-new-Password-77"})
		wantStatus(t, rec, http.StatusOK)
		var u userJSON
		decodeJSON(t, rec, &u)
		if u.ID != su.User.ID {
			t.Errorf("answer: %s", rec.Body)
		}
		a.me(t, su.AuthToken) // this session stays
		a.wantUnauthorized(t, other.AuthToken)
		a.login(t, email, "a-new-Password-77")
		wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": testPassword}), http.StatusUnauthorized, "invalid_credentials")
	})
}

// Two instances sharing PostgreSQL and Redis: a code asked for on one is
// accepted once, on the other; the other's concurrent try is refused.
func TestEmailCodeAcrossTwoInstances(t *testing.T) {
	env := postgresEnv(t)
	if redisURL(t, true) == "" {
		return
	}
	clock := newTestClock()
	a := newTestApp(t, withEnv(env...), withClock(clock))
	b := newTestApp(t, withEnv(env...), withClock(clock))
	b.clientIP = a.clientIP
	email := uniqueEmail(t)
	wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}), http.StatusAccepted)
	code := b.lastCode(t, email)
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			app := a
			if i%2 == 1 {
				app = b
			}
			codes[i] = app.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": code}).Code
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized:
		default:
			t.Errorf("status %d", c)
		}
	}
	if ok != 1 {
		t.Errorf("%d of 8 concurrent uses accepted, want 1 (%v)", ok, codes)
	}
}

// Mail on: a real SMTP server on 127.0.0.1 receives the signup's
// verification mail, in the user's language, and the flow completes with
// the code it states.
func TestSignupVerificationOverSMTP(t *testing.T) {
	srv := mailtest.Start(t)
	a := newTestApp(t, withEnv("SMTP_URL", srv.URL(), "MAIL_FROM", "walletauth <no-reply@example.com>"))
	email := uniqueEmail(t)
	su := a.signup(t, email, "language", "de-CH")
	got := srv.Wait(1, 10*time.Second)
	if len(got[0].To) != 1 || got[0].To[0] != email {
		t.Fatalf("sent to %v", got[0].To)
	}
	p := mailtest.Parse(t, got[0].Data)
	if p.Order[0] != "text/plain" || !strings.Contains(p.Parts["text/plain"], "bestätigen") {
		t.Fatalf("not the German verification mail: %v\n%s", p.Order, p.Parts["text/plain"])
	}
	code := mailtest.Code(p.Parts["text/plain"])
	rec := a.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": code}, bearer(su.AuthToken)...)
	wantStatus(t, rec, http.StatusOK)
	// Sent once: no second delivery, the row is marked sent.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rows, err := newOutbox(a.cfg, a.db, a.now).List(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 1 && rows[0].Status == walletmail.StatusSent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox: %+v", rows)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d deliveries", n)
	}
}

func TestMailListShowsTheCodes(t *testing.T) {
	dbURL := sqliteURL(t)
	a := newTestApp(t, withEnv("DATABASE_URL", dbURL))
	email := uniqueEmail(t)
	wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}), http.StatusAccepted)
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

// An account made by a code sign-in has no password, but its email logs
// it in: unlinking its only wallet leaves it a way in.
func TestCodeAccountCanUnlinkItsWallet(t *testing.T) {
	a := newTestApp(t)
	acc, _ := a.otpLogin(t, uniqueEmail(t))
	k := benchProfKeysT(t, 1)[0]
	w := benchProfDo(a.router, http.MethodGet, "/v1/auth/wallet/challenge?address="+k.addr, "", nil)
	var ch struct{ Message string }
	decodeJSON(t, w, &ch)
	sig, err := crypto.Sign(wallet.HashEIP191([]byte(ch.Message)).Bytes(), k.priv)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	rec := a.do(t, http.MethodPost, "/v1/users/me/wallets", map[string]string{"message": ch.Message, "signature": "0x" + hex.EncodeToString(sig)}, bearer(acc.AuthToken)...)
	wantStatus(t, rec, http.StatusOK)
	rec = a.do(t, http.MethodDelete, "/v1/users/me/wallets/"+k.addr, nil, bearer(acc.AuthToken)...)
	wantStatus(t, rec, http.StatusOK)
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
			a := &testApp{app: ap, clock: clock, clientIP: randomTestIP(t)}
			if !strings.Contains(logBuf.String(), `"mail is `+mode) {
				t.Errorf("the start log does not say mail is %s:\n%s", mode, logBuf.String())
			}
			email := uniqueEmail(t)
			a.signup(t, email)
			verify := a.lastCode(t, email)
			a.otpLogin(t, email)
			wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}), http.StatusAccepted)
			reset := a.lastCode(t, email)
			wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/password/reset", map[string]string{"email": email, "code": reset, "password": "a-new-Password-77"}), http.StatusOK)
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
	email := uniqueEmail(t)
	wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}), http.StatusAccepted)
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
