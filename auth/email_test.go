package auth_test

// Email signup and login through the router (with their rate limits), on
// every backend, how their passwords and tokens are stored, and adding an
// email to a wallet-only account.

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/storage"
)

var (
	usernameRE = regexp.MustCompile(`^[a-z0-9_]{3,32}$`)
	codeRE     = regexp.MustCompile(`^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$`)
)

func TestSignupAnswersTheFullUserObject(t *testing.T) {
	e := newEmailEnv(t)
	email := apitest.UniqueEmail(t)
	rec := e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": email, "password": apitest.Password}, "")
	apitest.WantStatus(t, rec, http.StatusCreated)

	var raw map[string]json.RawMessage
	apitest.DecodeJSON(t, rec, &raw)
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

	var out apitest.Login
	apitest.DecodeJSON(t, rec, &out)
	if !out.IsCreated() {
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
	if got := e.Me(t, out.AuthToken); got.ID != out.User.ID || got.Username != out.User.Username {
		t.Errorf("/me = %+v, want the signed-up user %+v", got, out.User)
	}
}

func TestSignupWithUsernameAndLanguage(t *testing.T) {
	e := newEmailEnv(t)
	out := e.Signup(t, apitest.UniqueEmail(t), "username", "Alice_1", "language", "pt-BR")
	if out.User.Username != "alice_1" {
		t.Errorf("username = %q, want alice_1 (lowercased)", out.User.Username)
	}
	if out.User.Language != "pt-BR" {
		t.Errorf("language = %q, want pt-BR", out.User.Language)
	}
}

func TestSignupInvalidEmail(t *testing.T) {
	e := newEmailEnv(t)
	for _, email := range []string{
		"", "   ", "plainaddress", "@example.com", "alice@", "alice@localhost", "alice@@example.com",
		"Alice <alice@example.com>", "alice example@example.com", "alice@exa mple.com",
		strings.Repeat("a", 65) + "@example.com", "a@" + strings.Repeat("b", 250) + ".com",
	} {
		rec := e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": email, "password": apitest.Password}, "")
		if rec.Code != http.StatusBadRequest || apitest.ErrorCode(t, rec) != "invalid_email" {
			t.Errorf("email %q: got %d %s, want 400 invalid_email", email, rec.Code, rec.Body)
		}
	}
}

func TestSignupPasswordPolicy(t *testing.T) {
	e := newEmailEnv(t)
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
			rec := e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": apitest.UniqueEmail(t), "password": pw}, "")
			apitest.WantError(t, rec, http.StatusBadRequest, "weak_password")
		})
	}
	t.Run("256 chars accepted, every one counts", func(t *testing.T) {
		pw := strings.Repeat("a1B2", 63) + "wxyz"
		if len([]rune(pw)) != 256 {
			t.Fatal("test password is not 256 characters")
		}
		email := apitest.UniqueEmail(t)
		e.Signup(t, email, "password", pw)
		e.EmailLogin(t, email, pw)
		rec := e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": pw[:255]}, "")
		apitest.WantError(t, rec, http.StatusUnauthorized, "invalid_credentials")
		rec = e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": pw[:255] + "!"}, "")
		apitest.WantError(t, rec, http.StatusUnauthorized, "invalid_credentials")
	})
	t.Run("8 multi-byte chars accepted", func(t *testing.T) {
		e.Signup(t, apitest.UniqueEmail(t), "password", "ééééééé€")
	})
}

func TestSignupInvalidUsername(t *testing.T) {
	e := newEmailEnv(t)
	for _, name := range []string{"ab", strings.Repeat("a", 33), "bad-name", "with space", "ümlaut", "dot.name", "emoji😀x"} {
		rec := e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": apitest.UniqueEmail(t), "password": apitest.Password, "username": name}, "")
		if rec.Code != http.StatusBadRequest || apitest.ErrorCode(t, rec) != "invalid_username" {
			t.Errorf("username %q: got %d %s, want 400 invalid_username", name, rec.Code, rec.Body)
		}
	}
	e.Signup(t, apitest.UniqueEmail(t), "username", strings.Repeat("a", 32))
	e.Signup(t, apitest.UniqueEmail(t), "username", "abc")
}

func TestSignupConflicts(t *testing.T) {
	e := newEmailEnv(t)
	e.Signup(t, "Bob@Example.com", "username", "bob")

	rec := e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": apitest.UniqueEmail(t), "password": apitest.Password, "username": "BOB"}, "")
	apitest.WantError(t, rec, http.StatusConflict, "username_taken")

	for _, email := range []string{"Bob@Example.com", "bob@example.com", "BOB@EXAMPLE.COM"} {
		rec := e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": email, "password": apitest.Password}, "")
		apitest.WantError(t, rec, http.StatusConflict, "email_taken")
	}
	// A user's email is matched case-insensitively at login too.
	e.EmailLogin(t, "bob@EXAMPLE.com", apitest.Password)
}

func TestSignupReferral(t *testing.T) {
	e := newEmailEnv(t)
	rec := e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": "late@example.com", "password": apitest.Password, "referral_code": "ZZZZZZZZ"}, "")
	apitest.WantError(t, rec, http.StatusBadRequest, "invalid_referral_code")
	// Nothing was created: the same email signs up fine afterwards.
	referrer := e.Signup(t, "late@example.com", "username", "referrer")

	referee := e.Signup(t, apitest.UniqueEmail(t), "referral_code", referrer.User.ReferralCode)
	if referee.User.Referrer == nil || *referee.User.Referrer != "referrer" {
		t.Errorf("referee's referrer = %v, want referrer", referee.User.Referrer)
	}
	// A code typed in lower case is the same code.
	e.Signup(t, apitest.UniqueEmail(t), "referral_code", strings.ToLower(referrer.User.ReferralCode))
	if got := e.Me(t, referrer.AuthToken).RefereeCount; got != 2 {
		t.Errorf("referrer's referee_count = %d, want 2", got)
	}
	if got := e.Me(t, referee.AuthToken); got.Referrer == nil || *got.Referrer != "referrer" {
		t.Errorf("referee's /me referrer = %v, want referrer", got.Referrer)
	}
}

func TestLogin(t *testing.T) {
	e := newEmailEnv(t)
	email := apitest.UniqueEmail(t)
	up := e.Signup(t, email)
	in := e.EmailLogin(t, email, apitest.Password)
	if in.IsCreated() {
		t.Error("login: created = true, want false")
	}
	if in.User.ID != up.User.ID || in.AuthToken == "" || in.AuthToken == up.AuthToken {
		t.Errorf("login answered user %q token %q; want user %q and a new token", in.User.ID, in.AuthToken, up.User.ID)
	}
	e.Me(t, in.AuthToken)
	e.Me(t, up.AuthToken) // logging in again does not end other sessions
	e.EmailLogin(t, "  "+strings.ToUpper(email)+" ", apitest.Password)
}

func TestLoginInvalidCredentials(t *testing.T) {
	e := newEmailEnv(t)
	email := apitest.UniqueEmail(t)
	e.Signup(t, email)
	unknown := e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": "nobody@example.com", "password": apitest.Password}, "")
	apitest.WantError(t, unknown, http.StatusUnauthorized, "invalid_credentials")
	wrong := e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": apitest.Password + "x"}, "")
	apitest.WantError(t, wrong, http.StatusUnauthorized, "invalid_credentials")
	if apitest.ErrorMessage(t, unknown) != apitest.ErrorMessage(t, wrong) {
		t.Errorf("unknown email and wrong password answer different messages: %q vs %q", apitest.ErrorMessage(t, unknown), apitest.ErrorMessage(t, wrong))
	}
	for _, body := range []map[string]string{
		{"email": email, "password": ""},
		{"email": "", "password": apitest.Password},
		{"email": email},
	} {
		apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/email/login", body, ""), http.StatusUnauthorized, "invalid_credentials")
	}
}

func TestLoginRateLimitPerAccount(t *testing.T) {
	e := newEmailEnv(t) // default: 10 failures per account per 15 minutes
	email := apitest.UniqueEmail(t)
	e.Signup(t, email)
	bad := map[string]string{"email": email, "password": "wrong-password-1"}
	for i := 1; i <= 10; i++ {
		e.IP = apitest.RandomIP(t) // spread over IPs: only the account limit applies
		rec := e.do(t, http.MethodPost, "/v1/auth/email/login", bad, "")
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401; %s", i, rec.Code, rec.Body)
		}
	}
	e.IP = apitest.RandomIP(t)
	rec := e.do(t, http.MethodPost, "/v1/auth/email/login", bad, "")
	apitest.WantError(t, rec, http.StatusTooManyRequests, "rate_limited")
	apitest.WantRetryAfter(t, rec, 15*time.Minute)

	// Limited even with the right password, and the address's case does not
	// make it another account.
	rec = e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": strings.ToUpper(email), "password": apitest.Password}, "")
	apitest.WantError(t, rec, http.StatusTooManyRequests, "rate_limited")
	apitest.WantRetryAfter(t, rec, 15*time.Minute)

	// Other accounts are not limited.
	other := apitest.UniqueEmail(t)
	e.Signup(t, other)
	e.EmailLogin(t, other, apitest.Password)

	e.clock.Advance(10 * time.Minute)
	rec = e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": apitest.Password}, "")
	apitest.WantError(t, rec, http.StatusTooManyRequests, "rate_limited")
	apitest.WantRetryAfter(t, rec, 5*time.Minute)

	e.clock.Advance(5 * time.Minute) // the window has passed
	e.EmailLogin(t, email, apitest.Password)
}

func TestTokensAndPasswordsStoredOnlyHashed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEmailEnv(t, b.open(t)...)
		email := apitest.UniqueEmail(t)
		up := e.Signup(t, email)
		tok := e.EmailLogin(t, email, apitest.Password).AuthToken
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, "wat_"))
		if err != nil || len(raw) < 32 {
			t.Fatalf("token %q: want wat_ + base64url of at least 32 bytes", tok)
		}

		rows, err := e.db.Raw("SELECT * FROM sessions WHERE user_id = ?", up.User.ID).Rows()
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
		if err := e.db.Raw("SELECT password_hash FROM users WHERE id = ?", up.User.ID).Scan(&hash).Error; err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, apitest.Password) {
			t.Errorf("password_hash = %q, want an argon2id PHC string", hash)
		}

		// On SQLite the whole database file (and its WAL) holds neither.
		if e.db.Dialect == storage.SQLite {
			var path string
			if err := e.db.Raw("SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&path).Error; err != nil || path == "" {
				t.Fatalf("the SQLite file: %q, %v", path, err)
			}
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
			if bytes.Contains(all, []byte(apitest.Password)) {
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
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEmailEnv(t, b.open(t)...)
		email := apitest.UniqueEmail(t)
		up := e.Signup(t, email, "username", "Flow_User")
		apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": strings.ToUpper(email), "password": apitest.Password}, ""),
			http.StatusConflict, "email_taken")
		apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": apitest.UniqueEmail(t), "password": apitest.Password, "username": "FLOW_USER"}, ""),
			http.StatusConflict, "username_taken")
		ref := e.Signup(t, apitest.UniqueEmail(t), "referral_code", up.User.ReferralCode)
		in := e.EmailLogin(t, email, apitest.Password)
		if got := e.Me(t, in.AuthToken); got.ID != up.User.ID || got.RefereeCount != 1 || got.Username != "flow_user" {
			t.Errorf("/me = %+v", got)
		}
		apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": "nope-nope-nope"}, ""),
			http.StatusUnauthorized, "invalid_credentials")
		apitest.WantStatus(t, e.do(t, http.MethodPatch, "/v1/users/me", map[string]string{"language": "de"}, in.AuthToken), http.StatusOK)
		apitest.WantStatus(t, e.do(t, http.MethodPost, "/v1/auth/logout", nil, in.AuthToken), http.StatusNoContent)
		e.WantUnauthorized(t, in.AuthToken)
		e.Me(t, up.AuthToken)
		apitest.WantStatus(t, e.do(t, http.MethodDelete, "/v1/users/me", nil, up.AuthToken), http.StatusNoContent)
		e.WantUnauthorized(t, up.AuthToken)
		if got := e.Me(t, ref.AuthToken); got.Referrer != nil {
			t.Errorf("referee's referrer after deletion = %v, want null", *got.Referrer)
		}
	})
}

// Concurrent signups of one email or one username create exactly one user.
func TestConcurrentSignup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEmailEnv(t, b.open(t)...)
		const n = 8
		email := apitest.UniqueEmail(t)
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes = map[int]int{}
		)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec := e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": email, "password": apitest.Password}, "")
				mu.Lock()
				codes[rec.Code]++
				mu.Unlock()
				if rec.Code == http.StatusConflict && apitest.ErrorCode(t, rec) != "email_taken" {
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

// Adding email login to a wallet-only account.
func TestAddEmail(t *testing.T) {
	e := newEmailEnv(t)
	wl := e.mustLogin(t, newSigner(t))
	u, tok := wl.User, wl.AuthToken
	if got := e.Me(t, tok); got.Email != nil {
		t.Fatalf("a user created without email has email %q", *got.Email)
	}
	existing := apitest.UniqueEmail(t)
	e.Signup(t, existing)
	add := func(email, pw string) *httptest.ResponseRecorder {
		return e.do(t, http.MethodPost, "/v1/users/me/email", map[string]string{"email": email, "password": pw}, tok)
	}

	apitest.WantError(t, add("not-an-email", apitest.Password), http.StatusBadRequest, "invalid_email")
	apitest.WantError(t, add(apitest.UniqueEmail(t), "short"), http.StatusBadRequest, "weak_password")
	apitest.WantError(t, add(apitest.UniqueEmail(t), "password123"), http.StatusBadRequest, "weak_password")
	apitest.WantError(t, add(strings.ToUpper(existing), apitest.Password), http.StatusConflict, "email_taken")
	if got := e.Me(t, tok); got.Email != nil {
		t.Fatalf("failed attempts set email %q", *got.Email)
	}

	email := apitest.UniqueEmail(t)
	rec := add(email, apitest.Password)
	apitest.WantStatus(t, rec, http.StatusOK)
	var got apitest.User
	apitest.DecodeJSON(t, rec, &got)
	if got.ID != u.ID || got.Email == nil || *got.Email != email || got.EmailVerified {
		t.Errorf("after adding email: %+v", got)
	}
	in := e.EmailLogin(t, email, apitest.Password)
	if in.User.ID != u.ID || in.IsCreated() {
		t.Errorf("email login of the account: user %q created %v, want %q false", in.User.ID, in.IsCreated(), u.ID)
	}

	apitest.WantError(t, add(apitest.UniqueEmail(t), apitest.Password), http.StatusConflict, "email_already_set")
	// An email account cannot replace its email through this endpoint either.
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/users/me/email", map[string]string{"email": apitest.UniqueEmail(t), "password": apitest.Password}, in.AuthToken),
		http.StatusConflict, "email_already_set")
}
