package main

// Sessions through the real router: the Authorization header, expiry and
// lifetime, logout; and sessions issued by the session service directly.

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/api/apitest"
)

func TestAuthorizationSchemes(t *testing.T) {
	a := newTestApp(t)
	tok := a.Signup(t, apitest.UniqueEmail(t)).AuthToken
	for _, h := range []string{"Bearer " + tok, "bearer " + tok, "BEARER " + tok, "Token " + tok, "token " + tok, "  Bearer   " + tok + "  "} {
		rec := a.do(t, http.MethodGet, "/v1/users/me", nil, "Authorization", h)
		if rec.Code != http.StatusOK {
			t.Errorf("Authorization %q: status %d, want 200", h, rec.Code)
		}
	}
}

func TestUnauthorized(t *testing.T) {
	a := newTestApp(t)
	tok := a.Signup(t, apitest.UniqueEmail(t)).AuthToken
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
				if rec.Code != http.StatusUnauthorized || apitest.ErrorCode(t, rec) != "unauthorized" {
					t.Errorf("%s %s: got %d %s, want 401 unauthorized", r.method, r.path, rec.Code, rec.Body)
				}
			}
		})
	}
	a.Me(t, tok) // none of that hurt the real session
}

func TestTokenExpiry(t *testing.T) {
	a := newTestApp(t, withEnv("TOKEN_TTL", "1h"))
	tok := a.Signup(t, apitest.UniqueEmail(t)).AuthToken
	a.clock.Advance(time.Hour - time.Second)
	a.Me(t, tok)
	a.clock.Advance(time.Second)
	a.WantUnauthorized(t, tok)
}

func TestDefaultTokenLifetimeIs30Days(t *testing.T) {
	a := newTestApp(t)
	tok := a.Signup(t, apitest.UniqueEmail(t)).AuthToken
	a.clock.Advance(30*24*time.Hour - time.Minute)
	a.Me(t, tok)
	a.clock.Advance(time.Minute)
	a.WantUnauthorized(t, tok)
}

func TestTokenTTLZeroNeverExpires(t *testing.T) {
	a := newTestApp(t, withEnv("TOKEN_TTL", "0"))
	tok := a.Signup(t, apitest.UniqueEmail(t)).AuthToken
	a.clock.Advance(10 * 365 * 24 * time.Hour)
	a.Me(t, tok)
}

func TestLogout(t *testing.T) {
	a := newTestApp(t)
	email := apitest.UniqueEmail(t)
	first := a.Signup(t, email).AuthToken
	second := a.EmailLogin(t, email, apitest.Password).AuthToken

	rec := a.do(t, http.MethodPost, "/v1/auth/logout", nil, apitest.Bearer(first)...)
	apitest.WantStatus(t, rec, http.StatusNoContent)
	a.WantUnauthorized(t, first)
	a.Me(t, second) // only this token stops
	apitest.WantError(t, a.do(t, http.MethodPost, "/v1/auth/logout", nil, apitest.Bearer(first)...), http.StatusUnauthorized, "unauthorized")
}

func TestLogoutAll(t *testing.T) {
	a := newTestApp(t)
	email := apitest.UniqueEmail(t)
	first := a.Signup(t, email).AuthToken
	second := a.EmailLogin(t, email, apitest.Password).AuthToken
	bystander := a.Signup(t, apitest.UniqueEmail(t)).AuthToken

	apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/logout-all", nil, apitest.Bearer(second)...), http.StatusNoContent)
	a.WantUnauthorized(t, first)
	a.WantUnauthorized(t, second)
	a.Me(t, bystander)
	// Logging in again works.
	a.Me(t, a.EmailLogin(t, email, apitest.Password).AuthToken)
}

// Tokens issued directly by the session service obey the same rules as
// those of a login (used by wallet and partner login).
func TestIssuedSessionsCheckedByMiddleware(t *testing.T) {
	a := newTestApp(t, withEnv("TOKEN_TTL", "2h"))
	u, tok := a.newWalletOnlyUser(t)
	if got := a.Me(t, tok); got.ID != u.ID || got.Email != nil || len(got.Wallets) != 0 {
		t.Errorf("/me = %+v", got)
	}
	if _, err := a.sessions.Check(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	a.clock.Advance(2 * time.Hour)
	a.WantUnauthorized(t, tok)
	if _, err := a.sessions.Check(context.Background(), tok); !errors.Is(err, api.ErrUnauthorized) {
		t.Fatalf("Check of an expired session: %v, want api.ErrUnauthorized", err)
	}
}
