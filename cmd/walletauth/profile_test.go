package main

// The profile handlers (/v1/users/me) through the real router: update,
// delete (and the referrer's count), adding an email to a wallet-only user.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/users"
)

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
