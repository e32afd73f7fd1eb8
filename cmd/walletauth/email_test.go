package main

// Email signup and login through the real router (with their rate
// limits), on every backend, and how their passwords and tokens are stored.

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walletauth/walletauth/storage"
)

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
