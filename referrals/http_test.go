package referrals_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/referrals"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

// newRouter wires the referral routes as cmd/walletauth does.
func newRouter(t *testing.T, f *fixture) (*gin.Engine, *auth.Sessions) {
	sessions := auth.NewSessions(f.db, f.clock.Now, 0, nil)
	r := apitest.NewRouter(t)
	authed := r.Group("/v1", sessions.RequireUser())
	me := authed.Group("/users/me")
	users.NewHandlers(f.users).Routes(me)
	referrals.NewHandlers(f.svc).Routes(me)
	return r, sessions
}

type response struct {
	status int
	body   map[string]any
	raw    string
}

func (r response) code() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func do(t *testing.T, h http.Handler, method, path, token, body string) response {
	t.Helper()
	var b any
	if body != "" {
		b = body
	}
	rec := apitest.Do(t, h, "192.0.2.1", method, path, b, apitest.Bearer(token)...)
	res := response{status: rec.Code, raw: rec.Body.String()}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, path, rec.Body.String())
		}
	}
	return res
}

func mustToken(t *testing.T, s *auth.Sessions, userID string) string {
	t.Helper()
	tok, _, err := s.Issue(context.Background(), userID, auth.Origin{Method: auth.MethodEmail})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSetReferrerHandler(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(t, db)
		h, sessions := newRouter(t, f)
		alice := f.mustUser(t, "alice", "")
		bob := f.mustUser(t, "bob", "")
		carol := f.mustUser(t, "carol", bob.ReferralCode) // bob ← carol
		tok := mustToken(t, sessions, bob.ID)
		const path = "/v1/users/me/referrer"
		body := func(code string) string { return `{"referral_code":"` + code + `"}` }

		cases := []struct {
			name, token, body string
			status            int
			code              string
		}{
			{"no token", "", body(alice.ReferralCode), 401, "unauthorized"},
			{"bad token", "wat_nope", body(alice.ReferralCode), 401, "unauthorized"},
			{"malformed JSON", tok, `{"referral_code":`, 400, "invalid_json"},
			{"wrong type", tok, `{"referral_code":12}`, 400, "invalid_json"},
			{"empty body", tok, ``, 400, "invalid_json"},
			{"unknown code", tok, body("ZZZZZZZZ"), 400, "invalid_referral_code"},
			{"own code", tok, body(bob.ReferralCode), 400, "invalid_referral_code"},
			{"cycle", tok, body(carol.ReferralCode), 400, "invalid_referral_code"},
		}
		for _, c := range cases {
			res := do(t, h, http.MethodPost, path, c.token, c.body)
			if res.status != c.status || res.code() != c.code {
				t.Errorf("%s: %d %s, want %d %s (%s)", c.name, res.status, res.code(), c.status, c.code, res.raw)
			}
		}

		res := do(t, h, http.MethodPost, path, tok, body(alice.ReferralCode))
		if res.status != http.StatusOK {
			t.Fatalf("set: %d %s", res.status, res.raw)
		}
		if res.body["referrer"] != "alice" || res.body["id"] != bob.ID || res.body["referral_code"] != bob.ReferralCode {
			t.Fatalf("set answered %s", res.raw)
		}
		if res.body["referee_count"] != float64(1) { // carol
			t.Fatalf("bob's referee_count in %s", res.raw)
		}
		res = do(t, h, http.MethodPost, path, tok, body(carol.ReferralCode))
		if res.status != http.StatusConflict || res.code() != "referrer_already_set" {
			t.Fatalf("second set: %d %s", res.status, res.raw)
		}
		res = do(t, h, http.MethodGet, "/v1/users/me", mustToken(t, sessions, alice.ID), "")
		if res.body["referee_count"] != float64(1) {
			t.Fatalf("alice after: %s", res.raw)
		}
	})
}

func TestReferralsHandler(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(t, db)
		h, sessions := newRouter(t, f)
		ref := f.mustUser(t, "referrer", "")
		var names []string
		for i := range 5 {
			u := f.mustUser(t, "referee_"+string(rune('a'+i)), ref.ReferralCode)
			names = append(names, u.Username)
		}
		tok := mustToken(t, sessions, ref.ID)

		for _, c := range []struct {
			name, query, code string
			status            int
		}{
			{"no token", "", "unauthorized", 401},
			{"limit not a number", "?limit=ten", "invalid_parameter", 400},
			{"limit 0", "?limit=0", "invalid_parameter", 400},
			{"limit negative", "?limit=-3", "invalid_parameter", 400},
			{"limit over max", "?limit=101", "invalid_parameter", 400},
			{"cursor not base64url", "?cursor=%25%25%25", "invalid_cursor", 400},
			{"cursor of nothing", "?cursor=bm9wZQ", "invalid_cursor", 400},
		} {
			token := tok
			if c.name == "no token" {
				token = ""
			}
			res := do(t, h, http.MethodGet, "/v1/users/me/referrals"+c.query, token, "")
			if res.status != c.status || res.code() != c.code {
				t.Errorf("%s: %d %s, want %d %s (%s)", c.name, res.status, res.code(), c.status, c.code, res.raw)
			}
		}

		var got []string
		path := "/v1/users/me/referrals?limit=2"
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			res := do(t, h, http.MethodGet, path, tok, "")
			if res.status != http.StatusOK {
				t.Fatalf("list: %d %s", res.status, res.raw)
			}
			if res.body["referral_code"] != ref.ReferralCode || res.body["referee_count"] != float64(5) {
				t.Fatalf("list header: %s", res.raw)
			}
			refs, _ := res.body["referees"].([]any)
			for _, r := range refs {
				m := r.(map[string]any)
				if _, ok := m["joined_at"].(string); !ok {
					t.Fatalf("referee without joined_at: %s", res.raw)
				}
				got = append(got, m["username"].(string))
			}
			next, present := res.body["next_cursor"]
			if !present {
				t.Fatalf("next_cursor missing: %s", res.raw)
			}
			if next == nil {
				break
			}
			path = "/v1/users/me/referrals?limit=2&cursor=" + url.QueryEscape(next.(string))
		}
		if strings.Join(got, ",") != strings.Join(names, ",") {
			t.Fatalf("referees %v, want %v", got, names)
		}

		// Default page, and an empty list is [] not null.
		res := do(t, h, http.MethodGet, "/v1/users/me/referrals", mustToken(t, sessions, f.mustUser(t, "nobody", "").ID), "")
		if res.status != http.StatusOK || !strings.Contains(res.raw, `"referees":[]`) || !strings.Contains(res.raw, `"next_cursor":null`) {
			t.Fatalf("empty list: %d %s", res.status, res.raw)
		}
	})
}
