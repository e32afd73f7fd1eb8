package partners_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/storage/storagetest"
)

func TestClientSideLogin(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t))
	ctx := context.Background()
	open := e.createPartner(partners.NewPartner{Name: "Open", ClientLogin: true,
		Origins: []string{"https://app.example.com", "http://localhost:3000"}})
	closed := e.createPartner(partners.NewPartner{Name: "Closed", Origins: []string{"https://app.example.com"}})
	disabled := e.createPartner(partners.NewPartner{Name: "Off", ClientLogin: true, Origins: []string{"https://app.example.com"}})
	if err := e.reg.Disable(ctx, disabled.ID); err != nil {
		t.Fatal(err)
	}
	path := func(id string) string { return "/v1/js/partners/" + id + "/users/login" }
	body := []byte(`{"external_id": "browser-user"}`)
	const good = "https://app.example.com"

	t.Run("refusals in the contract's order", func(t *testing.T) {
		cases := []struct {
			name, id string
			header   map[string]string
			status   int
			code     string
		}{
			// Each case fails every later check too: the first one decides.
			{"token first", "pt_nosuch", map[string]string{"Authorization": "Bearer x", "Origin": "https://evil.example"}, 400, "token_not_allowed"},
			{"token, even from an allowed origin", open.ID, map[string]string{"Authorization": "Bearer " + open.Secret, "Origin": good}, 400, "token_not_allowed"},
			{"unknown partner", "pt_nosuch", map[string]string{"Origin": "https://evil.example"}, 404, "partner_not_found"},
			{"disabled partner", disabled.ID, map[string]string{"Origin": good}, 404, "partner_not_found"},
			{"client login off", closed.ID, map[string]string{"Origin": "https://evil.example"}, 403, "client_login_disabled"},
			{"client login off, allowed origin", closed.ID, map[string]string{"Origin": good}, 403, "client_login_disabled"},
			{"origin not allowed", open.ID, map[string]string{"Origin": "https://evil.example"}, 403, "origin_not_allowed"},
			{"no origin", open.ID, nil, 403, "origin_not_allowed"},
			{"other scheme", open.ID, map[string]string{"Origin": "http://app.example.com"}, 403, "origin_not_allowed"},
			{"other port", open.ID, map[string]string{"Origin": "https://app.example.com:8443"}, 403, "origin_not_allowed"},
			{"subdomain", open.ID, map[string]string{"Origin": "https://x.app.example.com"}, 403, "origin_not_allowed"},
			{"suffix", open.ID, map[string]string{"Origin": "https://app.example.com.evil.example"}, 403, "origin_not_allowed"},
			{"null origin", open.ID, map[string]string{"Origin": "null"}, 403, "origin_not_allowed"},
		}
		for _, c := range cases {
			r := e.do(http.MethodPost, path(c.id), body, c.header)
			if r.Code != c.status || r.errorCode(t) != c.code {
				t.Errorf("%s: got %d %s, want %d %s", c.name, r.Code, r.Body, c.status, c.code)
			}
			if c.code != "token_not_allowed" && r.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("%s: a refused origin got Access-Control-Allow-Origin", c.name)
			}
		}
	})

	t.Run("allowed origins log in", func(t *testing.T) {
		for _, origin := range []string{good, "https://app.example.com:443", "HTTPS://APP.EXAMPLE.COM", "http://localhost:3000"} {
			r := e.do(http.MethodPost, path(open.ID), body, map[string]string{"Origin": origin})
			m := wantOK(t, r)
			if r.Header.Get("Access-Control-Allow-Origin") != origin {
				t.Fatalf("%s: Access-Control-Allow-Origin %q", origin, r.Header.Get("Access-Control-Allow-Origin"))
			}
			if m["auth_token"] == "" || m["login_code"] == "" || userOf(t, m)["id"] == "" {
				t.Fatalf("%v", m)
			}
		}
		// The same user as the partner's server-side login of that ID.
		srv := e.login(open, map[string]any{"external_id": "browser-user"})
		if srv["registered"] != false {
			t.Fatalf("server-side login after client-side: %v", srv)
		}
		// Errors after the origin check carry CORS so the page can read them.
		r := e.do(http.MethodPost, path(open.ID), []byte(`{}`), map[string]string{"Origin": good})
		wantError(t, r, 400, "external_id_missing")
		if r.Header.Get("Access-Control-Allow-Origin") != good {
			t.Fatal("error of an allowed origin without CORS headers")
		}
	})

	t.Run("preflight", func(t *testing.T) {
		pre := map[string]string{"Origin": good, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
		r := e.do(http.MethodOptions, path(open.ID), nil, pre)
		if r.Code != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != good ||
			r.Header.Get("Access-Control-Allow-Methods") == "" {
			t.Fatalf("preflight: %d %v", r.Code, r.Header)
		}
		pre["Origin"] = "https://evil.example"
		r = e.do(http.MethodOptions, path(open.ID), nil, pre)
		if r.Code == http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight of a refused origin: %d %v", r.Code, r.Header)
		}
		pre["Origin"] = good
		r = e.do(http.MethodOptions, path(closed.ID), nil, pre)
		if r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight of a partner without client login: %d %v", r.Code, r.Header)
		}
	})
}
