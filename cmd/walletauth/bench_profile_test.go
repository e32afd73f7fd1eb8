package main

// A throwaway-grade profiling harness over the real wiring (newApp: every
// middleware, the access log, metrics, caches), driven in process through
// the router, so `go test -cpuprofile` shows where a request's time goes:
//
//	go test -run '^$' -bench 'Profile' -cpuprofile /tmp/cpu.out ./cmd/walletauth/
//	go tool pprof -top -cum cmd/walletauth.test /tmp/cpu.out
//
// It also counts the SQL statements of one sign-in (GORM callbacks) for
// BENCHMARKS.md. SQLite by default; PostgreSQL + Redis when
// WALLETAUTH_BENCH_DATABASE_URL and WALLETAUTH_BENCH_REDIS_URL are set
// (use a database of your own; its tables are written to).

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/config"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/wallet"
)

// benchProfApp also returns the reader of its statement counts
// (countStatements, registered before the app's first query).
func benchProfApp(b testing.TB, logLevel string) (*app, func() map[string]int) {
	b.Helper()
	env := map[string]string{
		"WALLETAUTH_HTTP_ADDR":              "127.0.0.1:8080",
		"WALLETAUTH_DATABASE_URL":           "sqlite://" + filepath.Join(b.TempDir(), "bench.db"),
		"WALLETAUTH_WALLET_PER_IP":          "0",
		"WALLETAUTH_CHALLENGE_PER_IP":       "0",
		"WALLETAUTH_WALLET_PER_ADDRESS":     "0",
		"WALLETAUTH_EMAIL_FAIL_PER_IP":      "0",
		"WALLETAUTH_EMAIL_FAIL_PER_ACCOUNT": "0",
		"WALLETAUTH_SIGNUP_PER_IP":          "0",
		"WALLETAUTH_LOG_LEVEL":              logLevel,
	}
	if u := os.Getenv("WALLETAUTH_BENCH_DATABASE_URL"); u != "" {
		env["WALLETAUTH_DATABASE_URL"] = u
		env["WALLETAUTH_REDIS_URL"] = os.Getenv("WALLETAUTH_BENCH_REDIS_URL")
		env["WALLETAUTH_SECRET_KEY"] = testSecretKey // required with PostgreSQL
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		b.Fatal(err)
	}
	// The access log goes to a real file, as a server's stderr would.
	logf, err := os.Create(filepath.Join(b.TempDir(), "server.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = logf.Close() })
	var counts func() map[string]int
	a, err := newApp(context.Background(), cfg, newLogger(cfg, logf), appOptions{noWebhookWorker: true,
		beforeWire: func(db *storage.DB) { counts = countStatements(db) }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.close() })
	if a.bus != nil && a.cfg.RedisURL != "" {
		for i := 0; i < 200 && !a.bus.Healthy(); i++ { // wait for the subscription
			benchProfSleep()
		}
	}
	return a, counts
}

func benchProfSleep() { time.Sleep(10 * time.Millisecond) }

type benchProfKey struct {
	priv *ecdsa.PrivateKey
	addr string
}

func benchProfKeys(b testing.TB, n int) []benchProfKey {
	keys := make([]benchProfKey, n)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				k, err := crypto.GenerateKey()
				if err != nil {
					panic(err)
				}
				keys[i] = benchProfKey{k, crypto.PubkeyToAddress(k.PublicKey).Hex()}
			}
		}(w)
	}
	wg.Wait()
	return keys
}

func benchProfDo(r http.Handler, method, path, token string, body []byte) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = "127.0.0.1:40000"
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// benchProfLogin is one sign-in: challenge, sign (client side), login.
func benchProfLogin(b testing.TB, r http.Handler, k benchProfKey) (token string, created bool) {
	token, _, created = benchProfLoginTokens(b, r, k)
	return token, created
}

// benchProfLoginTokens is benchProfLogin, also returning the access token.
func benchProfLoginTokens(b testing.TB, r http.Handler, k benchProfKey) (token, access string, created bool) {
	w := benchProfDo(r, http.MethodGet, "/v1/auth/wallet/challenge?address="+k.addr, "", nil)
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
	w = benchProfDo(r, http.MethodPost, "/v1/auth/wallet/login", "", body)
	if w.Code != http.StatusOK {
		b.Fatal(w.Code, w.Body.String())
	}
	var lr struct {
		AuthToken   string `json:"auth_token"`
		AccessToken string `json:"access_token"`
		Created     bool   `json:"created"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &lr); err != nil {
		b.Fatal(err)
	}
	return lr.AuthToken, lr.AccessToken, lr.Created
}

func benchProfMe(b *testing.B, level string) {
	a, _ := benchProfApp(b, level)
	tok, _ := benchProfLogin(b, a.router, benchProfKeys(b, 1)[0])
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if w := benchProfDo(a.router, http.MethodGet, "/v1/users/me", tok, nil); w.Code != http.StatusOK {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	})
}

// GET /v1/users/me through the whole router, access log on (info) and off (warn).
func BenchmarkProfileMeLogInfo(b *testing.B) { benchProfMe(b, "info") }
func BenchmarkProfileMeLogWarn(b *testing.B) { benchProfMe(b, "warn") }

// BenchmarkProfileHealthz is the full middleware chain around a constant.
func BenchmarkProfileHealthzLogInfo(b *testing.B) {
	a, _ := benchProfApp(b, "info")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if w := benchProfDo(a.router, http.MethodGet, "/healthz", "", nil); w.Code != http.StatusOK {
				b.Fatal(w.Code)
			}
		}
	})
}

// BenchmarkProfileWalletFirst: every iteration the first sign-in of a new
// address (the client's key generation is outside the timer).
func BenchmarkProfileWalletFirst(b *testing.B) {
	a, _ := benchProfApp(b, "info")
	keys := benchProfKeys(b, b.N)
	var i atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, created := benchProfLogin(b, a.router, keys[i.Add(1)-1]); !created {
				b.Fatal("not created")
			}
		}
	})
}

// BenchmarkProfileWalletReturning: sign-ins of 256 known addresses.
func BenchmarkProfileWalletReturning(b *testing.B) {
	a, _ := benchProfApp(b, "info")
	keys := benchProfKeys(b, 256)
	for _, k := range keys {
		benchProfLogin(b, a.router, k)
	}
	var i atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchProfLogin(b, a.router, keys[i.Add(1)%int64(len(keys))])
		}
	})
}

// TestStatementsPerSignIn counts the SQL statements (GORM callbacks:
// queries, row reads, creates, updates, deletes, raw) of a first and a
// returning wallet sign-in and of GET /v1/users/me, and holds them to what
// BENCHMARKS.md reports: a first sign-in reads once and inserts the user,
// wallet and session (and caches the user); a returning one with its user
// cached only writes its session (the INSERT checks the owner); a token
// check with warm caches, the first sign-in's token included, runs no SQL.
// -v logs them.
func TestStatementsPerSignIn(t *testing.T) {
	var hook statementHook
	a := benchProfAppT(t, &hook)
	var mu sync.Mutex
	counts := map[string]int{}
	var tables []string
	count := func(kind string) func(*gorm.DB) {
		return func(db *gorm.DB) {
			mu.Lock()
			defer mu.Unlock()
			counts[kind]++
			what := db.Statement.Table
			if what == "" { // raw SQL: its first words
				what = db.Statement.SQL.String()
				if len(what) > 24 {
					what = what[:24]
				}
			}
			tables = append(tables, kind+":"+what)
		}
	}
	hook.set(func(kind string, db *gorm.DB) { count(kind)(db) })
	reset := func() (map[string]int, []string) {
		mu.Lock()
		defer mu.Unlock()
		c, tb := counts, tables
		counts, tables = map[string]int{}, nil
		return c, tb
	}
	want := func(what string, c map[string]int, tb []string, max map[string]int) {
		t.Helper()
		t.Logf("%s: %v  %v", what, c, tb)
		for kind, n := range c {
			if n > max[kind] {
				t.Errorf("%s: %d %s statements (%v), want at most %d", what, n, kind, tb, max[kind])
			}
		}
	}
	k := benchProfKeysT(t, 1)[0]
	reset()
	tok, created := benchProfLoginT(t, a.router, k)
	c, tb := reset()
	if !created {
		t.Fatal("the first sign-in did not create the user")
	}
	// users, wallets, sessions, and the login.succeeded activity event.
	want("first sign-in", c, tb, map[string]int{"row": 1, "insert": 4})
	tok2, created := benchProfLoginT(t, a.router, k)
	c, tb = reset()
	if created {
		t.Fatal("the returning sign-in created a user")
	}
	// The new user was cached when created: the session INSERT is the only
	// read or write of the sign-in, and it writes the row only if the
	// database agrees on the wallet's owner; then the login.succeeded
	// activity event is inserted in the session writer's transaction (on
	// PostgreSQL the session INSERT writes it).
	for _, what := range []string{"returning sign-in", "returning sign-in again"} {
		want(what, c, tb, map[string]int{"row": 1, "insert": 1})
		if len(tb) != 2 || !strings.HasPrefix(tb[0], "row:INSERT INTO sessions") || tb[1] != "insert:activity_events" {
			t.Errorf("%s: %v, want the session INSERT and the activity event alone", what, tb)
		}
		_, _ = benchProfLoginT(t, a.router, k)
		c, tb = reset()
	}
	for _, tk := range []string{tok, tok2} { // the first sign-in's token too: cached after its commit
		benchProfDo(a.router, http.MethodGet, "/v1/users/me", tk, nil)
		c, tb = reset()
		want("GET /v1/users/me, caches warm", c, tb, nil)
	}
}

// An email sign-up's token is cached after its commit too: the first GET
// /v1/users/me with it runs no SQL (the user was cached when created).
func TestFirstRequestAfterEmailSignupNeedsNoSQL(t *testing.T) {
	var hook statementHook
	a := benchProfAppT(t, &hook)
	w := benchProfDo(a.router, http.MethodPost, "/v1/auth/email/signup", "",
		[]byte(`{"email":"first@example.com","password":"a long and unusual passphrase 42"}`))
	if w.Code != http.StatusCreated {
		t.Fatal(w.Code, w.Body.String())
	}
	var lr struct {
		AuthToken string `json:"auth_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &lr); err != nil || lr.AuthToken == "" {
		t.Fatal(w.Body.String(), err)
	}
	var statements atomic.Int64
	hook.set(func(kind string, _ *gorm.DB) {
		if kind == "select" || kind == "row" || kind == "raw" {
			statements.Add(1)
		}
	})
	if w := benchProfDo(a.router, http.MethodGet, "/v1/users/me", lr.AuthToken, nil); w.Code != http.StatusOK {
		t.Fatal(w.Code, w.Body.String())
	}
	if n := statements.Load(); n != 0 {
		t.Fatalf("the first GET /v1/users/me after an email sign-up ran %d SQL statements, want none", n)
	}
}

// The T variants of the helpers, for the statement count.
func benchProfAppT(t *testing.T, hook *statementHook) *app {
	env := map[string]string{
		"WALLETAUTH_HTTP_ADDR":          "127.0.0.1:8080",
		"WALLETAUTH_DATABASE_URL":       "sqlite://" + filepath.Join(t.TempDir(), "bench.db"),
		"WALLETAUTH_WALLET_PER_IP":      "0",
		"WALLETAUTH_CHALLENGE_PER_IP":   "0",
		"WALLETAUTH_WALLET_PER_ADDRESS": "0",
		"WALLETAUTH_LOG_LEVEL":          "warn",
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler), appOptions{noWebhookWorker: true, beforeWire: hook.register})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.close() })
	return a
}

func benchProfKeysT(t *testing.T, n int) []benchProfKey {
	keys := make([]benchProfKey, n)
	for i := range keys {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = benchProfKey{k, crypto.PubkeyToAddress(k.PublicKey).Hex()}
	}
	return keys
}

func benchProfLoginT(t *testing.T, r http.Handler, k benchProfKey) (string, bool) {
	w := benchProfDo(r, http.MethodGet, "/v1/auth/wallet/challenge?address="+k.addr, "", nil)
	var ch struct{ Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &ch); err != nil {
		t.Fatal(w.Code, err)
	}
	sig, _ := crypto.Sign(wallet.HashEIP191([]byte(ch.Message)).Bytes(), k.priv)
	sig[64] += 27
	body, _ := json.Marshal(map[string]string{"message": ch.Message, "signature": "0x" + hex.EncodeToString(sig)})
	w = benchProfDo(r, http.MethodPost, "/v1/auth/wallet/login", "", body)
	if w.Code != http.StatusOK {
		t.Fatal(w.Code, w.Body.String())
	}
	var lr struct {
		AuthToken string `json:"auth_token"`
		Created   bool   `json:"created"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &lr)
	return lr.AuthToken, lr.Created
}
