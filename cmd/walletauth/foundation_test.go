package main

// Handler tests of issue 2, "The service's foundation", through the real
// router: the HTTP frame, email signup and login, sessions and the profile.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/users"
)

// ---- The frame ----

func TestUnknownRouteAndMethod(t *testing.T) {
	a := newTestApp(t)
	wantError(t, a.do(t, http.MethodGet, "/nope", nil), http.StatusNotFound, "not_found")
	wantError(t, a.do(t, http.MethodGet, "/v1/users/me/nope", nil), http.StatusNotFound, "not_found")
	wantError(t, a.do(t, http.MethodGet, "/v1/auth/email/signup", nil), http.StatusMethodNotAllowed, "method_not_allowed")
	wantError(t, a.do(t, http.MethodDelete, "/healthz", nil), http.StatusMethodNotAllowed, "method_not_allowed")
}

func TestBodyTooLarge(t *testing.T) {
	a := newTestApp(t)
	big := `{"email":"` + strings.Repeat("a", 65<<10) + `@example.com","password":"x"}`
	for _, path := range []string{"/v1/auth/email/signup", "/v1/auth/email/login"} {
		t.Run(path+"/content-length", func(t *testing.T) {
			wantError(t, a.do(t, http.MethodPost, path, big), http.StatusRequestEntityTooLarge, "body_too_large")
		})
		t.Run(path+"/chunked", func(t *testing.T) {
			rec := a.do(t, http.MethodPost, path, strings.NewReader(big))
			wantError(t, rec, http.StatusRequestEntityTooLarge, "body_too_large")
		})
	}
	t.Run("authenticated", func(t *testing.T) {
		tok := a.signup(t, uniqueEmail(t)).AuthToken
		rec := a.do(t, http.MethodPatch, "/v1/users/me", strings.NewReader(big), bearer(tok)...)
		wantError(t, rec, http.StatusRequestEntityTooLarge, "body_too_large")
	})
}

// A body of exactly 64 KiB is accepted, with and without a declared length.
func TestBodyOfExactly64KiB(t *testing.T) {
	a := newTestApp(t)
	for _, chunked := range []bool{false, true} {
		j, _ := json.Marshal(map[string]string{"email": uniqueEmail(t), "password": testPassword})
		body := append(j, bytes.Repeat([]byte(" "), 64<<10-len(j))...)
		if len(body) != 64<<10 {
			t.Fatalf("body is %d bytes", len(body))
		}
		var b any = body
		if chunked {
			b = bytes.NewReader(body)
		}
		wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/email/signup", b), http.StatusCreated)
	}
}

func TestInvalidJSON(t *testing.T) {
	a := newTestApp(t)
	tok := a.signup(t, uniqueEmail(t)).AuthToken
	cases := map[string]string{
		"malformed":        `{"email":`,
		"not json":         `email=a@example.com`,
		"wrong field type": `{"email": 5, "password": "` + testPassword + `"}`,
		"array":            `[]`,
		"empty":            ``,
		"blank":            "  \n",
		"two values":       `{"email":"a@example.com"} {"email":"b@example.com"}`,
		"trailing garbage": `{"email":"a@example.com"} x`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/v1/auth/email/signup", "/v1/auth/email/login"} {
				wantError(t, a.do(t, http.MethodPost, path, body), http.StatusBadRequest, "invalid_json")
			}
		})
	}
	t.Run("no body", func(t *testing.T) {
		wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/signup", nil), http.StatusBadRequest, "invalid_json")
	})
	t.Run("patch wrong type", func(t *testing.T) {
		rec := a.do(t, http.MethodPatch, "/v1/users/me", `{"username": 5}`, bearer(tok)...)
		wantError(t, rec, http.StatusBadRequest, "invalid_json")
		rec = a.do(t, http.MethodPatch, "/v1/users/me", `{"language": ["en"]}`, bearer(tok)...)
		wantError(t, rec, http.StatusBadRequest, "invalid_json")
	})
	t.Run("add email malformed", func(t *testing.T) {
		rec := a.do(t, http.MethodPost, "/v1/users/me/email", `{"email"`, bearer(tok)...)
		wantError(t, rec, http.StatusBadRequest, "invalid_json")
	})
}

func TestRequestID(t *testing.T) {
	a := newTestApp(t)
	rec := a.do(t, http.MethodGet, "/healthz", nil, "X-Request-Id", "req-abc-123")
	if got := rec.Header().Get("X-Request-Id"); got != "req-abc-123" {
		t.Errorf("echoed X-Request-Id = %q, want req-abc-123", got)
	}
	// Echoed on errors too.
	rec = a.do(t, http.MethodGet, "/nope", nil, "X-Request-Id", "req-404")
	if got := rec.Header().Get("X-Request-Id"); got != "req-404" {
		t.Errorf("X-Request-Id on a 404 = %q, want req-404", got)
	}
	first := a.do(t, http.MethodGet, "/healthz", nil).Header().Get("X-Request-Id")
	second := a.do(t, http.MethodGet, "/healthz", nil).Header().Get("X-Request-Id")
	if first == "" || second == "" || first == second {
		t.Errorf("generated X-Request-Ids = %q, %q; want two different non-empty ones", first, second)
	}
	// An unusable incoming ID (a control character, absurd length) is replaced.
	for _, bad := range []string{strings.Repeat("x", 500), "a\x01b"} {
		got := a.do(t, http.MethodGet, "/healthz", nil, "X-Request-Id", bad).Header().Get("X-Request-Id")
		if got == "" || got == bad {
			t.Errorf("X-Request-Id for incoming %q = %q, want a generated one", bad, got)
		}
	}
}

func TestCORS(t *testing.T) {
	const allowed = "https://app.example.com"
	a := newTestApp(t, withEnv("CORS_ORIGINS", allowed+", https://other.example.org"))

	rec := a.do(t, http.MethodGet, "/healthz", nil, "Origin", allowed)
	wantStatus(t, rec, http.StatusOK)
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != allowed {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, allowed)
	}

	rec = a.do(t, http.MethodOptions, "/v1/auth/email/login", nil,
		"Origin", allowed, "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type")
	wantStatus(t, rec, http.StatusNoContent)
	h := rec.Header()
	if got := h.Get("Access-Control-Allow-Origin"); got != allowed {
		t.Errorf("preflight Access-Control-Allow-Origin = %q, want %q", got, allowed)
	}
	if m := h.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") || !strings.Contains(m, "PATCH") || !strings.Contains(m, "DELETE") {
		t.Errorf("preflight Access-Control-Allow-Methods = %q", m)
	}
	if hs := strings.ToLower(h.Get("Access-Control-Allow-Headers")); !strings.Contains(hs, "authorization") || !strings.Contains(hs, "content-type") {
		t.Errorf("preflight Access-Control-Allow-Headers = %q", hs)
	}

	for _, other := range []string{"https://evil.example.com", "http://app.example.com", "https://app.example.com:8443", "null"} {
		rec := a.do(t, http.MethodGet, "/healthz", nil, "Origin", other)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("origin %q: Access-Control-Allow-Origin = %q, want none", other, got)
		}
		rec = a.do(t, http.MethodOptions, "/v1/auth/email/login", nil, "Origin", other, "Access-Control-Request-Method", "POST")
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" || rec.Code == http.StatusNoContent {
			t.Errorf("origin %q: preflight answered %d with Access-Control-Allow-Origin %q, want no CORS approval", other, rec.Code, got)
		}
	}

	// With no CORS_ORIGINS configured, nobody is approved.
	b := newTestApp(t)
	if got := b.do(t, http.MethodGet, "/healthz", nil, "Origin", allowed).Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("no CORS_ORIGINS: Access-Control-Allow-Origin = %q, want none", got)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		wantStatus(t, a.do(t, http.MethodGet, "/healthz", nil), http.StatusOK)
		wantStatus(t, a.do(t, http.MethodGet, "/readyz", nil), http.StatusOK)

		if err := a.db.Close(); err != nil {
			t.Fatal(err)
		}
		wantError(t, a.do(t, http.MethodGet, "/readyz", nil), http.StatusServiceUnavailable, "unavailable")
		wantStatus(t, a.do(t, http.MethodGet, "/healthz", nil), http.StatusOK)
	})
}

// ---- Email signup and login ----

var (
	usernameRE = regexp.MustCompile(`^[a-z0-9_]{3,32}$`)
	codeRE     = regexp.MustCompile(`^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$`)
)

func TestSignupAnswersTheFullUserObject(t *testing.T) {
	a := newTestApp(t)
	email := uniqueEmail(t)
	rec := a.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": email, "password": testPassword})
	wantStatus(t, rec, http.StatusCreated)

	var raw map[string]json.RawMessage
	decodeJSON(t, rec, &raw)
	for _, k := range []string{"auth_token", "user", "created"} {
		if raw[k] == nil {
			t.Errorf("login answer lacks %q: %s", k, rec.Body)
		}
	}
	var user map[string]any
	if err := json.Unmarshal(raw["user"], &user); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"email": email, "email_verified": false, "language": "en", "address": nil,
		"wallets": []any{}, "points": float64(0), "referrer": nil, "referee_count": float64(0),
	}
	for k, v := range want {
		got, ok := user[k]
		if !ok {
			t.Errorf("user lacks %q", k)
			continue
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(v)
		if !bytes.Equal(gj, wj) {
			t.Errorf("user.%s = %s, want %s", k, gj, wj)
		}
	}
	for _, k := range []string{"id", "username", "referral_code", "joined_at"} {
		if s, _ := user[k].(string); s == "" {
			t.Errorf("user.%s = %v, want a non-empty string", k, user[k])
		}
	}

	var out loginJSON
	decodeJSON(t, rec, &out)
	if !out.Created {
		t.Error("created = false, want true")
	}
	if !strings.HasPrefix(out.AuthToken, "wat_") || len(out.AuthToken) < 43 {
		t.Errorf("auth_token %q: want an opaque token of at least 256 bits", out.AuthToken)
	}
	if !usernameRE.MatchString(out.User.Username) {
		t.Errorf("generated username %q is not a valid username", out.User.Username)
	}
	if !codeRE.MatchString(out.User.ReferralCode) {
		t.Errorf("referral_code %q is not 8 unambiguous characters", out.User.ReferralCode)
	}
	joined, err := time.Parse(time.RFC3339, out.User.JoinedAt)
	if err != nil || !strings.HasSuffix(out.User.JoinedAt, "Z") {
		t.Errorf("joined_at %q is not RFC 3339 in UTC", out.User.JoinedAt)
	}
	if !joined.Equal(testStart) {
		t.Errorf("joined_at = %v, want the clock's %v", joined, testStart)
	}

	// The token works and /me answers the same user.
	if got := a.me(t, out.AuthToken); got.ID != out.User.ID || got.Username != out.User.Username {
		t.Errorf("/me = %+v, want the signed-up user %+v", got, out.User)
	}
}

func TestSignupWithUsernameAndLanguage(t *testing.T) {
	a := newTestApp(t)
	out := a.signup(t, uniqueEmail(t), "username", "Alice_1", "language", "pt-BR")
	if out.User.Username != "alice_1" {
		t.Errorf("username = %q, want alice_1 (lowercased)", out.User.Username)
	}
	if out.User.Language != "pt-BR" {
		t.Errorf("language = %q, want pt-BR", out.User.Language)
	}
}

func TestSignupInvalidEmail(t *testing.T) {
	a := newTestApp(t)
	for _, email := range []string{
		"", "   ", "plainaddress", "@example.com", "alice@", "alice@localhost", "alice@@example.com",
		"Alice <alice@example.com>", "alice example@example.com", "alice@exa mple.com",
		strings.Repeat("a", 65) + "@example.com", "a@" + strings.Repeat("b", 250) + ".com",
	} {
		rec := a.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": email, "password": testPassword})
		if rec.Code != http.StatusBadRequest || decodeError(t, rec) != "invalid_email" {
			t.Errorf("email %q: got %d %s, want 400 invalid_email", email, rec.Code, rec.Body)
		}
	}
}

func TestSignupPasswordPolicy(t *testing.T) {
	a := newTestApp(t)
	weak := map[string]string{
		"7 chars":              "kX9#mQ2",
		"7 multi-byte chars":   "ééééééé",
		"257 chars":            strings.Repeat("a1B2", 64) + "x",
		"common":               "password123",
		"common in upper case": "PASSWORD123",
		"common qwertyuiop":    "qwertyuiop",
		"empty":                "",
	}
	for name, pw := range weak {
		t.Run(name, func(t *testing.T) {
			rec := a.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": uniqueEmail(t), "password": pw})
			wantError(t, rec, http.StatusBadRequest, "weak_password")
		})
	}
	t.Run("256 chars accepted, every one counts", func(t *testing.T) {
		pw := strings.Repeat("a1B2", 63) + "wxyz"
		if len([]rune(pw)) != 256 {
			t.Fatal("test password is not 256 characters")
		}
		email := uniqueEmail(t)
		a.signup(t, email, "password", pw)
		a.login(t, email, pw)
		rec := a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": pw[:255]})
		wantError(t, rec, http.StatusUnauthorized, "invalid_credentials")
		rec = a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": pw[:255] + "!"})
		wantError(t, rec, http.StatusUnauthorized, "invalid_credentials")
	})
	t.Run("8 multi-byte chars accepted", func(t *testing.T) {
		a.signup(t, uniqueEmail(t), "password", "ééééééé€")
	})
}

func TestSignupInvalidUsername(t *testing.T) {
	a := newTestApp(t)
	for _, name := range []string{"ab", strings.Repeat("a", 33), "bad-name", "with space", "ümlaut", "dot.name", "emoji😀x"} {
		rec := a.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": uniqueEmail(t), "password": testPassword, "username": name})
		if rec.Code != http.StatusBadRequest || decodeError(t, rec) != "invalid_username" {
			t.Errorf("username %q: got %d %s, want 400 invalid_username", name, rec.Code, rec.Body)
		}
	}
	a.signup(t, uniqueEmail(t), "username", strings.Repeat("a", 32))
	a.signup(t, uniqueEmail(t), "username", "abc")
}

func TestSignupConflicts(t *testing.T) {
	a := newTestApp(t)
	a.signup(t, "Bob@Example.com", "username", "bob")

	rec := a.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": uniqueEmail(t), "password": testPassword, "username": "BOB"})
	wantError(t, rec, http.StatusConflict, "username_taken")

	for _, email := range []string{"Bob@Example.com", "bob@example.com", "BOB@EXAMPLE.COM"} {
		rec := a.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": email, "password": testPassword})
		wantError(t, rec, http.StatusConflict, "email_taken")
	}
	// A user's email is matched case-insensitively at login too.
	a.login(t, "bob@EXAMPLE.com", testPassword)
}

func TestSignupReferral(t *testing.T) {
	a := newTestApp(t)
	rec := a.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": "late@example.com", "password": testPassword, "referral_code": "ZZZZZZZZ"})
	wantError(t, rec, http.StatusBadRequest, "invalid_referral_code")
	// Nothing was created: the same email signs up fine afterwards.
	referrer := a.signup(t, "late@example.com", "username", "referrer")

	referee := a.signup(t, uniqueEmail(t), "referral_code", referrer.User.ReferralCode)
	if referee.User.Referrer == nil || *referee.User.Referrer != "referrer" {
		t.Errorf("referee's referrer = %v, want referrer", referee.User.Referrer)
	}
	// A code typed in lower case is the same code.
	a.signup(t, uniqueEmail(t), "referral_code", strings.ToLower(referrer.User.ReferralCode))
	if got := a.me(t, referrer.AuthToken).RefereeCount; got != 2 {
		t.Errorf("referrer's referee_count = %d, want 2", got)
	}
	if got := a.me(t, referee.AuthToken); got.Referrer == nil || *got.Referrer != "referrer" {
		t.Errorf("referee's /me referrer = %v, want referrer", got.Referrer)
	}
}

func TestLogin(t *testing.T) {
	a := newTestApp(t)
	email := uniqueEmail(t)
	up := a.signup(t, email)
	in := a.login(t, email, testPassword)
	if in.Created {
		t.Error("login: created = true, want false")
	}
	if in.User.ID != up.User.ID || in.AuthToken == "" || in.AuthToken == up.AuthToken {
		t.Errorf("login answered user %q token %q; want user %q and a new token", in.User.ID, in.AuthToken, up.User.ID)
	}
	a.me(t, in.AuthToken)
	a.me(t, up.AuthToken) // logging in again does not end other sessions
	a.login(t, "  "+strings.ToUpper(email)+" ", testPassword)
}

func TestLoginInvalidCredentials(t *testing.T) {
	a := newTestApp(t)
	email := uniqueEmail(t)
	a.signup(t, email)
	unknown := a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": "nobody@example.com", "password": testPassword})
	wantError(t, unknown, http.StatusUnauthorized, "invalid_credentials")
	wrong := a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": testPassword + "x"})
	wantError(t, wrong, http.StatusUnauthorized, "invalid_credentials")
	if errorMessage(t, unknown) != errorMessage(t, wrong) {
		t.Errorf("unknown email and wrong password answer different messages: %q vs %q", errorMessage(t, unknown), errorMessage(t, wrong))
	}
	for _, body := range []map[string]string{
		{"email": email, "password": ""},
		{"email": "", "password": testPassword},
		{"email": email},
	} {
		wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", body), http.StatusUnauthorized, "invalid_credentials")
	}
}

func TestLoginRateLimitPerAccount(t *testing.T) {
	a := newTestApp(t) // default: 10 failures per account per 15 minutes
	email := uniqueEmail(t)
	a.signup(t, email)
	bad := map[string]string{"email": email, "password": "wrong-password-1"}
	for i := 1; i <= 10; i++ {
		a.clientIP = randomTestIP(t) // spread over IPs: only the account limit applies
		rec := a.do(t, http.MethodPost, "/v1/auth/email/login", bad)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401; %s", i, rec.Code, rec.Body)
		}
	}
	a.clientIP = randomTestIP(t)
	rec := a.do(t, http.MethodPost, "/v1/auth/email/login", bad)
	wantError(t, rec, http.StatusTooManyRequests, "rate_limited")
	wantRetryAfter(t, rec, 15*time.Minute)

	// Limited even with the right password, and the address's case does not
	// make it another account.
	rec = a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": strings.ToUpper(email), "password": testPassword})
	wantError(t, rec, http.StatusTooManyRequests, "rate_limited")
	wantRetryAfter(t, rec, 15*time.Minute)

	// Other accounts are not limited.
	other := uniqueEmail(t)
	a.signup(t, other)
	a.login(t, other, testPassword)

	a.clock.Advance(10 * time.Minute)
	rec = a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": testPassword})
	wantError(t, rec, http.StatusTooManyRequests, "rate_limited")
	wantRetryAfter(t, rec, 5*time.Minute)

	a.clock.Advance(5 * time.Minute) // the window has passed
	a.login(t, email, testPassword)
}

// Failures on an unknown email count toward its limit too.
func TestLoginRateLimitUnknownAccount(t *testing.T) {
	a := newTestApp(t, withEnv("EMAIL_FAIL_PER_ACCOUNT", "2/1h"))
	bad := map[string]string{"email": "ghost@example.com", "password": testPassword}
	for i := 0; i < 2; i++ {
		wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", bad), http.StatusUnauthorized, "invalid_credentials")
	}
	wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", bad), http.StatusTooManyRequests, "rate_limited")
}

func TestLoginRateLimitPerIP(t *testing.T) {
	a := newTestApp(t, withEnv("EMAIL_FAIL_PER_IP", "3/15m"))
	victim := uniqueEmail(t)
	a.signup(t, victim)
	for i := 1; i <= 3; i++ {
		rec := a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": uniqueEmail(t), "password": testPassword})
		wantError(t, rec, http.StatusUnauthorized, "invalid_credentials")
	}
	// This IP is limited, whatever the account and even with right credentials.
	rec := a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": victim, "password": testPassword})
	wantError(t, rec, http.StatusTooManyRequests, "rate_limited")
	wantRetryAfter(t, rec, 15*time.Minute)

	// Another IP is not.
	attacker := a.clientIP
	a.clientIP = randomTestIP(t)
	a.login(t, victim, testPassword)

	a.clientIP = attacker
	a.clock.Advance(15 * time.Minute)
	a.login(t, victim, testPassword)
}

// wantRetryAfter checks that a 429 carries Retry-After: whole seconds,
// positive, at most max.
func wantRetryAfter(t testing.TB, rec interface{ Header() http.Header }, max time.Duration) {
	t.Helper()
	ra := rec.Header().Get("Retry-After")
	n, err := strconv.Atoi(ra)
	if err != nil || n < 1 || time.Duration(n)*time.Second > max {
		t.Errorf("Retry-After = %q, want whole seconds in [1, %d]", ra, int(max.Seconds()))
	}
}

// ---- Sessions and the profile ----

func TestAuthorizationSchemes(t *testing.T) {
	a := newTestApp(t)
	tok := a.signup(t, uniqueEmail(t)).AuthToken
	for _, h := range []string{"Bearer " + tok, "bearer " + tok, "BEARER " + tok, "Token " + tok, "token " + tok, "  Bearer   " + tok + "  "} {
		rec := a.do(t, http.MethodGet, "/v1/users/me", nil, "Authorization", h)
		if rec.Code != http.StatusOK {
			t.Errorf("Authorization %q: status %d, want 200", h, rec.Code)
		}
	}
}

func TestUnauthorized(t *testing.T) {
	a := newTestApp(t)
	tok := a.signup(t, uniqueEmail(t)).AuthToken
	unknown := "wat_" + base64.RawURLEncoding.EncodeToString(randomBytes(t, 32))
	cases := map[string][]string{
		"missing":         nil,
		"empty":           {"Authorization", ""},
		"basic":           {"Authorization", "Basic x"},
		"basic token":     {"Authorization", "Basic " + tok},
		"bearer alone":    {"Authorization", "Bearer"},
		"bearer space":    {"Authorization", "Bearer "},
		"token alone":     {"Authorization", "Token"},
		"no scheme":       {"Authorization", tok},
		"unknown token":   {"Authorization", "Bearer " + unknown},
		"garbage":         {"Authorization", "Bearer abc"},
		"truncated":       {"Authorization", "Bearer " + tok[:len(tok)-1]},
		"extended":        {"Authorization", "Bearer " + tok + "x"},
		"two tokens":      {"Authorization", "Bearer " + tok + " " + tok},
		"other bad token": {"Authorization", "Bearer " + strings.ToUpper(tok)},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			for _, r := range []struct{ method, path string }{
				{http.MethodGet, "/v1/users/me"},
				{http.MethodPatch, "/v1/users/me"},
				{http.MethodDelete, "/v1/users/me"},
				{http.MethodPost, "/v1/users/me/email"},
				{http.MethodPost, "/v1/auth/logout"},
				{http.MethodPost, "/v1/auth/logout-all"},
			} {
				rec := a.do(t, r.method, r.path, `{}`, h...)
				if rec.Code != http.StatusUnauthorized || decodeError(t, rec) != "unauthorized" {
					t.Errorf("%s %s: got %d %s, want 401 unauthorized", r.method, r.path, rec.Code, rec.Body)
				}
			}
		})
	}
	a.me(t, tok) // none of that hurt the real session
}

func TestTokenExpiry(t *testing.T) {
	a := newTestApp(t, withEnv("TOKEN_TTL", "1h"))
	tok := a.signup(t, uniqueEmail(t)).AuthToken
	a.clock.Advance(time.Hour - time.Second)
	a.me(t, tok)
	a.clock.Advance(time.Second)
	a.wantUnauthorized(t, tok)
}

func TestDefaultTokenLifetimeIs30Days(t *testing.T) {
	a := newTestApp(t)
	tok := a.signup(t, uniqueEmail(t)).AuthToken
	a.clock.Advance(30*24*time.Hour - time.Minute)
	a.me(t, tok)
	a.clock.Advance(time.Minute)
	a.wantUnauthorized(t, tok)
}

func TestTokenTTLZeroNeverExpires(t *testing.T) {
	a := newTestApp(t, withEnv("TOKEN_TTL", "0"))
	tok := a.signup(t, uniqueEmail(t)).AuthToken
	a.clock.Advance(10 * 365 * 24 * time.Hour)
	a.me(t, tok)
}

func TestPatchMe(t *testing.T) {
	a := newTestApp(t)
	a.signup(t, uniqueEmail(t), "username", "taken_name")
	me := a.signup(t, uniqueEmail(t), "username", "mine")
	tok := me.AuthToken

	patch := func(body any) *userJSON {
		t.Helper()
		rec := a.do(t, http.MethodPatch, "/v1/users/me", body, bearer(tok)...)
		wantStatus(t, rec, http.StatusOK)
		var u userJSON
		decodeJSON(t, rec, &u)
		return &u
	}
	u := patch(map[string]string{"username": "New_Name"})
	if u.Username != "new_name" || u.Language != "en" {
		t.Errorf("after username patch: %+v", u)
	}
	u = patch(map[string]string{"language": "fr"})
	if u.Username != "new_name" || u.Language != "fr" {
		t.Errorf("after language patch: %+v", u)
	}
	u = patch(map[string]string{"username": "both_at_once", "language": "pt-BR"})
	if u.Username != "both_at_once" || u.Language != "pt-BR" {
		t.Errorf("after both: %+v", u)
	}
	u = patch(map[string]any{})
	if u.Username != "both_at_once" || u.Language != "pt-BR" || u.ID != me.User.ID {
		t.Errorf("after empty patch: %+v", u)
	}
	u = patch(map[string]string{"username": "BOTH_AT_ONCE"}) // one's own name in another case
	if u.Username != "both_at_once" {
		t.Errorf("re-setting own name: %+v", u)
	}
	if got := a.me(t, tok); got.Username != "both_at_once" || got.Language != "pt-BR" {
		t.Errorf("/me after patches: %+v", got)
	}
	// The new name is the one taken now; the old one is free.
	a.signup(t, uniqueEmail(t), "username", "mine")
	rec := a.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": uniqueEmail(t), "password": testPassword, "username": "both_at_once"})
	wantError(t, rec, http.StatusConflict, "username_taken")

	for _, bad := range []string{"ab", "bad-name", "", strings.Repeat("x", 33)} {
		rec := a.do(t, http.MethodPatch, "/v1/users/me", map[string]string{"username": bad}, bearer(tok)...)
		wantError(t, rec, http.StatusBadRequest, "invalid_username")
	}
	rec = a.do(t, http.MethodPatch, "/v1/users/me", map[string]string{"username": "Taken_Name"}, bearer(tok)...)
	wantError(t, rec, http.StatusConflict, "username_taken")
	rec = a.do(t, http.MethodPatch, "/v1/users/me", map[string]string{"language": "not a language"}, bearer(tok)...)
	wantError(t, rec, http.StatusBadRequest, "invalid_language")
	rec = a.do(t, http.MethodPatch, "/v1/users/me", `{"username": true}`, bearer(tok)...)
	wantError(t, rec, http.StatusBadRequest, "invalid_json")
	// Failed patches changed nothing.
	if got := a.me(t, tok); got.Username != "both_at_once" || got.Language != "pt-BR" {
		t.Errorf("/me after failed patches: %+v", got)
	}
}

func TestDeleteMe(t *testing.T) {
	a := newTestApp(t)
	email := uniqueEmail(t)
	victim := a.signup(t, email, "username", "victim")
	other := a.login(t, email, testPassword).AuthToken
	referee := a.signup(t, uniqueEmail(t), "referral_code", victim.User.ReferralCode)
	if referee.User.Referrer == nil || *referee.User.Referrer != "victim" {
		t.Fatalf("referee's referrer = %v", referee.User.Referrer)
	}

	rec := a.do(t, http.MethodDelete, "/v1/users/me", nil, bearer(victim.AuthToken)...)
	wantStatus(t, rec, http.StatusNoContent)
	if rec.Body.Len() != 0 {
		t.Errorf("204 with a body: %q", rec.Body)
	}
	a.wantUnauthorized(t, victim.AuthToken)
	a.wantUnauthorized(t, other)
	rec = a.do(t, http.MethodDelete, "/v1/users/me", nil, bearer(victim.AuthToken)...)
	wantError(t, rec, http.StatusUnauthorized, "unauthorized")

	ctx := context.Background()
	if _, err := a.users.Get(ctx, victim.User.ID); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("deleted user: Get error = %v, want ErrNotFound", err)
	}
	var n int64
	if err := a.db.Table("sessions").Where("user_id = ?", victim.User.ID).Count(&n).Error; err != nil || n != 0 {
		t.Errorf("deleted user's sessions: %d (%v), want 0", n, err)
	}
	if got := a.me(t, referee.AuthToken); got.Referrer != nil {
		t.Errorf("referee's referrer after the referrer's deletion = %q, want null", *got.Referrer)
	}
	wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": testPassword}),
		http.StatusUnauthorized, "invalid_credentials")
	// The email and username are free again.
	a.signup(t, email, "username", "victim")
}

func TestDeleteRefereeDecrementsReferrerCount(t *testing.T) {
	a := newTestApp(t)
	referrer := a.signup(t, uniqueEmail(t))
	r1 := a.signup(t, uniqueEmail(t), "referral_code", referrer.User.ReferralCode)
	a.signup(t, uniqueEmail(t), "referral_code", referrer.User.ReferralCode)
	if got := a.me(t, referrer.AuthToken).RefereeCount; got != 2 {
		t.Fatalf("referee_count = %d, want 2", got)
	}
	wantStatus(t, a.do(t, http.MethodDelete, "/v1/users/me", nil, bearer(r1.AuthToken)...), http.StatusNoContent)
	if got := a.me(t, referrer.AuthToken).RefereeCount; got != 1 {
		t.Errorf("referee_count after a referee's deletion = %d, want 1", got)
	}
}

// newWalletOnlyUser creates a user without email (as wallet login will)
// directly in the store and issues it a session.
func (a *testApp) newWalletOnlyUser(t testing.TB) (*users.User, string) {
	t.Helper()
	ctx := context.Background()
	u, err := a.users.Create(ctx, users.NewUser{}, nil)
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	tok, _, err := a.sessions.Issue(ctx, u.ID, auth.Origin{Method: auth.MethodEmail})
	if err != nil {
		t.Fatalf("issue session: %v", err)
	}
	return u, tok
}

func TestAddEmail(t *testing.T) {
	a := newTestApp(t)
	u, tok := a.newWalletOnlyUser(t)
	if got := a.me(t, tok); got.Email != nil {
		t.Fatalf("a user created without email has email %q", *got.Email)
	}
	existing := uniqueEmail(t)
	a.signup(t, existing)
	add := func(email, pw string) *httptest.ResponseRecorder {
		return a.do(t, http.MethodPost, "/v1/users/me/email", map[string]string{"email": email, "password": pw}, bearer(tok)...)
	}

	wantError(t, add("not-an-email", testPassword), http.StatusBadRequest, "invalid_email")
	wantError(t, add(uniqueEmail(t), "short"), http.StatusBadRequest, "weak_password")
	wantError(t, add(uniqueEmail(t), "password123"), http.StatusBadRequest, "weak_password")
	wantError(t, add(strings.ToUpper(existing), testPassword), http.StatusConflict, "email_taken")
	if got := a.me(t, tok); got.Email != nil {
		t.Fatalf("failed attempts set email %q", *got.Email)
	}

	email := uniqueEmail(t)
	rec := add(email, testPassword)
	wantStatus(t, rec, http.StatusOK)
	var got userJSON
	decodeJSON(t, rec, &got)
	if got.ID != u.ID || got.Email == nil || *got.Email != email || got.EmailVerified {
		t.Errorf("after adding email: %+v", got)
	}
	in := a.login(t, email, testPassword)
	if in.User.ID != u.ID || in.Created {
		t.Errorf("email login of the account: user %q created %v, want %q false", in.User.ID, in.Created, u.ID)
	}

	wantError(t, add(uniqueEmail(t), testPassword), http.StatusConflict, "email_already_set")
	// An email account cannot replace its email through this endpoint either.
	wantError(t, a.do(t, http.MethodPost, "/v1/users/me/email", map[string]string{"email": uniqueEmail(t), "password": testPassword}, bearer(in.AuthToken)...),
		http.StatusConflict, "email_already_set")
}

func TestLogout(t *testing.T) {
	a := newTestApp(t)
	email := uniqueEmail(t)
	first := a.signup(t, email).AuthToken
	second := a.login(t, email, testPassword).AuthToken

	rec := a.do(t, http.MethodPost, "/v1/auth/logout", nil, bearer(first)...)
	wantStatus(t, rec, http.StatusNoContent)
	a.wantUnauthorized(t, first)
	a.me(t, second) // only this token stops
	wantError(t, a.do(t, http.MethodPost, "/v1/auth/logout", nil, bearer(first)...), http.StatusUnauthorized, "unauthorized")
}

func TestLogoutAll(t *testing.T) {
	a := newTestApp(t)
	email := uniqueEmail(t)
	first := a.signup(t, email).AuthToken
	second := a.login(t, email, testPassword).AuthToken
	bystander := a.signup(t, uniqueEmail(t)).AuthToken

	wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/logout-all", nil, bearer(second)...), http.StatusNoContent)
	a.wantUnauthorized(t, first)
	a.wantUnauthorized(t, second)
	a.me(t, bystander)
	// Logging in again works.
	a.me(t, a.login(t, email, testPassword).AuthToken)
}

// ---- Storage of secrets ----

func TestTokensAndPasswordsStoredOnlyHashed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		email := uniqueEmail(t)
		up := a.signup(t, email)
		tok := a.login(t, email, testPassword).AuthToken
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, "wat_"))
		if err != nil || len(raw) < 32 {
			t.Fatalf("token %q: want wat_ + base64url of at least 32 bytes", tok)
		}

		rows, err := a.db.Raw("SELECT * FROM sessions WHERE user_id = ?", up.User.ID).Rows()
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		sum := sha256.Sum256([]byte(tok))
		foundHash := false
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				cell := cellBytes(v)
				if bytes.Contains(cell, []byte(tok)) || bytes.Contains(cell, raw) || bytes.Contains(cell, []byte(strings.TrimPrefix(tok, "wat_"))) {
					t.Errorf("sessions.%s holds the token", cols[i])
				}
				if cols[i] == "token_hash" && bytes.Equal(cell, sum[:]) {
					foundHash = true
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if !foundHash {
			t.Error("no session row holds the SHA-256 of the token")
		}

		var hash string
		if err := a.db.Raw("SELECT password_hash FROM users WHERE id = ?", up.User.ID).Scan(&hash).Error; err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, testPassword) {
			t.Errorf("password_hash = %q, want an argon2id PHC string", hash)
		}

		// On SQLite the whole database file (and its WAL) holds neither.
		if a.db.Dialect == storage.SQLite {
			path := strings.TrimPrefix(a.cfg.DatabaseURL, "sqlite://")
			var all []byte
			for _, p := range []string{path, path + "-wal"} {
				if data, err := os.ReadFile(p); err == nil {
					all = append(all, data...)
				}
			}
			if len(all) == 0 {
				t.Fatal("read no database file")
			}
			if bytes.Contains(all, []byte(tok)) || bytes.Contains(all, raw) || bytes.Contains(all, []byte(up.AuthToken)) {
				t.Error("the SQLite files hold a token")
			}
			if bytes.Contains(all, []byte(testPassword)) {
				t.Error("the SQLite files hold the password")
			}
		}
	})
}

func cellBytes(v any) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case string:
		return []byte(x)
	}
	return nil
}

// ---- Every backend ----

// The email flow on every backend (PostgreSQL + Redis too, when configured).
func TestEmailFlowOnEveryBackend(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		email := uniqueEmail(t)
		up := a.signup(t, email, "username", "Flow_User")
		wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": strings.ToUpper(email), "password": testPassword}),
			http.StatusConflict, "email_taken")
		wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": uniqueEmail(t), "password": testPassword, "username": "FLOW_USER"}),
			http.StatusConflict, "username_taken")
		ref := a.signup(t, uniqueEmail(t), "referral_code", up.User.ReferralCode)
		in := a.login(t, email, testPassword)
		if got := a.me(t, in.AuthToken); got.ID != up.User.ID || got.RefereeCount != 1 || got.Username != "flow_user" {
			t.Errorf("/me = %+v", got)
		}
		wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": "nope-nope-nope"}),
			http.StatusUnauthorized, "invalid_credentials")
		wantStatus(t, a.do(t, http.MethodPatch, "/v1/users/me", map[string]string{"language": "de"}, bearer(in.AuthToken)...), http.StatusOK)
		wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/logout", nil, bearer(in.AuthToken)...), http.StatusNoContent)
		a.wantUnauthorized(t, in.AuthToken)
		a.me(t, up.AuthToken)
		wantStatus(t, a.do(t, http.MethodDelete, "/v1/users/me", nil, bearer(up.AuthToken)...), http.StatusNoContent)
		a.wantUnauthorized(t, up.AuthToken)
		if got := a.me(t, ref.AuthToken); got.Referrer != nil {
			t.Errorf("referee's referrer after deletion = %v, want null", *got.Referrer)
		}
	})
}

// Concurrent signups of one email or one username create exactly one user.
func TestConcurrentSignup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		const n = 8
		email := uniqueEmail(t)
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes = map[int]int{}
		)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := a.newRequest(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": email, "password": testPassword})
				rec := httptest.NewRecorder()
				a.router.ServeHTTP(rec, req)
				mu.Lock()
				codes[rec.Code]++
				mu.Unlock()
				if rec.Code == http.StatusConflict && decodeError(t, rec) != "email_taken" {
					t.Errorf("conflict code: %s", rec.Body)
				}
			}()
		}
		wg.Wait()
		if codes[http.StatusCreated] != 1 || codes[http.StatusConflict] != n-1 {
			t.Errorf("statuses of %d concurrent signups of one email: %v, want one 201 and the rest 409", n, codes)
		}
	})
}

// ---- Many instances ----

// Two instances on one PostgreSQL and one Redis: what one revokes, the other
// refuses; rate limits count across both.
func TestMultiInstance(t *testing.T) {
	env := postgresEnv(t)
	redisURL(t, true)
	clock := newTestClock()
	a := newTestApp(t, withEnv(env...), withEnv("EMAIL_FAIL_PER_IP", "3/15m"), withClock(clock))
	b := newTestApp(t, withEnv(env...), withEnv("EMAIL_FAIL_PER_IP", "3/15m"), withClock(clock))
	// Until its invalidation bus is subscribed an instance bypasses its
	// caches; wait, so that what follows exercises cached sessions.
	waitCachesLive(t, a, b)

	email := uniqueEmail(t)
	up := a.signup(t, email)
	onB := b.login(t, email, testPassword)
	if onB.User.ID != up.User.ID {
		t.Fatalf("login on B found user %q, want %q", onB.User.ID, up.User.ID)
	}
	b.me(t, up.AuthToken)
	a.me(t, onB.AuthToken)

	t.Run("logout", func(t *testing.T) {
		tok := b.login(t, email, testPassword).AuthToken
		a.me(t, tok)
		b.me(t, tok) // B has seen it: a cache would hold it now
		wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/logout", nil, bearer(tok)...), http.StatusNoContent)
		wantRevokedWithin(t, b, tok)
	})
	t.Run("logout-all", func(t *testing.T) {
		b.me(t, up.AuthToken)
		b.me(t, onB.AuthToken)
		wantStatus(t, a.do(t, http.MethodPost, "/v1/auth/logout-all", nil, bearer(up.AuthToken)...), http.StatusNoContent)
		wantRevokedWithin(t, b, up.AuthToken)
		wantRevokedWithin(t, b, onB.AuthToken)
		wantRevokedWithin(t, a, onB.AuthToken)
	})
	t.Run("delete", func(t *testing.T) {
		u := a.signup(t, uniqueEmail(t))
		b.me(t, u.AuthToken)
		wantStatus(t, a.do(t, http.MethodDelete, "/v1/users/me", nil, bearer(u.AuthToken)...), http.StatusNoContent)
		wantRevokedWithin(t, b, u.AuthToken)
	})
	t.Run("rate limits are shared", func(t *testing.T) {
		b.clientIP = a.clientIP
		for i := 0; i < 3; i++ {
			app := a
			if i%2 == 1 {
				app = b
			}
			wantError(t, app.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": uniqueEmail(t), "password": testPassword}),
				http.StatusUnauthorized, "invalid_credentials")
		}
		for _, app := range []*testApp{a, b} {
			rec := app.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": testPassword})
			wantError(t, rec, http.StatusTooManyRequests, "rate_limited")
		}
	})
}

// waitCachesLive waits until the apps' cache invalidation buses are healthy.
func waitCachesLive(t testing.TB, apps ...*testApp) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, app := range apps {
		for app.bus != nil && !app.bus.Healthy() {
			if time.Now().After(deadline) {
				t.Fatal("the cache invalidation bus did not become healthy within 10s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// revocationDelay is how soon the contract wants a revocation to hold on
// every instance.
const revocationDelay = time.Second

// wantRevokedWithin checks that token is refused by app within
// revocationDelay (other instances learn of revocations asynchronously).
func wantRevokedWithin(t testing.TB, app *testApp, token string) {
	t.Helper()
	deadline := time.Now().Add(revocationDelay)
	for {
		rec := app.do(t, http.MethodGet, "/v1/users/me", nil, bearer(token)...)
		if rec.Code == http.StatusUnauthorized {
			wantError(t, rec, http.StatusUnauthorized, "unauthorized")
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("token still accepted (%d) %v after its revocation on another instance", rec.Code, revocationDelay)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Tokens issued directly by the session service obey the same rules as
// those of a login (used by wallet and partner login).
func TestIssuedSessionsCheckedByMiddleware(t *testing.T) {
	a := newTestApp(t, withEnv("TOKEN_TTL", "2h"))
	u, tok := a.newWalletOnlyUser(t)
	if got := a.me(t, tok); got.ID != u.ID || got.Email != nil || len(got.Wallets) != 0 {
		t.Errorf("/me = %+v", got)
	}
	if _, err := a.sessions.Check(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	a.clock.Advance(2 * time.Hour)
	a.wantUnauthorized(t, tok)
	if _, err := a.sessions.Check(context.Background(), tok); !errors.Is(err, api.ErrUnauthorized) {
		t.Fatalf("Check of an expired session: %v, want api.ErrUnauthorized", err)
	}
}

// TestMemoryChallengesLimit: without Redis the process holds at most
// MEMORY_CHALLENGES_MAX wallet nonces and challenges; past it new ones are
// refused 503 unavailable in the contract's shape (never a 500) until
// expired ones make room, while everything else that uses the store
// (here: an email sign-up's failure counter) goes on working.
func TestMemoryChallengesLimit(t *testing.T) {
	a := newTestApp(t, withEnv("MEMORY_CHALLENGES_MAX", "3", "CHALLENGE_PER_IP", "0"))
	for i := range 3 {
		if rec := a.do(t, http.MethodGet, "/v1/auth/wallet/nonce", nil); rec.Code != http.StatusOK {
			t.Fatalf("nonce %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	wantError(t, a.do(t, http.MethodGet, "/v1/auth/wallet/nonce", nil), http.StatusServiceUnavailable, "unavailable")
	// A challenge is two entries (its nonce and the address's last challenge).
	wantError(t, a.do(t, http.MethodGet, "/v1/auth/wallet/challenge?address=0x52908400098527886E0F7030069857D2E4169EE7", nil), http.StatusServiceUnavailable, "unavailable")
	// Failed email logins still count (their counters are new keys of the
	// shared store, which the challenges cannot fill).
	email := uniqueEmail(t)
	a.signup(t, email)
	for range 3 {
		wantError(t, a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": "not the password at all"}), http.StatusUnauthorized, "invalid_credentials")
	}
	// The nonces expire with the challenge lifetime (5 min + skew), and make room.
	a.clock.Advance(6 * time.Minute)
	if rec := a.do(t, http.MethodGet, "/v1/auth/wallet/challenge?address=0x52908400098527886E0F7030069857D2E4169EE7", nil); rec.Code != http.StatusOK {
		t.Fatalf("challenge after expiry: %d %s", rec.Code, rec.Body)
	}
}
