package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
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
			other.clientIP = a.clientIP // the same client on another instance
		}
		secret := a.newPartner(t)
		rec := a.do(t, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": "code-user"}, bearer(secret)...)
		wantStatus(t, rec, http.StatusOK)
		var login struct {
			LoginCode string `json:"login_code"`
		}
		decodeJSON(t, rec, &login)

		guess := func(app *testApp) *httptest.ResponseRecorder {
			return app.do(t, http.MethodPost, "/v1/auth/code", map[string]string{"login_code": "plc_" + randomHex(t, 16) + "guessguessguessguessguessgu"})
		}
		for i, app := range []*testApp{a, other, a} {
			rec := guess(app)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("guess %d: %d %s, want 401 login_code_invalid", i+1, rec.Code, rec.Body)
			}
			wantError(t, rec, http.StatusUnauthorized, "login_code_invalid")
		}
		for _, app := range []*testApp{a, other} {
			rec := guess(app)
			wantError(t, rec, http.StatusTooManyRequests, "rate_limited")
			wantRetryAfter(t, rec, 15*time.Minute)
		}
		// Refused before the code is looked at: the valid code is not used up.
		rec = a.do(t, http.MethodPost, "/v1/auth/code", map[string]string{"login_code": login.LoginCode})
		wantError(t, rec, http.StatusTooManyRequests, "rate_limited")

		// Another client IP is not limited, and successes do not count.
		attacker := a.clientIP
		a.clientIP = randomTestIP(t)
		wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/code", map[string]string{"login_code": login.LoginCode}), http.StatusOK)

		if b.name == "sqlite" { // the in-process store follows the test clock
			a.clientIP = attacker
			clock.Advance(15 * time.Minute)
			wantError(t, guess(a), http.StatusUnauthorized, "login_code_invalid")
		}
	})
}
