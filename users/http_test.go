package users_test

// The profile handlers (GET, PATCH, DELETE /v1/users/me) through a router
// as the service mounts them: update, delete (and the referrer's count).

import (
	"context"
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
	router *gin.Engine
	db     *storage.DB
	users  *users.Store
	apitest.Client
}

func newProfileEnv(t *testing.T) *profileEnv {
	t.Helper()
	clock := clocktest.New(time.Date(2026, 1, 22, 8, 36, 58, 0, time.UTC))
	db := storagetest.OpenSQLite(t)
	us := users.NewStore(db, clock.Now, nil)
	bus := cache.NewLocalBus()
	us.EnableCache(bus, 1<<20, time.Hour)
	sessions := auth.NewSessions(db, clock.Now, 30*24*time.Hour, auth.NewMemorySessionCache(bus, 1<<20, time.Hour, clock.Now))
	issuer, _ := tokenstest.NewIssuer(t, db, tokenstest.Keyring(t), clock.Now)
	sessions.UseAccessTokens(issuer, us)
	policy, err := passwords.NewPolicy()
	if err != nil {
		t.Fatal(err)
	}
	email := auth.NewEmail(us, sessions, policy, passwords.TestParams(), nil, auth.EmailLimits{}, 2)

	r := apitest.NewRouter(t)
	email.Routes(r.Group("/v1/auth/email"))
	users.NewHandlers(us).Routes(r.Group("/v1/users/me", sessions.RequireUser()))
	return &profileEnv{router: r, db: db, users: us, Client: apitest.Client{Handler: r, IP: clientIP}}
}

// do sends a request through the router, with token as its bearer token
// unless "".
func (e *profileEnv) do(tb testing.TB, method, path string, body any, token string) *httptest.ResponseRecorder {
	tb.Helper()
	return apitest.Do(tb, e.router, clientIP, method, path, body, apitest.Bearer(token)...)
}

const clientIP = "198.51.100.7"

func TestPatchMe(t *testing.T) {
	e := newProfileEnv(t)
	e.Signup(t, apitest.UniqueEmail(t), "username", "taken_name")
	me := e.Signup(t, apitest.UniqueEmail(t), "username", "mine")
	tok := me.AuthToken

	patch := func(body any) *apitest.User {
		t.Helper()
		rec := e.do(t, http.MethodPatch, "/v1/users/me", body, tok)
		apitest.WantStatus(t, rec, http.StatusOK)
		var u apitest.User
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
	if got := e.Me(t, tok); got.Username != "both_at_once" || got.Language != "pt-BR" {
		t.Errorf("/me after patches: %+v", got)
	}
	// The new name is the one taken now; the old one is free.
	e.Signup(t, apitest.UniqueEmail(t), "username", "mine")
	rec := e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": apitest.UniqueEmail(t), "password": apitest.Password, "username": "both_at_once"}, "")
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
	if got := e.Me(t, tok); got.Username != "both_at_once" || got.Language != "pt-BR" {
		t.Errorf("/me after failed patches: %+v", got)
	}
}

func TestDeleteMe(t *testing.T) {
	e := newProfileEnv(t)
	email := apitest.UniqueEmail(t)
	victim := e.Signup(t, email, "username", "victim")
	other := e.EmailLogin(t, email, apitest.Password).AuthToken
	referee := e.Signup(t, apitest.UniqueEmail(t), "referral_code", victim.User.ReferralCode)
	if referee.User.Referrer == nil || *referee.User.Referrer != "victim" {
		t.Fatalf("referee's referrer = %v", referee.User.Referrer)
	}

	rec := e.do(t, http.MethodDelete, "/v1/users/me", nil, victim.AuthToken)
	apitest.WantStatus(t, rec, http.StatusNoContent)
	if rec.Body.Len() != 0 {
		t.Errorf("204 with a body: %q", rec.Body)
	}
	e.WantUnauthorized(t, victim.AuthToken)
	e.WantUnauthorized(t, other)
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
	if got := e.Me(t, referee.AuthToken); got.Referrer != nil {
		t.Errorf("referee's referrer after the referrer's deletion = %q, want null", *got.Referrer)
	}
	apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": apitest.Password}, ""),
		http.StatusUnauthorized, "invalid_credentials")
	// The email and username are free again.
	e.Signup(t, email, "username", "victim")
}

func TestDeleteRefereeDecrementsReferrerCount(t *testing.T) {
	e := newProfileEnv(t)
	referrer := e.Signup(t, apitest.UniqueEmail(t))
	r1 := e.Signup(t, apitest.UniqueEmail(t), "referral_code", referrer.User.ReferralCode)
	e.Signup(t, apitest.UniqueEmail(t), "referral_code", referrer.User.ReferralCode)
	if got := e.Me(t, referrer.AuthToken).RefereeCount; got != 2 {
		t.Fatalf("referee_count = %d, want 2", got)
	}
	apitest.WantStatus(t, e.do(t, http.MethodDelete, "/v1/users/me", nil, r1.AuthToken), http.StatusNoContent)
	if got := e.Me(t, referrer.AuthToken).RefereeCount; got != 1 {
		t.Errorf("referee_count after a referee's deletion = %d, want 1", got)
	}
}
