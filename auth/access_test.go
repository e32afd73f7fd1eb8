package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/tokens"
	"github.com/walletauth/walletauth/tokens/tokenstest"
)

// loginUA logs s in with a User-Agent header.
func (e *env) loginUA(tb testing.TB, s signer, ua string) apitest.Login {
	tb.Helper()
	e.clock.Advance(time.Second) // newest first: a later session is newer
	ch := e.challenge(tb, s.addr.Hex())
	rec := apitest.Do(tb, e.router, clientIP, http.MethodPost, "/v1/auth/wallet/login",
		map[string]string{"message": ch.Message, "signature": hex0x(s.sign(tb, ch.Message))}, "User-Agent", ua)
	return wantLogin(tb, rec, s.addr, false)
}

type sessionJSON struct {
	ID        string  `json:"id"`
	CreatedAt string  `json:"created_at"`
	ExpiresAt *string `json:"expires_at"`
	Method    *string `json:"method"`
	UserAgent *string `json:"user_agent"`
	Current   bool    `json:"current"`
}

func (e *env) listSessions(tb testing.TB, token string) []sessionJSON {
	tb.Helper()
	return apitest.DecodeOK[struct{ Sessions []sessionJSON }](tb, e.do(tb, http.MethodGet, "/v1/users/me/sessions", nil, token)).Sessions
}

// A wallet login's access token: the contract's claims, accepted wherever
// the auth token is, refused at once when its session ends (here by
// logout with the access token itself), on every backend, with and
// without the caches.
func TestAccessTokenFollowsItsSession(t *testing.T) {
	for _, b := range backends(t) {
		for _, cached := range []bool{false, true} {
			name := b.name
			if cached {
				name += "+caches"
			}
			t.Run(name, func(t *testing.T) {
				opts := b.open(t)
				if cached {
					opts = append(opts, withCaches())
				}
				e := newEnv(t, opts...)
				s := newSigner(t)
				first := wantLogin(t, e.loginRec(t, s), s.addr, true)
				l := e.loginUA(t, s, "Example/1.0 (test)")
				c, err := e.issuer.Parse(l.AccessToken)
				if err != nil {
					t.Fatalf("access token: %v", err)
				}
				if c.Subject != l.User.ID || c.SessionID != auth.SessionID(auth.HashToken(l.AuthToken)) ||
					len(c.AMR) != 1 || c.AMR[0] != "wallet" || c.Wallet != s.addr.Hex() || c.Email != "" ||
					c.Issuer != tokenstest.Issuer || c.Audience != tokenstest.Audience || l.ExpiresIn != int64(tokenstest.TTL/time.Second) {
					t.Fatalf("claims %+v, expires_in %d", c, l.ExpiresIn)
				}

				me := apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, l.AccessToken))
				if me.ID != l.User.ID {
					t.Fatalf("me with the access token: %+v", me)
				}
				list := e.listSessions(t, l.AccessToken)
				if len(list) != 2 || list[0].ID != c.SessionID || !list[0].Current || list[1].Current ||
					list[0].Method == nil || *list[0].Method != "wallet" || list[0].UserAgent == nil || *list[0].UserAgent != "Example/1.0 (test)" ||
					list[1].ID != auth.SessionID(auth.HashToken(first.AuthToken)) || list[1].UserAgent != nil || list[0].ExpiresAt == nil {
					t.Fatalf("sessions %+v", list)
				}

				// A fresh access token for the auth token; never for an access token.
				apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/token", nil, l.AccessToken), http.StatusUnauthorized, "unauthorized")
				apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/token", nil, ""), http.StatusUnauthorized, "unauthorized")
				apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/token", nil, auth.TokenPrefix+strings.Repeat("A", 43)), http.StatusUnauthorized, "unauthorized")
				rec := e.do(t, http.MethodPost, "/v1/auth/token", nil, l.AuthToken)
				fresh := apitest.DecodeOK[struct {
					AccessToken string `json:"access_token"`
					TokenType   string `json:"token_type"`
					ExpiresIn   int64  `json:"expires_in"`
				}](t, rec)
				if fresh.TokenType != "Bearer" || fresh.ExpiresIn != int64(tokenstest.TTL/time.Second) || rec.Header().Get("Cache-Control") != "no-store" {
					t.Fatalf("token answer %s %v", rec.Body, rec.Header())
				}
				fc, err := e.issuer.Parse(fresh.AccessToken)
				if err != nil || fc.SessionID != c.SessionID || fc.ID == c.ID || len(fc.AMR) != 1 || fc.AMR[0] != "wallet" {
					t.Fatalf("fresh token %+v, %v", fc, err)
				}

				// Tampered: refused by the service.
				parts := strings.Split(l.AccessToken, ".")
				var payload map[string]any
				raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
				_ = json.Unmarshal(raw, &payload)
				payload["sub"] = first.User.ID + "x"
				forged, _ := json.Marshal(payload)
				apitest.WantError(t, e.do(t, http.MethodGet, "/v1/users/me", nil, parts[0]+"."+base64.RawURLEncoding.EncodeToString(forged)+"."+parts[2]), http.StatusUnauthorized, "unauthorized")
				apitest.WantError(t, e.do(t, http.MethodGet, "/v1/users/me", nil, "a.b.c"), http.StatusUnauthorized, "unauthorized")

				// Logout with the access token ends its session: both
				// credentials of it and the fresh access token stop at once;
				// the other session lives.
				if rec := e.do(t, http.MethodPost, "/v1/auth/logout", nil, l.AccessToken); rec.Code != http.StatusNoContent {
					t.Fatalf("logout: %d %s", rec.Code, rec.Body)
				}
				for _, tok := range []string{l.AccessToken, fresh.AccessToken, l.AuthToken} {
					apitest.WantError(t, e.do(t, http.MethodGet, "/v1/users/me", nil, tok), http.StatusUnauthorized, "unauthorized")
				}
				apitest.WantError(t, e.do(t, http.MethodPost, "/v1/auth/token", nil, l.AuthToken), http.StatusUnauthorized, "unauthorized")
				if _, err := e.issuer.Parse(l.AccessToken); err != nil {
					t.Fatalf("the signature alone still verifies until exp (that is the contract): %v", err)
				}
				apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, first.AccessToken))

				// Expired: refused.
				e.clock.Advance(tokenstest.TTL)
				apitest.WantError(t, e.do(t, http.MethodGet, "/v1/users/me", nil, first.AccessToken), http.StatusUnauthorized, "unauthorized")
				apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, first.AuthToken))
			})
		}
	}
}

// Ending sessions otherwise (logout-all, a deleted session, a deleted user)
// makes their access tokens fail at once; another user's session id is
// session_not_found.
func TestEndedSessionsRefuseTheirAccessTokens(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, append(b.open(t), withCaches())...)
			s := newSigner(t)
			one := wantLogin(t, e.loginRec(t, s), s.addr, true)
			two := e.loginUA(t, s, "second")
			three := e.loginUA(t, s, "third")
			for _, l := range []apitest.Login{one, two, three} { // cached now
				apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, l.AccessToken))
			}
			other := newSigner(t)
			stranger := wantLogin(t, e.loginRec(t, other), other.addr, true)
			twoID := auth.SessionID(auth.HashToken(two.AuthToken))

			apitest.WantError(t, e.do(t, http.MethodDelete, "/v1/users/me/sessions/"+twoID, nil, stranger.AccessToken), http.StatusNotFound, "session_not_found")
			apitest.WantError(t, e.do(t, http.MethodDelete, "/v1/users/me/sessions/"+strings.Repeat("0", 32), nil, one.AccessToken), http.StatusNotFound, "session_not_found")
			apitest.WantError(t, e.do(t, http.MethodDelete, "/v1/users/me/sessions/not-an-id", nil, one.AccessToken), http.StatusNotFound, "session_not_found")
			apitest.WantError(t, e.do(t, http.MethodDelete, "/v1/users/me/sessions/"+strings.ToUpper(twoID), nil, one.AccessToken), http.StatusNotFound, "session_not_found")
			apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, two.AccessToken))

			if rec := e.do(t, http.MethodDelete, "/v1/users/me/sessions/"+twoID, nil, one.AuthToken); rec.Code != http.StatusNoContent {
				t.Fatalf("delete session: %d %s", rec.Code, rec.Body)
			}
			apitest.WantError(t, e.do(t, http.MethodGet, "/v1/users/me", nil, two.AccessToken), http.StatusUnauthorized, "unauthorized")
			apitest.WantError(t, e.do(t, http.MethodGet, "/v1/users/me", nil, two.AuthToken), http.StatusUnauthorized, "unauthorized")
			apitest.WantError(t, e.do(t, http.MethodDelete, "/v1/users/me/sessions/"+twoID, nil, one.AuthToken), http.StatusNotFound, "session_not_found")
			if list := e.listSessions(t, one.AccessToken); len(list) != 2 || list[0].ID != auth.SessionID(auth.HashToken(three.AuthToken)) || !list[1].Current {
				t.Fatalf("sessions after the delete: %+v", list)
			}

			if rec := e.do(t, http.MethodPost, "/v1/auth/logout-all", nil, three.AccessToken); rec.Code != http.StatusNoContent {
				t.Fatalf("logout-all: %d %s", rec.Code, rec.Body)
			}
			for _, l := range []apitest.Login{one, three} {
				apitest.WantError(t, e.do(t, http.MethodGet, "/v1/users/me", nil, l.AccessToken), http.StatusUnauthorized, "unauthorized")
			}

			// The stranger deletes its account: its access token stops.
			apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, stranger.AccessToken))
			if rec := e.do(t, http.MethodDelete, "/v1/users/me", nil, stranger.AccessToken); rec.Code != http.StatusNoContent {
				t.Fatalf("delete user: %d %s", rec.Code, rec.Body)
			}
			apitest.WantError(t, e.do(t, http.MethodGet, "/v1/users/me", nil, stranger.AccessToken), http.StatusUnauthorized, "unauthorized")
		})
	}
}

// A rotation signs new login answers with the new key at once, and tokens
// of the previous key keep working on the service.
func TestRotationKeepsOldTokensWorking(t *testing.T) {
	e := newEnv(t, withCaches())
	s := newSigner(t)
	before := wantLogin(t, e.loginRec(t, s), s.addr, true)
	k, err := e.keys.Rotate(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	after := apitest.DecodeOK[apitest.Login](t, e.loginRec(t, s))
	if kid := headerKID(t, after.AccessToken); kid != k.KID {
		t.Fatalf("signed with %s after the rotation to %s", kid, k.KID)
	}
	if headerKID(t, before.AccessToken) == k.KID {
		t.Fatal("the first token already had the new kid")
	}
	for _, tok := range []string{before.AccessToken, after.AccessToken} {
		apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, tok))
	}
	var jwks struct{ Keys []struct{ Kid string } }
	rec := e.do(t, http.MethodGet, "/.well-known/jwks.json", nil, "")
	if err := json.Unmarshal(rec.Body.Bytes(), &jwks); err != nil || len(jwks.Keys) != 2 || jwks.Keys[0].Kid != k.KID ||
		rec.Header().Get("Cache-Control") != tokens.JWKSCacheControl {
		t.Fatalf("JWKS %s %v", rec.Body, err)
	}
}

func headerKID(t *testing.T, tok string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// A session from before method and user agent were recorded (NULL
// columns, as the migration leaves them) is listed with nulls, and its
// access tokens carry no amr.
func TestOlderSessionWithoutMethod(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b.open(t)...)
			s := newSigner(t)
			l := wantLogin(t, e.loginRec(t, s), s.addr, true)
			h := auth.HashToken(l.AuthToken)
			if err := e.db.Exec("UPDATE sessions SET method = NULL, user_agent = NULL WHERE token_hash = ?", h[:]).Error; err != nil {
				t.Fatal(err)
			}
			list := e.listSessions(t, l.AuthToken)
			if len(list) != 1 || list[0].Method != nil || list[0].UserAgent != nil || !list[0].Current {
				t.Fatalf("sessions %+v", list)
			}
			fresh := apitest.DecodeOK[struct {
				AccessToken string `json:"access_token"`
			}](t, e.do(t, http.MethodPost, "/v1/auth/token", nil, l.AuthToken))
			c, err := e.issuer.Parse(fresh.AccessToken)
			if err != nil || c.AMR != nil || c.SessionID != list[0].ID {
				t.Fatalf("claims %+v, %v", c, err)
			}
			apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, fresh.AccessToken))
		})
	}
}

// Forged access tokens are refused by the service itself (RequireUser and
// tokens of every kind an attacker can make from what is public).
func TestForgedAccessTokensRefusedByTheService(t *testing.T) {
	e := newEnv(t, withCaches())
	s := newSigner(t)
	l := wantLogin(t, e.loginRec(t, s), s.addr, true)
	parts := strings.Split(l.AccessToken, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims jwt.MapClaims
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	kid := headerKID(t, l.AccessToken)
	jwks := e.do(t, http.MethodGet, "/.well-known/jwks.json", nil, "").Body.Bytes()
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		t.Helper()
		tk := jwt.NewWithClaims(m, c)
		tk.Header["kid"] = kid
		out, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range claims {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"alg none":                   sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims),
		"HS256 keyed with the JWKS":  sign(jwt.SigningMethodHS256, jwks, claims),
		"another key, same kid":      sign(jwt.SigningMethodES256, other, claims),
		"another session id":         sign(jwt.SigningMethodES256, other, with("sid", strings.Repeat("a", 32))),
		"signature of another token": parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(t, with("sub", "x"))) + "." + parts[2],
	} {
		rec := e.do(t, http.MethodGet, "/v1/users/me", nil, tok)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	apitest.DecodeOK[apitest.User](t, e.do(t, http.MethodGet, "/v1/users/me", nil, l.AccessToken))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
