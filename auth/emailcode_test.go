package auth_test

// The flows that prove a mailbox with a mailed code (sign-in, password
// reset, email verification and change, password change) through the
// router, the codes read from the mail outbox or received over SMTP.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/mail"
	"github.com/walletauth/walletauth/mail/mailtest"
)

func wrongCode(code string) string {
	if code == "999999" {
		return "999998"
	}
	return "999999"
}

func TestEmailOTPSignInCreatesAndLogsIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEmailEnv(t, b.open(t)...)
		email := apitest.UniqueEmail(t)
		rec := e.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}, "")
		apitest.WantStatus(t, rec, http.StatusAccepted)
		var exp struct {
			ExpiresAt string `json:"expires_at"`
		}
		apitest.DecodeJSON(t, rec, &exp)
		if at, err := time.Parse(time.RFC3339, exp.ExpiresAt); err != nil || !at.Equal(e.clock.Now().Add(10*time.Minute)) {
			t.Errorf("expires_at %q, want now + 10m", exp.ExpiresAt)
		}
		code := e.lastCode(t, email)
		rec = e.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": strings.ToUpper(email), "code": code}, "")
		apitest.WantStatus(t, rec, http.StatusOK)
		if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
		var first apitest.Login
		apitest.DecodeJSON(t, rec, &first)
		if !first.IsCreated() || first.User.Email == nil || *first.User.Email != email || !first.User.EmailVerified {
			t.Fatalf("first code sign-in: %s", rec.Body)
		}
		if me := e.Me(t, first.AuthToken); !me.EmailVerified {
			t.Error("GET /v1/users/me: email not verified")
		}
		// The code works once.
		rec = e.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": code}, "")
		apitest.WantError(t, rec, http.StatusUnauthorized, "code_invalid")

		again := e.otpLogin(t, email)
		if again.IsCreated() || again.User.ID != first.User.ID {
			t.Errorf("second code sign-in: created %v, id %s, want the same account", again.IsCreated(), again.User.ID)
		}
	})
}

// A password account whose email is not verified: a code sign-in logs into
// it (the mailbox is proven) and verifies the address. Whoever set the
// password never proved the mailbox (perhaps someone who signed up with
// another's address, to wait for its owner: pre-hijacking), so the password
// goes and the sessions it opened end; a verified account keeps both.
func TestEmailOTPLogsIntoAPasswordAccount(t *testing.T) {
	e := newEmailEnv(t)
	email := apitest.UniqueEmail(t)
	su := e.Signup(t, email)
	if su.User.EmailVerified {
		t.Fatal("verified at signup")
	}
	got := e.otpLogin(t, strings.ToUpper(email))
	if got.IsCreated() || got.User.ID != su.User.ID || !got.User.EmailVerified {
		t.Fatalf("code sign-in into the password account: %+v", got)
	}
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": apitest.Password}, ""),
		http.StatusUnauthorized, "invalid_credentials")
	apitest.WantError(t, e.do(t, http.MethodGet, "/v1/users/me", nil, su.AuthToken), http.StatusUnauthorized, "unauthorized")
	apitest.WantStatus(t, e.do(t, http.MethodGet, "/v1/users/me", nil, got.AuthToken), http.StatusOK)

	// The owner sets a password again; from now on code sign-ins keep it.
	apitest.WantStatus(t, e.do(t, http.MethodPut, "/v1/users/me/password", map[string]string{"password": "a-new-Password-77"}, got.AuthToken), http.StatusOK)
	again := e.otpLogin(t, email)
	e.EmailLogin(t, email, "a-new-Password-77")
	apitest.WantStatus(t, e.do(t, http.MethodGet, "/v1/users/me", nil, got.AuthToken), http.StatusOK)
	if again.User.ID != su.User.ID {
		t.Fatalf("second code sign-in into another account: %+v", again)
	}
}

func TestEmailOTPErrors(t *testing.T) {
	e := newEmailEnv(t)
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": "not-an-email"}, ""), http.StatusBadRequest, "invalid_email")
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/email/otp", `{"email": 5}`, ""), http.StatusBadRequest, "invalid_json")

	email := apitest.UniqueEmail(t)
	apitest.WantStatus(t, e.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}, ""), http.StatusAccepted)
	code := e.lastCode(t, email)
	rec := e.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": code, "referral_code": "NOSUCH99"}, "")
	apitest.WantError(t, rec, http.StatusBadRequest, "invalid_referral_code")
	// The referral code's mistake did not use the code up; five wrong
	// tries then kill it.
	for i := 0; i < 5; i++ {
		rec = e.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": wrongCode(code)}, "")
		apitest.WantError(t, rec, http.StatusUnauthorized, "code_invalid")
	}
	rec = e.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": code}, "")
	apitest.WantError(t, rec, http.StatusUnauthorized, "code_invalid")

	// Expired after 10 minutes.
	apitest.WantStatus(t, e.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}, ""), http.StatusAccepted)
	code = e.lastCode(t, email)
	e.clock.Advance(10*time.Minute + time.Second)
	rec = e.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": code}, "")
	apitest.WantError(t, rec, http.StatusUnauthorized, "code_invalid")
}

func TestEmailOTPWithReferralCode(t *testing.T) {
	e := newEmailEnv(t)
	referrer := e.Signup(t, apitest.UniqueEmail(t))
	email := apitest.UniqueEmail(t)
	apitest.WantStatus(t, e.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}, ""), http.StatusAccepted)
	rec := e.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": e.lastCode(t, email), "referral_code": referrer.User.ReferralCode}, "")
	apitest.WantStatus(t, rec, http.StatusOK)
	var got apitest.Login
	apitest.DecodeJSON(t, rec, &got)
	if got.User.Referrer == nil || *got.User.Referrer != referrer.User.Username {
		t.Errorf("referrer %v, want %s", got.User.Referrer, referrer.User.Username)
	}
}

func TestEmailCodeRequestsAreRateLimited(t *testing.T) {
	e := newEmailEnv(t)
	email := apitest.UniqueEmail(t)
	for i := 0; i < 5; i++ {
		apitest.WantStatus(t, e.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}, ""), http.StatusAccepted)
	}
	rec := e.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": strings.ToUpper(email)}, "")
	apitest.WantError(t, rec, http.StatusTooManyRequests, "rate_limited")
	apitest.WantRetryAfter(t, rec, time.Hour)
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}, ""), http.StatusTooManyRequests, "rate_limited")
	e.clock.Advance(time.Hour + time.Second)
	apitest.WantStatus(t, e.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}, ""), http.StatusAccepted)
}

// The same answer for a known and an unknown address.
func TestNoEnumeration(t *testing.T) {
	e := newEmailEnv(t)
	known := apitest.UniqueEmail(t)
	e.Signup(t, known)
	for _, path := range []string{"/v1/auth/email/otp", "/v1/auth/password/forgot"} {
		k := e.do(t, http.MethodPost, path, map[string]string{"email": known}, "")
		u := e.do(t, http.MethodPost, path, map[string]string{"email": apitest.UniqueEmail(t)}, "")
		if k.Code != http.StatusAccepted || u.Code != k.Code || len(k.Body.String()) != len(u.Body.String()) {
			t.Errorf("%s: known %d %s, unknown %d %s", path, k.Code, k.Body, u.Code, u.Body)
		}
	}
	apitest.WantStatus(t, e.do(t, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": "nonsense"}, ""), http.StatusAccepted)
}

func TestPasswordResetEndsOtherSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEmailEnv(t, b.open(t)...)
		email := apitest.UniqueEmail(t)
		su := e.Signup(t, email)
		other := e.EmailLogin(t, email, apitest.Password)
		e.Me(t, other.AuthToken) // cached on this instance

		apitest.WantStatus(t, e.do(t, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": strings.ToUpper(email)}, ""), http.StatusAccepted)
		code := e.lastCode(t, email)
		rec := e.do(t, http.MethodPost, "/v1/auth/password/reset", map[string]string{"email": email, "code": code, "password": "short"}, "")
		apitest.WantError(t, rec, http.StatusBadRequest, "weak_password")
		rec = e.do(t, http.MethodPost, "/v1/auth/password/reset", map[string]string{"email": email, "code": wrongCode(code), "password": "a-new-Password-77"}, "")
		apitest.WantError(t, rec, http.StatusUnauthorized, "code_invalid")
		rec = e.do(t, http.MethodPost, "/v1/auth/password/reset", map[string]string{"email": email, "code": code, "password": "a-new-Password-77"}, "")
		apitest.WantStatus(t, rec, http.StatusOK)
		if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q", cc)
		}
		var got apitest.Login
		apitest.DecodeJSON(t, rec, &got)
		if got.IsCreated() || got.User.ID != su.User.ID || !got.User.EmailVerified {
			t.Fatalf("reset answer: %s", rec.Body)
		}
		e.WantUnauthorized(t, su.AuthToken)
		e.WantUnauthorized(t, other.AuthToken)
		e.Me(t, got.AuthToken)
		apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": apitest.Password}, ""),
			http.StatusUnauthorized, "invalid_credentials")
		e.EmailLogin(t, email, "a-new-Password-77")
		// Used once.
		rec = e.do(t, http.MethodPost, "/v1/auth/password/reset", map[string]string{"email": email, "code": code, "password": "another-Password-88"}, "")
		apitest.WantError(t, rec, http.StatusUnauthorized, "code_invalid")
	})
}

func TestPasswordResetOfUnknownAddressMailsNothing(t *testing.T) {
	e := newEmailEnv(t)
	n := e.mailCount(t)
	apitest.WantStatus(t, e.do(t, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": apitest.UniqueEmail(t)}, ""), http.StatusAccepted)
	if e.mailCount(t) != n {
		t.Error("a reset mail was queued for an address no account has")
	}
	rec := e.do(t, http.MethodPost, "/v1/auth/password/reset", map[string]string{"email": apitest.UniqueEmail(t), "code": "123456", "password": "a-new-Password-77"}, "")
	apitest.WantError(t, rec, http.StatusUnauthorized, "code_invalid")
}

func TestSignupMailsAVerificationCode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEmailEnv(t, b.open(t)...)
		email := apitest.UniqueEmail(t)
		su := e.Signup(t, email)
		rec := e.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": wrongCode(e.lastCode(t, email))}, su.AuthToken)
		apitest.WantError(t, rec, http.StatusUnauthorized, "code_invalid")
		rec = e.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": e.lastCode(t, email)}, su.AuthToken)
		apitest.WantStatus(t, rec, http.StatusOK)
		var u apitest.User
		apitest.DecodeJSON(t, rec, &u)
		if !u.EmailVerified || u.Email == nil || *u.Email != email {
			t.Fatalf("after confirm: %s", rec.Body)
		}
		if !e.Me(t, su.AuthToken).EmailVerified {
			t.Error("GET /v1/users/me: not verified")
		}
		rec = e.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]any{}, su.AuthToken)
		apitest.WantError(t, rec, http.StatusConflict, "email_already_verified")
	})
}

func TestEmailVerificationResendAndChange(t *testing.T) {
	e := newEmailEnv(t)
	email := apitest.UniqueEmail(t)
	su := e.Signup(t, email, "language", "de")
	rec := e.do(t, http.MethodPost, "/v1/users/me/email/verification", nil, su.AuthToken)
	apitest.WantStatus(t, rec, http.StatusAccepted)
	rows, err := e.outbox.List(context.Background(), 1)
	if err != nil || len(rows) != 1 || rows[0].Kind != mail.KindVerifyEmail || !strings.Contains(rows[0].TextBody, "bestätigen") {
		t.Fatalf("the resent verification mail is not the German one: %+v %v", rows, err)
	}

	taken := apitest.UniqueEmail(t)
	e.Signup(t, taken)
	rec = e.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]string{"email": strings.ToUpper(taken)}, su.AuthToken)
	apitest.WantError(t, rec, http.StatusConflict, "email_taken")
	rec = e.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]string{"email": "bad"}, su.AuthToken)
	apitest.WantError(t, rec, http.StatusBadRequest, "invalid_email")

	// Change: the email changes only once the new mailbox is proven.
	newEmail := apitest.UniqueEmail(t)
	rec = e.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]string{"email": newEmail}, su.AuthToken)
	apitest.WantStatus(t, rec, http.StatusAccepted)
	if me := e.Me(t, su.AuthToken); me.Email == nil || *me.Email != email {
		t.Fatalf("the email changed before the code was confirmed: %v", me.Email)
	}
	code := e.lastCode(t, newEmail)
	rec = e.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": code}, su.AuthToken)
	apitest.WantStatus(t, rec, http.StatusOK)
	me := e.Me(t, su.AuthToken)
	if me.Email == nil || *me.Email != newEmail || !me.EmailVerified {
		t.Fatalf("after the change: %+v", me)
	}
	e.EmailLogin(t, newEmail, apitest.Password)
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": apitest.Password}, ""), http.StatusUnauthorized, "invalid_credentials")

	// Taken meanwhile: 409 at confirm.
	third := apitest.UniqueEmail(t)
	rec = e.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]string{"email": third}, su.AuthToken)
	apitest.WantStatus(t, rec, http.StatusAccepted)
	code = e.lastCode(t, third)
	e.Signup(t, third)
	rec = e.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": code}, su.AuthToken)
	apitest.WantError(t, rec, http.StatusConflict, "email_taken")
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": "123456"}, ""), http.StatusUnauthorized, "unauthorized")
}

// A wallet-only account: no email to verify or to change a password of,
// until it adds one (POST /v1/users/me/email mails a code too).
func TestWalletAccountEmailNotSet(t *testing.T) {
	e := newEmailEnv(t)
	tok := e.mustLogin(t, newSigner(t)).AuthToken
	rec := e.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]any{}, tok)
	apitest.WantError(t, rec, http.StatusConflict, "email_not_set")
	rec = e.do(t, http.MethodPut, "/v1/users/me/password", map[string]string{"password": "a-new-Password-77"}, tok)
	apitest.WantError(t, rec, http.StatusConflict, "email_not_set")

	email := apitest.UniqueEmail(t)
	rec = e.do(t, http.MethodPost, "/v1/users/me/email", map[string]string{"email": email, "password": apitest.Password}, tok)
	apitest.WantStatus(t, rec, http.StatusOK)
	rec = e.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": e.lastCode(t, email)}, tok)
	apitest.WantStatus(t, rec, http.StatusOK)
	if me := e.Me(t, tok); !me.EmailVerified || me.Email == nil || *me.Email != email {
		t.Fatalf("after adding and confirming the email: %+v", me)
	}

	// A wallet account can also take an email by verification alone.
	tok2 := e.mustLogin(t, newSigner(t)).AuthToken
	email2 := apitest.UniqueEmail(t)
	apitest.WantStatus(t, e.do(t, http.MethodPost, "/v1/users/me/email/verification", map[string]string{"email": email2}, tok2), http.StatusAccepted)
	apitest.WantStatus(t, e.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": e.lastCode(t, email2)}, tok2), http.StatusOK)
	// It has no password: PUT /v1/users/me/password needs no current one.
	apitest.WantStatus(t, e.do(t, http.MethodPut, "/v1/users/me/password", map[string]string{"password": "a-new-Password-77"}, tok2), http.StatusOK)
	e.EmailLogin(t, email2, "a-new-Password-77")
}

func TestChangePassword(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEmailEnv(t, b.open(t)...)
		email := apitest.UniqueEmail(t)
		su := e.Signup(t, email)
		other := e.EmailLogin(t, email, apitest.Password)
		e.Me(t, other.AuthToken)
		put := func(body map[string]string) *httptest.ResponseRecorder {
			return e.do(t, http.MethodPut, "/v1/users/me/password", body, su.AuthToken)
		}
		apitest.WantError(t, put(map[string]string{"password": "a-new-Password-77"}), http.StatusUnauthorized, "invalid_credentials")
		apitest.WantError(t, put(map[string]string{"current_password": "wrong-password-1", "password": "a-new-Password-77"}), http.StatusUnauthorized, "invalid_credentials")
		apitest.WantError(t, put(map[string]string{"current_password": apitest.Password, "password": "password"}), http.StatusBadRequest, "weak_password")
		rec := put(map[string]string{"current_password": apitest.Password, "password": "a-new-Password-77"})
		apitest.WantStatus(t, rec, http.StatusOK)
		var u apitest.User
		apitest.DecodeJSON(t, rec, &u)
		if u.ID != su.User.ID {
			t.Errorf("answer: %s", rec.Body)
		}
		e.Me(t, su.AuthToken) // this session stays
		e.WantUnauthorized(t, other.AuthToken)
		e.EmailLogin(t, email, "a-new-Password-77")
		apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": apitest.Password}, ""), http.StatusUnauthorized, "invalid_credentials")
	})
}

// Mail on: a real SMTP server on 127.0.0.1 receives the signup's
// verification mail, in the user's language, and the flow completes with
// the code it states.
func TestSignupVerificationOverSMTP(t *testing.T) {
	srv := mailtest.Start(t)
	e := newEmailEnv(t, withSMTP(srv))
	email := apitest.UniqueEmail(t)
	su := e.Signup(t, email, "language", "de-CH")
	got := srv.Wait(1, 10*time.Second)
	if len(got[0].To) != 1 || got[0].To[0] != email {
		t.Fatalf("sent to %v", got[0].To)
	}
	p := mailtest.Parse(t, got[0].Data)
	if p.Order[0] != "text/plain" || !strings.Contains(p.Parts["text/plain"], "bestätigen") {
		t.Fatalf("not the German verification mail: %v\n%s", p.Order, p.Parts["text/plain"])
	}
	code := mailtest.Code(p.Parts["text/plain"])
	rec := e.do(t, http.MethodPost, "/v1/users/me/email/verification/confirm", map[string]string{"code": code}, su.AuthToken)
	apitest.WantStatus(t, rec, http.StatusOK)
	// Sent once: no second delivery, the row is marked sent.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rows, err := e.outbox.List(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 1 && rows[0].Status == mail.StatusSent {
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

// An account made by a code sign-in has no password, but its email logs
// it in: unlinking its only wallet leaves it a way in.
func TestCodeAccountCanUnlinkItsWallet(t *testing.T) {
	e := newEmailEnv(t)
	acc := e.otpLogin(t, apitest.UniqueEmail(t))
	s := newSigner(t)
	ch := e.challenge(t, s.addr.Hex())
	rec := e.do(t, http.MethodPost, "/v1/users/me/wallets", map[string]string{"message": ch.Message, "signature": hex0x(with27(s.sign(t, ch.Message)))}, acc.AuthToken)
	apitest.WantStatus(t, rec, http.StatusOK)
	rec = e.do(t, http.MethodDelete, "/v1/users/me/wallets/"+s.addr.Hex(), nil, acc.AuthToken)
	apitest.WantStatus(t, rec, http.StatusOK)
}
