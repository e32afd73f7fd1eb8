package users_test

// The profile handlers (GET, PATCH, DELETE /v1/users/me) through a router
// as the service mounts them: update, delete (and the referrer's count).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/cache"
	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/passwords"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/tokens/tokenstest"
	"github.com/walletauth/walletauth/users"
)

// profileEnv is the profile handlers on a router as the service mounts
// them: on /v1/users/me behind auth's RequireUser, beside email signup and
// login (which make the accounts and sessions), over a SQLite database, with
// the user and session caches the service keeps on SQLite.
type profileEnv struct {
	router   *gin.Engine
	db       *storage.DB
	users    *users.Store
	sessions *auth.Sessions
}

func newProfileEnv(t *testing.T) *profileEnv {
	t.Helper()
	clock := clocktest.New(time.Date(2026, 1, 22, 8, 36, 58, 0, time.UTC))
	db := storagetest.OpenSQLite(t)
	us := users.NewStore(db, clock.Now, nil)
	bus := cache.NewLocalBus()
	us.EnableCache(bus, 1000, time.Hour)
	sessions := auth.NewSessions(db, clock.Now, 30*24*time.Hour, auth.NewMemorySessionCache(bus, 1000, time.Hour, clock.Now))
	k := make([]byte, partners.MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	keys, err := partners.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	issuer, _ := tokenstest.NewIssuer(t, db, keys, clock.Now)
	sessions.UseAccessTokens(issuer, us)
	policy, err := passwords.NewPolicy()
	if err != nil {
		t.Fatal(err)
	}
	email := auth.NewEmail(us, sessions, policy, passwords.TestParams(), nil, auth.EmailLimits{}, 2)

	r := apitest.NewRouter(t)
	email.Routes(r.Group("/v1/auth/email"))
	users.NewHandlers(us).Routes(r.Group("/v1/users/me", sessions.RequireUser()))
	return &profileEnv{router: r, db: db, users: us, sessions: sessions}
}

// testPassword is accepted by the signup policy.
const testPassword = "kiwi-Lantern-42-orbit"

// userJSON is the contract's user object, as far as these tests read it.
type userJSON struct {
	ID           string  `json:"id"`
	Username     string  `json:"username"`
	Language     string  `json:"language"`
	ReferralCode string  `json:"referral_code"`
	Referrer     *string `json:"referrer"`
	RefereeCount int64   `json:"referee_count"`
}

type loginJSON struct {
	AuthToken string   `json:"auth_token"`
	User      userJSON `json:"user"`
	Created   bool     `json:"created"`
}

func (e *profileEnv) do(tb testing.TB, method, path string, body any, token string) *httptest.ResponseRecorder {
	tb.Helper()
	return apitest.Do(tb, e.router, "198.51.100.7", method, path, body, apitest.Bearer(token)...)
}

// signup creates an email user (body fields override email and password);
// it fails the test unless 201.
func (e *profileEnv) signup(tb testing.TB, email string, fields ...string) loginJSON {
	tb.Helper()
	body := map[string]string{"email": email, "password": testPassword}
	for i := 0; i+1 < len(fields); i += 2 {
		body[fields[i]] = fields[i+1]
	}
	rec := e.do(tb, http.MethodPost, "/v1/auth/email/signup", body, "")
	apitest.WantStatus(tb, rec, http.StatusCreated)
	var out loginJSON
	apitest.DecodeJSON(tb, rec, &out)
	if out.AuthToken == "" || !out.Created {
		tb.Fatalf("signup: want a token and created:true, got %s", rec.Body)
	}
	return out
}

// login logs in by email; it fails the test unless 200.
func (e *profileEnv) login(tb testing.TB, email, password string) loginJSON {
	tb.Helper()
	return apitest.DecodeOK[loginJSON](tb, e.do(tb, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": password}, ""))
}

// me returns GET /v1/users/me for token; it fails the test unless 200.
func (e *profileEnv) me(tb testing.TB, token string) userJSON {
	tb.Helper()
	return apitest.DecodeOK[userJSON](tb, e.do(tb, http.MethodGet, "/v1/users/me", nil, token))
}

// wantUnauthorized checks that token is refused on GET /v1/users/me.
func (e *profileEnv) wantUnauthorized(tb testing.TB, token string) {
	tb.Helper()
	apitest.WantError(tb, e.do(tb, http.MethodGet, "/v1/users/me", nil, token), http.StatusUnauthorized, "unauthorized")
}

// uniqueEmail is an address no other test uses.
func uniqueEmail(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return "u" + hex.EncodeToString(b) + "@example.com"
}

func TestPatchMe(t *testing.T) {
	e := newProfileEnv(t)
	e.signup(t, uniqueEmail(t), "username", "taken_name")
	me := e.signup(t, uniqueEmail(t), "username", "mine")
	tok := me.AuthToken

	patch := func(body any) *userJSON {
		t.Helper()
		rec := e.do(t, http.MethodPatch, "/v1/users/me", body, tok)
		apitest.WantStatus(t, rec, http.StatusOK)
		var u userJSON
		apitest.DecodeJSON(t, rec, &u)
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
	if got := e.me(t, tok); got.Username != "both_at_once" || got.Language != "pt-BR" {
		t.Errorf("/me after patches: %+v", got)
	}
	// The new name is the one taken now; the old one is free.
	e.signup(t, uniqueEmail(t), "username", "mine")
	rec := e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": uniqueEmail(t), "password": testPassword, "username": "both_at_once"}, "")
	apitest.WantError(t, rec, http.StatusConflict, "username_taken")

	for _, bad := range []string{"ab", "bad-name", "", strings.Repeat("x", 33)} {
		rec := e.do(t, http.MethodPatch, "/v1/users/me", map[string]string{"username": bad}, tok)
		apitest.WantError(t, rec, http.StatusBadRequest, "invalid_username")
	}
	rec = e.do(t, http.MethodPatch, "/v1/users/me", map[string]string{"username": "Taken_Name"}, tok)
	apitest.WantError(t, rec, http.StatusConflict, "username_taken")
	rec = e.do(t, http.MethodPatch, "/v1/users/me", map[string]string{"language": "not a language"}, tok)
	apitest.WantError(t, rec, http.StatusBadRequest, "invalid_language")
	rec = e.do(t, http.MethodPatch, "/v1/users/me", `{"username": true}`, tok)
	apitest.WantError(t, rec, http.StatusBadRequest, "invalid_json")
	// Failed patches changed nothing.
	if got := e.me(t, tok); got.Username != "both_at_once" || got.Language != "pt-BR" {
		t.Errorf("/me after failed patches: %+v", got)
	}
}

func TestDeleteMe(t *testing.T) {
	e := newProfileEnv(t)
	email := uniqueEmail(t)
	victim := e.signup(t, email, "username", "victim")
	other := e.login(t, email, testPassword).AuthToken
	referee := e.signup(t, uniqueEmail(t), "referral_code", victim.User.ReferralCode)
	if referee.User.Referrer == nil || *referee.User.Referrer != "victim" {
		t.Fatalf("referee's referrer = %v", referee.User.Referrer)
	}

	rec := e.do(t, http.MethodDelete, "/v1/users/me", nil, victim.AuthToken)
	apitest.WantStatus(t, rec, http.StatusNoContent)
	if rec.Body.Len() != 0 {
		t.Errorf("204 with a body: %q", rec.Body)
	}
	e.wantUnauthorized(t, victim.AuthToken)
	e.wantUnauthorized(t, other)
	rec = e.do(t, http.MethodDelete, "/v1/users/me", nil, victim.AuthToken)
	apitest.WantError(t, rec, http.StatusUnauthorized, "unauthorized")

	ctx := context.Background()
	if _, err := e.users.Get(ctx, victim.User.ID); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("deleted user: Get error = %v, want ErrNotFound", err)
	}
	var n int64
	if err := e.db.Table("sessions").Where("user_id = ?", victim.User.ID).Count(&n).Error; err != nil || n != 0 {
		t.Errorf("deleted user's sessions: %d (%v), want 0", n, err)
	}
	if got := e.me(t, referee.AuthToken); got.Referrer != nil {
		t.Errorf("referee's referrer after the referrer's deletion = %q, want null", *got.Referrer)
	}
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": testPassword}, ""),
		http.StatusUnauthorized, "invalid_credentials")
	// The email and username are free again.
	e.signup(t, email, "username", "victim")
}

func TestDeleteRefereeDecrementsReferrerCount(t *testing.T) {
	e := newProfileEnv(t)
	referrer := e.signup(t, uniqueEmail(t))
	r1 := e.signup(t, uniqueEmail(t), "referral_code", referrer.User.ReferralCode)
	e.signup(t, uniqueEmail(t), "referral_code", referrer.User.ReferralCode)
	if got := e.me(t, referrer.AuthToken).RefereeCount; got != 2 {
		t.Fatalf("referee_count = %d, want 2", got)
	}
	apitest.WantStatus(t, e.do(t, http.MethodDelete, "/v1/users/me", nil, r1.AuthToken), http.StatusNoContent)
	if got := e.me(t, referrer.AuthToken).RefereeCount; got != 1 {
		t.Errorf("referee_count after a referee's deletion = %d, want 1", got)
	}
}
