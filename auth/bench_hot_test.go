package auth_test

// Benchmarks of the hot paths of issue 7: the token check (warm in-memory
// session cache; cold, against SQLite and PostgreSQL), challenge issuance
// through the router, and a whole wallet sign-in through the router.
// Self-contained: no helpers from the other test files of the package.

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/cache"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/ratelimit"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/tokens/tokenstest"
	"github.com/walletauth/walletauth/users"
	"github.com/walletauth/walletauth/wallet"
)

// hotSessions returns sessions over db with a token of a real user.
func hotSessions(b *testing.B, db *storage.DB, sc auth.SessionCache) (*auth.Sessions, string) {
	b.Helper()
	ctx := context.Background()
	us := users.NewStore(db, nil, nil)
	u, err := us.Create(ctx, users.NewUser{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	s := auth.NewSessions(db, nil, 30*24*time.Hour, sc)
	tok, _, err := s.Issue(ctx, u.ID, auth.Origin{Method: auth.MethodEmail})
	if err != nil {
		b.Fatal(err)
	}
	return s, tok
}

func benchCheck(b *testing.B, s *auth.Sessions, tok string) {
	ctx := context.Background()
	if _, err := s.Check(ctx, tok); err != nil { // warms the cache, if any
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Check(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHotCheckWarmCache: Sessions.Check answered by the memory
// session cache (the GET /v1/users/me path with SQLite or Redis).
func BenchmarkHotCheckWarmCache(b *testing.B) {
	db := storagetest.OpenSQLite(b)
	s, tok := hotSessions(b, db, auth.NewMemorySessionCache(cache.NewLocalBus(), 16<<20, time.Minute, time.Now))
	benchCheck(b, s, tok)
}

// BenchmarkHotCheckColdSQLite: no cache, every check reads SQLite.
func BenchmarkHotCheckColdSQLite(b *testing.B) {
	db := storagetest.OpenSQLite(b)
	s, tok := hotSessions(b, db, nil)
	benchCheck(b, s, tok)
}

// BenchmarkHotCheckColdPostgres: no cache, every check reads PostgreSQL
// (WALLETAUTH_TEST_DATABASE_URL; skipped when unset).
func BenchmarkHotCheckColdPostgres(b *testing.B) {
	db := storagetest.OpenPostgres(b)
	s, tok := hotSessions(b, db, nil)
	benchCheck(b, s, tok)
}

// BenchmarkHotIssueSession: one session insert (every wallet sign-in does
// one) on SQLite.
func BenchmarkHotIssueSession(b *testing.B) {
	s, userID := hotIssueFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Issue(context.Background(), userID, auth.Origin{Method: auth.MethodEmail}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHotIssueSessionParallel is Issue from 64 goroutines: their rows
// share INSERTs and commits (group commit), so ns/op is well under the
// single caller's round trip and commit.
func BenchmarkHotIssueSessionParallel(b *testing.B) {
	s, userID := hotIssueFixture(b)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.Issue(context.Background(), userID, auth.Origin{Method: auth.MethodEmail}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// hotIssueFixture is sessions over a fresh SQLite database with one user.
func hotIssueFixture(b *testing.B) (*auth.Sessions, string) {
	b.Helper()
	db := storagetest.OpenSQLite(b)
	s, _ := hotSessions(b, db, nil)
	u, err := users.NewStore(db, nil, nil).Create(context.Background(), users.NewUser{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s, u.ID
}

// hotRouter is the wallet part of cmd/walletauth's router (same api
// middleware but the access log and metrics) over SQLite and an in-memory
// store, rate limits off.
func hotRouter(b *testing.B) *gin.Engine {
	b.Helper()
	gin.SetMode(gin.ReleaseMode)
	db := storagetest.OpenSQLite(b)
	store := kv.NewMemory(time.Now)
	b.Cleanup(func() { _ = store.Close() })
	bus := cache.NewLocalBus()
	us := users.NewStore(db, nil, nil)
	us.EnableCache(bus, 16<<20, time.Minute)
	sessions := auth.NewSessions(db, nil, 30*24*time.Hour, auth.NewMemorySessionCache(bus, 16<<20, time.Minute, time.Now))
	sealer, err := partners.NewKeyring(make([]byte, partners.MasterKeySize))
	if err != nil {
		b.Fatal(err)
	}
	issuer, _ := tokenstest.NewIssuer(b, db, sealer, nil)
	sessions.UseAccessTokens(issuer, us)
	wl := auth.NewWallet(us, sessions, store, nil, ratelimit.New(store, "rl:"), auth.WalletConfig{
		Domain: "127.0.0.1:8080", URI: "http://127.0.0.1:8080", Statement: "Sign in with your wallet.",
		AllowedDomains: []string{"127.0.0.1:8080"}, ChainIDs: []uint64{1}, ChallengeTTL: 5 * time.Minute,
	}, nil, nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := gin.New()
	r.ContextWithFallback = true
	if err := r.SetTrustedProxies(nil); err != nil {
		b.Fatal(err)
	}
	r.Use(api.Recover(log), api.RequestID(), api.LimitBody(), api.Deadline(10*time.Second))
	v1 := r.Group("/v1")
	me := v1.Group("/users/me", sessions.RequireUser())
	users.NewHandlers(us).Routes(me)
	wl.Routes(v1.Group("/auth/wallet"))
	return r
}

type hotKey struct {
	priv *ecdsa.PrivateKey
	addr string
}

func hotKeys(b *testing.B, n int) []hotKey {
	keys := make([]hotKey, n)
	for i := range keys {
		k, err := crypto.GenerateKey()
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = hotKey{k, crypto.PubkeyToAddress(k.PublicKey).Hex()}
	}
	return keys
}

func serve(r http.Handler, req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// BenchmarkHotChallenge: GET /v1/auth/wallet/challenge through the router
// (nonce from the CSPRNG, message text, two store writes, JSON answer).
func BenchmarkHotChallenge(b *testing.B) {
	r := hotRouter(b)
	keys := hotKeys(b, 64)
	var i atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := keys[i.Add(1)%int64(len(keys))]
			w := serve(r, httptest.NewRequest(http.MethodGet, "/v1/auth/wallet/challenge?address="+k.addr, nil))
			if w.Code != http.StatusOK {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	})
}

func hotLogin(b *testing.B, r http.Handler, k hotKey) string {
	auth, _ := hotLoginTokens(b, r, k)
	return auth
}

// hotLoginTokens signs k in and returns its auth token and access token.
func hotLoginTokens(b *testing.B, r http.Handler, k hotKey) (string, string) {
	w := serve(r, httptest.NewRequest(http.MethodGet, "/v1/auth/wallet/challenge?address="+k.addr, nil))
	if w.Code != http.StatusOK {
		b.Fatal(w.Code, w.Body.String())
	}
	var ch struct{ Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &ch); err != nil {
		b.Fatal(err)
	}
	sig, err := crypto.Sign(wallet.HashEIP191([]byte(ch.Message)).Bytes(), k.priv)
	if err != nil {
		b.Fatal(err)
	}
	sig[64] += 27
	body, _ := json.Marshal(map[string]string{"message": ch.Message, "signature": "0x" + hex.EncodeToString(sig)})
	req := httptest.NewRequest(http.MethodPost, "/v1/auth/wallet/login", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	w = serve(r, req)
	if w.Code != http.StatusOK {
		b.Fatal(w.Code, w.Body.String())
	}
	var lr struct {
		AuthToken   string `json:"auth_token"`
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &lr)
	return lr.AuthToken, lr.AccessToken
}

// BenchmarkHotWalletLoginReturning: a whole returning sign-in through the
// router on SQLite (challenge, client signature, login with its session
// insert). The client's signing is inside the timing, as in the load test.
func BenchmarkHotWalletLoginReturning(b *testing.B) {
	r := hotRouter(b)
	keys := hotKeys(b, 256)
	for _, k := range keys {
		hotLogin(b, r, k) // first logins: users exist from here on
	}
	var i atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			hotLogin(b, r, keys[i.Add(1)%int64(len(keys))])
		}
	})
}

// BenchmarkHotMe: GET /v1/users/me through the router, caches warm.
func BenchmarkHotMe(b *testing.B) {
	r := hotRouter(b)
	benchMe(b, r, hotLogin(b, r, hotKeys(b, 1)[0]))
}

// BenchmarkHotMeAccessToken is BenchmarkHotMe with the access token: an
// ES256 verification instead of a SHA-256, then the same session cache.
func BenchmarkHotMeAccessToken(b *testing.B) {
	r := hotRouter(b)
	_, tok := hotLoginTokens(b, r, hotKeys(b, 1)[0])
	benchMe(b, r, tok)
}

func benchMe(b *testing.B, r http.Handler, tok string) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/v1/users/me", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if w := serve(r, req); w.Code != http.StatusOK {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	})
}
