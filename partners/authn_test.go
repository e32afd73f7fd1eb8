package partners_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/kv/kvtest"
	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
)

const (
	listPath   = "/v1/partner/users"
	verifyPath = "/v1/partner/tokens/verify"
)

// rawJWT builds a compact JWS by hand, for algorithms the library will
// not sign with a given key.
func rawJWT(tb testing.TB, header, claims map[string]any, sign func(input string) []byte) string {
	tb.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign(input)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func hmacSHA256(key string) func(string) []byte {
	return func(input string) []byte {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(input))
		return m.Sum(nil)
	}
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func TestPartnerAuthentication(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		a := e.createPartner(partners.NewPartner{Name: "A"})
		b := e.createPartner(partners.NewPartner{Name: "B"})
		emptyHash := bodySHA256(nil)
		verifyBody := []byte(`{"token":"wat_nothing"}`)

		t.Run("secret and JWT both work", func(t *testing.T) {
			wantOK(t, e.withSecret(a, http.MethodGet, listPath, nil))
			wantOK(t, e.signed(a, http.MethodGet, listPath, nil))
			wantOK(t, e.signed(a, http.MethodPost, verifyPath, verifyBody))
			// Authorization: Token is accepted like Bearer.
			wantOK(t, e.do(http.MethodGet, listPath, nil, map[string]string{"Authorization": "token " + a.Secret}))
		})

		t.Run("missing or foreign credentials", func(t *testing.T) {
			wantError(t, e.do(http.MethodGet, listPath, nil, nil), 401, "partner_unauthorized")
			wantError(t, e.do(http.MethodGet, listPath, nil, map[string]string{"Authorization": "Basic " + a.Secret}), 401, "partner_unauthorized")
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer("pts_"+randomHex(t))), 401, "partner_unauthorized")
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(a.Secret+"x")), 401, "partner_unauthorized")
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer("wat_usertoken")), 401, "partner_unauthorized")
		})

		t.Run("alg none", func(t *testing.T) {
			tok := rawJWT(t, map[string]any{"alg": "none", "typ": "JWT"}, e.claims(a.ID, nil), nil)
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(tok)), 401, "request_signature_invalid")
			// The library's own "none" token too.
			none, err := jwt.NewWithClaims(jwt.SigningMethodNone, e.claims(a.ID, nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(none)), 401, "request_signature_invalid")
		})

		t.Run("RS256 signed with an RSA key", func(t *testing.T) {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, e.claims(a.ID, nil)).SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(tok)), 401, "request_signature_invalid")
		})

		t.Run("RS256 header over an HMAC of the secret (algorithm confusion)", func(t *testing.T) {
			tok := rawJWT(t, map[string]any{"alg": "RS256", "typ": "JWT"}, e.claims(a.ID, nil), hmacSHA256(a.Secret))
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(tok)), 401, "request_signature_invalid")
		})

		t.Run("HS512 with the right secret", func(t *testing.T) {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS512, e.claims(a.ID, nil)).SignedString([]byte(a.Secret))
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(tok)), 401, "request_signature_invalid")
		})

		t.Run("bad signature", func(t *testing.T) {
			tok := signHS256(t, "pts_not-the-secret", e.claims(a.ID, nil))
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(tok)), 401, "request_signature_invalid")
			good := signHS256(t, a.Secret, e.claims(a.ID, nil))
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(good[:len(good)-2]+"AA")), 401, "request_signature_invalid")
		})

		t.Run("iss of another partner", func(t *testing.T) {
			tok := signHS256(t, a.Secret, e.claims(b.ID, nil)) // A's key, B's name
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(tok)), 401, "request_signature_invalid")
		})

		t.Run("iss naming no partner", func(t *testing.T) {
			tok := signHS256(t, a.Secret, e.claims("pt_nosuchpartner", nil))
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(tok)), 401, "partner_unauthorized")
			c := e.claims(a.ID, nil)
			delete(c, "iss")
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(signHS256(t, a.Secret, c))), 401, "partner_unauthorized")
		})

		t.Run("iat window", func(t *testing.T) {
			now := e.clock.Now()
			for _, c := range []struct {
				name   string
				offset time.Duration
				ok     bool
			}{
				{"now", 0, true},
				{"300 s old", -300 * time.Second, true},
				{"300 s ahead", 300 * time.Second, true},
				{"301 s old", -301 * time.Second, false},
				{"301 s ahead", 301 * time.Second, false},
				{"a day old", -24 * time.Hour, false},
			} {
				cl := e.claims(a.ID, nil)
				cl["iat"] = now.Add(c.offset).Unix()
				r := e.do(http.MethodGet, listPath, nil, bearer(signHS256(t, a.Secret, cl)))
				if c.ok {
					wantOK(t, r)
				} else {
					wantError(t, r, 401, "request_signature_invalid")
				}
			}
			// A JWT made now goes stale as the (injected) clock moves on.
			tok := signHS256(t, a.Secret, e.claims(a.ID, nil))
			e.clock.Advance(301 * time.Second)
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(tok)), 401, "request_signature_invalid")
		})

		t.Run("missing claims", func(t *testing.T) {
			for _, claim := range []string{"iat", "jti", "body_sha256"} {
				c := e.claims(a.ID, nil)
				delete(c, claim)
				r := e.do(http.MethodGet, listPath, nil, bearer(signHS256(t, a.Secret, c)))
				wantError(t, r, 401, "request_signature_invalid")
			}
		})

		t.Run("expired exp", func(t *testing.T) {
			c := e.claims(a.ID, nil)
			c["exp"] = e.clock.Now().Add(-time.Second).Unix()
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(signHS256(t, a.Secret, c))), 401, "request_signature_invalid")
		})

		t.Run("body hash", func(t *testing.T) {
			// Tampered: signed for one body, sent with another.
			c := e.claims(a.ID, verifyBody)
			r := e.do(http.MethodPost, verifyPath, []byte(`{"token":"wat_other"}`), bearer(signHS256(t, a.Secret, c)))
			wantError(t, r, 401, "request_signature_invalid")
			// A body-less request signed as if it had one, and the reverse.
			c = e.claims(a.ID, verifyBody)
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(signHS256(t, a.Secret, c))), 401, "request_signature_invalid")
			c = e.claims(a.ID, nil)
			if c["body_sha256"] != emptyHash {
				t.Fatalf("empty body hash %v", c["body_sha256"])
			}
			wantError(t, e.do(http.MethodPost, verifyPath, verifyBody, bearer(signHS256(t, a.Secret, c))), 401, "request_signature_invalid")
			// The same bytes, whitespace included, verify.
			body := []byte("{ \"token\" :\n \"wat_x\" }")
			c = e.claims(a.ID, body)
			wantOK(t, e.do(http.MethodPost, verifyPath, body, bearer(signHS256(t, a.Secret, c))))
		})

		t.Run("reused jti", func(t *testing.T) {
			tok := signHS256(t, a.Secret, e.claims(a.ID, nil))
			wantOK(t, e.do(http.MethodGet, listPath, nil, bearer(tok)))
			wantError(t, e.do(http.MethodGet, listPath, nil, bearer(tok)), 401, "request_replayed")
			// Another partner may use the same jti.
			c := e.claims(b.ID, nil)
			c["jti"] = "shared-jti"
			wantOK(t, e.do(http.MethodGet, listPath, nil, bearer(signHS256(t, b.Secret, c))))
			c = e.claims(a.ID, nil)
			c["jti"] = "shared-jti"
			wantOK(t, e.do(http.MethodGet, listPath, nil, bearer(signHS256(t, a.Secret, c))))
		})

		t.Run("rotated secret", func(t *testing.T) {
			p := e.createPartner(partners.NewPartner{Name: "Rotating"})
			wantOK(t, e.withSecret(p, http.MethodGet, listPath, nil))
			newSecret, err := e.reg.RotateSecret(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, e.withSecret(p, http.MethodGet, listPath, nil), 401, "partner_unauthorized")
			wantError(t, e.signed(p, http.MethodGet, listPath, nil), 401, "request_signature_invalid")
			p.Secret = newSecret
			wantOK(t, e.withSecret(p, http.MethodGet, listPath, nil))
			wantOK(t, e.signed(p, http.MethodGet, listPath, nil))
		})

		t.Run("disabled partner", func(t *testing.T) {
			p := e.createPartner(partners.NewPartner{Name: "Disabled"})
			if err := e.reg.Disable(ctx, p.ID); err != nil {
				t.Fatal(err)
			}
			wantError(t, e.withSecret(p, http.MethodGet, listPath, nil), 401, "partner_unauthorized")
			wantError(t, e.signed(p, http.MethodGet, listPath, nil), 401, "partner_unauthorized")
			if err := e.reg.Enable(ctx, p.ID); err != nil {
				t.Fatal(err)
			}
			wantOK(t, e.withSecret(p, http.MethodGet, listPath, nil))
		})

		t.Run("signed-requests partner refuses the plain secret", func(t *testing.T) {
			p := e.createPartner(partners.NewPartner{Name: "Signed", SignedRequests: true})
			wantError(t, e.withSecret(p, http.MethodGet, listPath, nil), 401, "request_signature_invalid")
			wantOK(t, e.signed(p, http.MethodGet, listPath, nil))
		})
	})
}

func TestPartnerRateLimit(t *testing.T) {
	e := newEnv(t, storagetest.OpenSQLite(t), withRate(partners.Rate{Max: 2, Window: time.Minute}))
	a := e.createPartner(partners.NewPartner{Name: "A"})
	b := e.createPartner(partners.NewPartner{Name: "B"})
	wantOK(t, e.withSecret(a, http.MethodGet, listPath, nil))
	wantOK(t, e.signed(a, http.MethodGet, listPath, nil))
	r := e.withSecret(a, http.MethodGet, listPath, nil)
	wantError(t, r, 429, "rate_limited")
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	wantOK(t, e.withSecret(b, http.MethodGet, listPath, nil)) // per partner
	e.clock.Advance(time.Minute)
	wantOK(t, e.withSecret(a, http.MethodGet, listPath, nil))
}

// TestJTIReplay runs the replay check on every shared store: of many
// concurrent requests carrying one JWT exactly one gets through, and a
// store that cannot be reached refuses every signed request (503).
func TestJTIReplay(t *testing.T) {
	stores := map[string]func(t *testing.T) kv.Store{
		"memory": func(t *testing.T) kv.Store { return kv.NewMemory(time.Now) },
		"redis": func(t *testing.T) kv.Store {
			return kvtest.Redis(t) // skips without WALLETAUTH_TEST_REDIS_URL, fails under CI=true
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			e := newEnv(t, storagetest.OpenSQLite(t), withStore(store))
			a := e.createPartner(partners.NewPartner{Name: "A"})

			tok := signHS256(t, a.Secret, e.claims(a.ID, nil))
			var ok, replayed atomic.Int32
			var wg sync.WaitGroup
			for i := 0; i < 10; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := e.do(http.MethodGet, listPath, nil, bearer(tok))
					switch {
					case r.Code == 200:
						ok.Add(1)
					case r.errorCode(t) == "request_replayed":
						replayed.Add(1)
					default:
						t.Errorf("unexpected %d %s", r.Code, r.Body)
					}
				}()
			}
			wg.Wait()
			if ok.Load() != 1 || replayed.Load() != 9 {
				t.Fatalf("%d accepted, %d replayed; want 1 and 9", ok.Load(), replayed.Load())
			}

			_ = store.Close()
			r := e.signed(a, http.MethodGet, listPath, nil)
			wantError(t, r, 503, "unavailable")
		})
	}
}
