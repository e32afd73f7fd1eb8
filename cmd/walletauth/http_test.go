package main

// Tests of the HTTP frame seen from outside (issue 13, "Operations"): the
// partner login's created, HEAD, CORS preflights, Cache-Control and the
// server-level errors.

import (
	"context"
	"net/http"
	"testing"

	"github.com/walletauth/walletauth/partners"
)

// newClientPartner registers a partner with client-side login from origins
// and returns its ID and secret.
func (a *testApp) newClientPartner(t *testing.T, origins ...string) (id, secret string) {
	t.Helper()
	keys, err := loadKeyring(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, secret, err := partners.NewRegistry(a.db, keys, a.now).Create(context.Background(),
		partners.NewPartner{Name: "browser", ClientLogin: true, Origins: origins})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID, secret
}

// partnerLoginJSON is the answer of both partner logins.
type partnerLoginJSON struct {
	Registered *bool  `json:"registered"`
	Created    *bool  `json:"created"`
	AuthToken  string `json:"auth_token"`
	LoginCode  string `json:"login_code"`
	User       userJSON
}

func TestPartnerLoginAnswersCreated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		const origin = "https://shop.example.com"
		id, secret := a.newClientPartner(t, origin)
		server := func(ext string) partnerLoginJSON {
			t.Helper()
			rec := a.do(t, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": ext}, bearer(secret)...)
			wantStatus(t, rec, http.StatusOK)
			var out partnerLoginJSON
			decodeJSON(t, rec, &out)
			return out
		}
		client := func(ext string) partnerLoginJSON {
			t.Helper()
			rec := a.do(t, http.MethodPost, "/v1/js/partners/"+id+"/users/login", map[string]any{"external_id": ext}, "Origin", origin)
			wantStatus(t, rec, http.StatusOK)
			var out partnerLoginJSON
			decodeJSON(t, rec, &out)
			return out
		}
		for _, c := range []struct {
			name  string
			login func(string) partnerLoginJSON
		}{{"server", server}, {"client", client}} {
			ext := c.name + "-" + randomHex(t, 4)
			first, again := c.login(ext), c.login(ext)
			if first.Created == nil || again.Created == nil {
				t.Fatalf("%s: the answer has no created field: %+v / %+v", c.name, first, again)
			}
			if !*first.Created || !*first.Registered || first.AuthToken == "" {
				t.Errorf("%s: first login: created %v registered %v, want both true", c.name, *first.Created, *first.Registered)
			}
			if *again.Created || *again.Registered || again.User.ID != first.User.ID {
				t.Errorf("%s: second login: created %v registered %v user %s (first %s), want false, false, the same user",
					c.name, *again.Created, *again.Registered, again.User.ID, first.User.ID)
			}
		}
	})
}
