package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/passwords"
)

// TestLoginCodeFailuresLimitedPerIP: refused login-code exchanges are
// counted per client IP (WALLETAUTH_LOGIN_CODE_FAIL_PER_IP); past the limit
// that IP gets 429 rate_limited with Retry-After, even for a valid code,
// which stays usable from elsewhere. Counted across instances (Redis).
func TestLoginCodeFailuresLimitedPerIP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		env := b.env(t)
		clock := newTestClock()
		a := newTestApp(t, withEnv(env...), withEnv("LOGIN_CODE_FAIL_PER_IP", "3/15m"), withClock(clock))
		other := a // with SQLite the store is in process: one instance
		if b.name != "sqlite" {
			other = newTestApp(t, withEnv(env...), withEnv("LOGIN_CODE_FAIL_PER_IP", "3/15m"), withClock(clock))
			other.IP = a.IP // the same client on another instance
		}
		secret := a.newPartner(t)
		rec := a.do(t, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": "code-user"}, apitest.Bearer(secret)...)
		apitest.WantStatus(t, rec, http.StatusOK)
		var login struct {
			LoginCode string `json:"login_code"`
		}
		apitest.DecodeJSON(t, rec, &login)

		guess := func(app *testApp) *httptest.ResponseRecorder {
			return app.do(t, http.MethodPost, "/v1/auth/code", map[string]string{"login_code": "plc_" + randomHex(t, 16) + "guessguessguessguessguessgu"})
		}
		for i, app := range []*testApp{a, other, a} {
			rec := guess(app)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("guess %d: %d %s, want 401 login_code_invalid", i+1, rec.Code, rec.Body)
			}
			apitest.WantError(t, rec, http.StatusUnauthorized, "login_code_invalid")
		}
		for _, app := range []*testApp{a, other} {
			rec := guess(app)
			apitest.WantError(t, rec, http.StatusTooManyRequests, "rate_limited")
			apitest.WantRetryAfter(t, rec, 15*time.Minute)
		}
		// Refused before the code is looked at: the valid code is not used up.
		rec = a.do(t, http.MethodPost, "/v1/auth/code", map[string]string{"login_code": login.LoginCode})
		apitest.WantError(t, rec, http.StatusTooManyRequests, "rate_limited")

		// Another client IP is not limited, and successes do not count.
		attacker := a.IP
		a.IP = apitest.RandomIP(t)
		apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/code", map[string]string{"login_code": login.LoginCode}), http.StatusOK)

		if b.name == "sqlite" { // the in-process store follows the test clock
			a.IP = attacker
			clock.Advance(15 * time.Minute)
			apitest.WantError(t, guess(a), http.StatusUnauthorized, "login_code_invalid")
		}
	})
}

// countingHasher is the real argon2id hasher (at test cost) that counts
// its calls.
type countingHasher struct{ n atomic.Int64 }

func (h *countingHasher) Hash(pw string) (string, error) {
	h.n.Add(1)
	return passwords.Hash(pw, passwords.TestParams())
}

// TestSignupRefusesBeforeHashing: a sign-up that will be refused — a taken
// email or username, an unknown referral code, a malformed field — is
// answered without computing argon2id; only one that can succeed hashes.
func TestSignupRefusesBeforeHashing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		h := &countingHasher{}
		a := newTestApp(t, withEnv(b.env(t)...), withHasher(h))
		email := apitest.UniqueEmail(t)
		a.Signup(t, email, "username", "taken_name")
		if n := h.n.Load(); n != 1 {
			t.Fatalf("one sign-up hashed %d times", n)
		}
		body := func(fields ...string) map[string]string {
			m := map[string]string{"email": apitest.UniqueEmail(t), "password": apitest.Password}
			for i := 0; i < len(fields); i += 2 {
				m[fields[i]] = fields[i+1]
			}
			return m
		}
		for _, tc := range []struct {
			body   map[string]string
			status int
			code   string
		}{
			{body("email", email), http.StatusConflict, "email_taken"},
			{body("email", strings.ToUpper(email)), http.StatusConflict, "email_taken"},
			{body("username", "taken_name"), http.StatusConflict, "username_taken"},
			{body("username", "Taken_Name"), http.StatusConflict, "username_taken"},
			{body("referral_code", "NOPE2345"), http.StatusBadRequest, "invalid_referral_code"},
			{body("language", "not a language"), http.StatusBadRequest, "invalid_language"},
			{body("username", "x"), http.StatusBadRequest, "invalid_username"},
			{body("email", "not-an-email"), http.StatusBadRequest, "invalid_email"},
			{body("password", "short"), http.StatusBadRequest, "weak_password"},
		} {
			apitest.WantError(t, a.do(t, http.MethodPost, "/v1/auth/email/signup", tc.body), tc.status, tc.code)
		}
		if n := h.n.Load(); n != 1 {
			t.Fatalf("refused sign-ups hashed: %d calls in all, want the first sign-up's 1", n)
		}
		// A sign-up that can succeed still hashes, and the referral code of
		// a real user is taken.
		ref := a.Me(t, a.EmailLogin(t, email, apitest.Password).AuthToken).ReferralCode
		a.Signup(t, apitest.UniqueEmail(t), "referral_code", ref)
		if n := h.n.Load(); n != 2 {
			t.Fatalf("second sign-up: %d hash calls in all, want 2", n)
		}
	})
}

// TestSignupLimitedPerIPByDefault: sign-ups are limited per client IP with
// no configuration (30 per 15 minutes); another IP is not limited.
func TestSignupLimitedPerIPByDefault(t *testing.T) {
	a := newTestApp(t)
	for i := 0; i < 29; i++ {
		a.Signup(t, apitest.UniqueEmail(t))
	}
	// A refused attempt counts too: probing which emails are taken is bounded.
	apitest.WantError(t, a.do(t, http.MethodPost, "/v1/auth/email/signup",
		map[string]string{"email": "nobody-" + randomHex(t, 4) + "@example.com", "password": apitest.Password, "referral_code": "NOPE2345"}),
		http.StatusBadRequest, "invalid_referral_code")
	rec := a.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": apitest.UniqueEmail(t), "password": apitest.Password})
	apitest.WantError(t, rec, http.StatusTooManyRequests, "rate_limited")
	apitest.WantRetryAfter(t, rec, 15*time.Minute)

	attacker := a.IP
	a.IP = apitest.RandomIP(t)
	a.Signup(t, apitest.UniqueEmail(t))

	a.IP = attacker
	a.clock.Advance(15 * time.Minute)
	a.Signup(t, apitest.UniqueEmail(t))
}

// TestAddEmailRefusesBeforeHashing: adding email login to an account
// (POST /v1/users/me/email) is refused without computing argon2id when it
// cannot succeed — the address belongs to another account (in any
// spelling), or the account has an email already — so a signed-in client
// cannot spend the server's CPU on requests bound to fail.
func TestAddEmailRefusesBeforeHashing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		h := &countingHasher{}
		a := newTestApp(t, withEnv(b.env(t)...), withHasher(h))
		taken := apitest.UniqueEmail(t)
		a.Signup(t, taken)
		_, tok := a.newWalletOnlyUser(t)
		hashed := h.n.Load()
		add := func(token, email string) *httptest.ResponseRecorder {
			return a.do(t, http.MethodPost, "/v1/users/me/email", map[string]string{"email": email, "password": apitest.Password}, apitest.Bearer(token)...)
		}
		apitest.WantError(t, add(tok, taken), http.StatusConflict, "email_taken")
		apitest.WantError(t, add(tok, strings.ToUpper(taken)), http.StatusConflict, "email_taken")
		if n := h.n.Load() - hashed; n != 0 {
			t.Fatalf("refused email_taken requests hashed %d times", n)
		}
		apitest.WantStatus(t, add(tok, apitest.UniqueEmail(t)), http.StatusOK)
		if n := h.n.Load() - hashed; n != 1 {
			t.Fatalf("the email that could be added: %d hash calls, want 1", n)
		}
		apitest.WantError(t, add(tok, apitest.UniqueEmail(t)), http.StatusConflict, "email_already_set")
		if n := h.n.Load() - hashed; n != 1 {
			t.Fatalf("a refused email_already_set request hashed (%d calls in all, want 1)", n)
		}
	})
}

// TestLoginRateLimitUnknownAccount: WALLETAUTH_EMAIL_FAIL_PER_ACCOUNT sets
// the email login limit per account; failures on an unknown email count
// toward its limit too.
func TestLoginRateLimitUnknownAccount(t *testing.T) {
	a := newTestApp(t, withEnv("EMAIL_FAIL_PER_ACCOUNT", "2/1h"))
	bad := map[string]string{"email": "ghost@example.com", "password": apitest.Password}
	for i := 0; i < 2; i++ {
		apitest.WantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", bad), http.StatusUnauthorized, "invalid_credentials")
	}
	apitest.WantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", bad), http.StatusTooManyRequests, "rate_limited")
}

// TestLoginRateLimitPerIP: WALLETAUTH_EMAIL_FAIL_PER_IP sets the email
// login failures allowed per client IP.
func TestLoginRateLimitPerIP(t *testing.T) {
	a := newTestApp(t, withEnv("EMAIL_FAIL_PER_IP", "3/15m"))
	victim := apitest.UniqueEmail(t)
	a.Signup(t, victim)
	for i := 1; i <= 3; i++ {
		rec := a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": apitest.UniqueEmail(t), "password": apitest.Password})
		apitest.WantError(t, rec, http.StatusUnauthorized, "invalid_credentials")
	}
	// This IP is limited, whatever the account and even with right credentials.
	rec := a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": victim, "password": apitest.Password})
	apitest.WantError(t, rec, http.StatusTooManyRequests, "rate_limited")
	apitest.WantRetryAfter(t, rec, 15*time.Minute)

	// Another IP is not.
	attacker := a.IP
	a.IP = apitest.RandomIP(t)
	a.EmailLogin(t, victim, apitest.Password)

	a.IP = attacker
	a.clock.Advance(15 * time.Minute)
	a.EmailLogin(t, victim, apitest.Password)
}

// TestEmailCodeRequestsLimitedPerIP: WALLETAUTH_EMAIL_SEND_PER_IP sets the
// mailed-code requests allowed per client IP, reset and sign-in codes
// counted together.
func TestEmailCodeRequestsLimitedPerIP(t *testing.T) {
	a := newTestApp(t, withEnv("EMAIL_SEND_PER_IP", "3/1h"))
	for i := 0; i < 3; i++ {
		apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": apitest.UniqueEmail(t)}), http.StatusAccepted)
	}
	apitest.WantError(t, a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": apitest.UniqueEmail(t)}), http.StatusTooManyRequests, "rate_limited")
}
