package auth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/walletauth/walletauth/api/apitest"
)

// raceRounds is how many times each HTTP race is run.
const raceRounds = 8

// Three unlinks at once of a wallet-only account's three wallets, through
// the router: two answer 200, one 409 last_login_method, none 5xx; one
// wallet is left, primary.
func TestConcurrentUnlinksHTTP(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b.open(t)...)
			for round := 0; round < raceRounds; round++ {
				ws := []signer{newSigner(t), newSigner(t), newSigner(t)}
				tok := e.mustLogin(t, ws[0]).AuthToken
				for _, s := range ws[1:] {
					if rec := e.do(t, http.MethodPost, "/v1/users/me/wallets", e.linkBody(t, s), tok); rec.Code != http.StatusOK {
						t.Fatalf("link: %d %s", rec.Code, rec.Body)
					}
				}
				recs := make([]*httptest.ResponseRecorder, len(ws))
				parallel(len(ws), func(i int) {
					recs[i] = e.do(t, http.MethodDelete, "/v1/users/me/wallets/"+ws[i].addr.Hex(), nil, tok)
				})
				ok, refused := 0, 0
				for _, rec := range recs {
					switch rec.Code {
					case http.StatusOK:
						ok++
					case http.StatusConflict:
						apitest.WantError(t, rec, http.StatusConflict, "last_login_method")
						refused++
					default:
						t.Fatalf("round %d: unlink: %d %s", round, rec.Code, rec.Body)
					}
				}
				me := apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, tok))
				if ok != 2 || refused != 1 || len(me.Wallets) != 1 || !me.Wallets[0].Primary {
					t.Fatalf("round %d: %d unlinked, %d refused, wallets %+v; want 2, 1, one primary", round, ok, refused, me.Wallets)
				}
			}
		})
	}
}

// An email account's first two wallets linked at once, through the router:
// both answer 200, and exactly one is primary.
func TestConcurrentFirstLinksHTTP(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b.open(t)...)
			for round := 0; round < raceRounds; round++ {
				email := string(rune('a'+round)) + "@links.example"
				rec := e.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": email, "password": "correct horse battery staple"}, "")
				var signup apitest.Login
				if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &signup) != nil {
					t.Fatalf("signup: %d %s", rec.Code, rec.Body)
				}
				ws := []signer{newSigner(t), newSigner(t)}
				bodies := []map[string]string{e.linkBody(t, ws[0]), e.linkBody(t, ws[1])}
				recs := make([]*httptest.ResponseRecorder, len(ws))
				parallel(len(ws), func(i int) {
					recs[i] = e.do(t, http.MethodPost, "/v1/users/me/wallets", bodies[i], signup.AuthToken)
				})
				for _, rec := range recs {
					if rec.Code != http.StatusOK {
						t.Fatalf("round %d: link: %d %s", round, rec.Code, rec.Body)
					}
				}
				me := apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, signup.AuthToken))
				primaries := 0
				for _, w := range me.Wallets {
					if w.Primary {
						primaries++
					}
				}
				if len(me.Wallets) != 2 || primaries != 1 {
					t.Fatalf("round %d: wallets %+v; want 2, one primary", round, me.Wallets)
				}
			}
		})
	}
}
