package partners_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/points"
	"github.com/walletauth/walletauth/ratelimit"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/tokens/tokenstest"
	"github.com/walletauth/walletauth/users"
)

var start = time.Date(2026, 1, 22, 8, 36, 58, 0, time.UTC)

// env is the partner API wired over one test database, a fake clock and
// an in-process (or Redis) shared store.
type env struct {
	t        *testing.T
	db       *storage.DB
	clock    *clocktest.Clock
	store    kv.Store
	reg      *partners.Registry
	users    *users.Store
	sessions *auth.Sessions
	svc      *partners.Service
	router   *gin.Engine
}

type envOption func(*envConfig)

type envConfig struct {
	store kv.Store
	keys  *partners.Keyring
	rate  partners.Rate
}

func withStore(s kv.Store) envOption            { return func(c *envConfig) { c.store = s } }
func withKeyring(k *partners.Keyring) envOption { return func(c *envConfig) { c.keys = k } }
func withRate(r partners.Rate) envOption        { return func(c *envConfig) { c.rate = r } }

func newEnv(t *testing.T, db *storage.DB, opts ...envOption) *env {
	t.Helper()
	clock := clocktest.New(start)
	cfg := envConfig{keys: tokenstest.Keyring(t)}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.store == nil {
		m := kv.NewMemory(clock.Now)
		t.Cleanup(func() { _ = m.Close() })
		cfg.store = m
	}
	us := users.NewStore(db, clock.Now, nil)
	sessions := auth.NewSessions(db, clock.Now, 30*24*time.Hour, nil)
	issuer, _ := tokenstest.NewIssuer(t, db, cfg.keys, clock.Now)
	sessions.UseAccessTokens(issuer, us)
	reg := partners.NewRegistry(db, cfg.keys, clock.Now)
	ledger := points.NewLedger(db, us, clock.Now)
	svc := partners.New(reg, us, sessions, ledger, cfg.store, ratelimit.New(cfg.store, "rl:"), clock.Now,
		partners.Options{LoginCodeTTL: 5 * time.Minute, Rate: cfg.rate})
	r := apitest.NewRouter(t)
	r.Use(api.CORS(nil, "/v1/js/"))
	svc.Routes(r.Group("/v1"))
	return &env{t: t, db: db, clock: clock, store: cfg.store, reg: reg, users: us, sessions: sessions, svc: svc, router: r}
}

// partner is a created partner with its secret.
type partner struct {
	ID, Secret string
}

func (e *env) createPartner(np partners.NewPartner) partner {
	e.t.Helper()
	if np.Name == "" {
		np.Name = "Acme"
	}
	p, secret, err := e.reg.Create(context.Background(), np)
	if err != nil {
		e.t.Fatalf("create partner: %v", err)
	}
	return partner{ID: p.ID, Secret: secret}
}

// response is a recorded answer.
type response struct {
	Code   int
	Header http.Header
	Body   []byte
	rec    *httptest.ResponseRecorder
}

func (r response) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		tb.Fatalf("response %d is not a JSON object: %v: %s", r.Code, err, r.Body)
	}
	return m
}

// errorCode checks that r is exactly the contract's error shape and
// returns its code (apitest.ErrorCode).
func (r response) errorCode(tb testing.TB) string {
	tb.Helper()
	return apitest.ErrorCode(tb, r.rec)
}

// do sends a request through the router (a body is sent as JSON).
func (e *env) do(method, path string, body []byte, header map[string]string) response {
	e.t.Helper()
	var b any
	if body != nil {
		b = body
	}
	var pairs []string
	for k, v := range header {
		pairs = append(pairs, k, v)
	}
	rec := apitest.Do(e.t, e.router, "192.0.2.1", method, path, b, pairs...)
	return response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes(), rec: rec}
}

// withSecret sends a request authenticated by the plain secret.
func (e *env) withSecret(p partner, method, path string, body any) response {
	e.t.Helper()
	return e.do(method, path, marshal(e.t, body), map[string]string{"Authorization": "Bearer " + p.Secret})
}

// signed sends a request authenticated by a fresh HS256 JWT.
func (e *env) signed(p partner, method, path string, body any) response {
	e.t.Helper()
	b := marshal(e.t, body)
	tok := signHS256(e.t, p.Secret, e.claims(p.ID, b))
	return e.do(method, path, b, map[string]string{"Authorization": "Bearer " + tok})
}

// claims are valid request claims for body at the env's current time.
func (e *env) claims(iss string, body []byte) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":         iss,
		"iat":         e.clock.Now().Unix(),
		"jti":         randomHex(e.t),
		"body_sha256": bodySHA256(body),
	}
}

func marshal(tb testing.TB, body any) []byte {
	tb.Helper()
	switch b := body.(type) {
	case nil:
		return nil
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	out, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func bodySHA256(body []byte) string {
	sum := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func signHS256(tb testing.TB, secret string, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func randomHex(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// wantError checks the status, the error shape and the contract code of
// an error answer.
func wantError(tb testing.TB, r response, status int, code string) {
	tb.Helper()
	apitest.WantError(tb, r.rec, status, code)
}

func wantOK(tb testing.TB, r response) map[string]any {
	tb.Helper()
	if r.Code != http.StatusOK {
		tb.Fatalf("got %d %s, want 200", r.Code, r.Body)
	}
	return r.json(tb)
}

// login logs external ID ext in at p and returns the answer.
func (e *env) login(p partner, body any) map[string]any {
	e.t.Helper()
	return wantOK(e.t, e.withSecret(p, http.MethodPost, "/v1/partner/users/login", body))
}
