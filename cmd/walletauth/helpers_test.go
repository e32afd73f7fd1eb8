package main

// Shared helpers of the tests of the wired service: a test app built by
// newApp (the real router) with a fake clock, sending requests with
// apitest's helpers, and the backends (SQLite always; PostgreSQL + Redis when
// WALLETAUTH_TEST_DATABASE_URL / WALLETAUTH_TEST_REDIS_URL are set, required
// when CI=true).

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/config"
	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/mail/mailtest"
	"github.com/walletauth/walletauth/passwords"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// testSecretKey is a WALLETAUTH_SECRET_KEY (32 bytes, base64) for tests.
const testSecretKey = "d2FsbGV0YXV0aC10ZXN0LXNlcnZlci1rZXktMzJieXQ="

// testStart is where every test clock starts.
var testStart = time.Date(2026, 1, 22, 8, 36, 58, 0, time.UTC)

// newTestClock is a fake clock at testStart that moves only when advanced.
func newTestClock() *clocktest.Clock { return clocktest.New(testStart) }

// testApp is the wired service with its test clock. Requests made with do
// come from clientIP.
type testApp struct {
	*app
	clock          *clocktest.Clock
	apitest.Client // the account requests, from its IP
}

type testAppSetup struct {
	env    map[string]string
	clock  *clocktest.Clock
	hasher auth.Hasher
	worker bool // run the webhook worker (withWebhookWorker)
	stmts  *statementHook
}

// withStatements registers h's callbacks before the app's first query.
func withStatements(h *statementHook) testOption {
	return func(s *testAppSetup) { s.stmts = h }
}

// testOption configures newTestApp.
type testOption func(*testAppSetup)

// withEnv sets WALLETAUTH_* variables, given as name, value pairs with or
// without the prefix ("TOKEN_TTL", "1h").
func withEnv(pairs ...string) testOption {
	return func(s *testAppSetup) {
		if len(pairs)%2 != 0 {
			panic("withEnv: odd number of arguments")
		}
		for i := 0; i < len(pairs); i += 2 {
			name := pairs[i]
			if !strings.HasPrefix(name, config.Prefix) {
				name = config.Prefix + name
			}
			s.env[name] = pairs[i+1]
		}
	}
}

// withHasher makes the app hash new passwords with h.
func withHasher(h auth.Hasher) testOption {
	return func(s *testAppSetup) { s.hasher = h }
}

// withWebhookWorker runs the webhook delivery worker, off in other tests
// (its background queries would be counted by the SQL-counting tests).
func withWebhookWorker() testOption {
	return func(s *testAppSetup) { s.worker = true }
}

// withClock makes the app use c (share one clock between apps).
func withClock(c *clocktest.Clock) testOption {
	return func(s *testAppSetup) { s.clock = c }
}

// newTestApp builds the service with newApp from a configuration read by
// config.Load, on a SQLite file in t.TempDir() and the in-process store
// unless options name another database (see testBackends), with a fake clock
// and cheap argon2id parameters. It is closed when the test ends.
func newTestApp(t testing.TB, opts ...testOption) *testApp {
	t.Helper()
	s := &testAppSetup{env: map[string]string{}}
	for _, o := range opts {
		o(s)
	}
	if s.env[config.Prefix+"DATABASE_URL"] == "" {
		s.env[config.Prefix+"DATABASE_URL"] = sqliteURL(t)
	}
	if s.env[config.Prefix+"SECRET_KEY"] == "" && s.env[config.Prefix+"SECRET_KEY_FILE"] == "" {
		if config.IsPostgres(s.env[config.Prefix+"DATABASE_URL"]) {
			s.env[config.Prefix+"SECRET_KEY"] = testSecretKey // required there; one for apps sharing a database
		} else {
			s.env[config.Prefix+"SECRET_KEY_FILE"] = filepath.Join(t.TempDir(), "walletauth.key")
		}
	}
	if s.clock == nil {
		s.clock = newTestClock()
	}
	cfg, err := config.Load(mapEnv(s.env))
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	params := passwords.TestParams()
	opt := appOptions{now: s.clock.Now, passwordParams: &params, hasher: s.hasher, noWebhookWorker: !s.worker}
	if s.stmts != nil {
		opt.beforeWire = s.stmts.register
	}
	a, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler), opt)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	t.Cleanup(func() { _ = a.close() }) // a test may have closed the database already
	return &testApp{app: a, clock: s.clock, Client: apitest.Client{Handler: a.handler, IP: apitest.RandomIP(t)}}
}

// mapEnv is a getenv over m.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// environOf is m as os.Environ lists an environment (NAME=value).
func environOf(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// sqliteURL names a fresh SQLite file in a temporary directory.
func sqliteURL(t testing.TB) string {
	t.Helper()
	return "sqlite://" + filepath.Join(t.TempDir(), "walletauth.db")
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func randomHex(t testing.TB, n int) string { return hex.EncodeToString(randomBytes(t, n)) }

// testBackend is a way to give apps a database (and store): env returns the
// variables naming a fresh one; apps built with the same env share it.
type testBackend struct {
	name string
	env  func(t testing.TB) []string
}

// testBackends returns SQLite with the in-process store and, when
// WALLETAUTH_TEST_DATABASE_URL is set (required when CI=true), PostgreSQL
// with Redis when WALLETAUTH_TEST_REDIS_URL is set.
func testBackends(t testing.TB) []testBackend {
	t.Helper()
	bs := []testBackend{{name: "sqlite", env: func(t testing.TB) []string { return []string{"DATABASE_URL", sqliteURL(t)} }}}
	if storagetest.PostgresURL(t) != "" {
		bs = append(bs, testBackend{name: "postgres", env: postgresEnv})
	}
	return bs
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b testBackend)) {
	t.Helper()
	for _, b := range testBackends(t) {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// postgresEnv creates a throwaway schema in the test PostgreSQL (dropped
// when the test ends) and returns DATABASE_URL naming it, plus REDIS_URL when
// WALLETAUTH_TEST_REDIS_URL is set (required when CI=true). Without
// WALLETAUTH_TEST_DATABASE_URL it skips (fails when CI=true).
func postgresEnv(t testing.TB) []string {
	t.Helper()
	base := storagetest.PostgresURL(t)
	if base == "" {
		t.Skip("WALLETAUTH_TEST_DATABASE_URL not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := storage.Open(ctx, base, storage.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatalf("PostgreSQL at WALLETAUTH_TEST_DATABASE_URL is not reachable: %v", err)
	}
	schema := "t_" + randomHex(t, 6)
	if err := admin.WithContext(ctx).Exec("CREATE SCHEMA " + schema).Error; err != nil {
		_ = admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	// Registered before any app on this schema, so it runs after they close.
	t.Cleanup(func() {
		_ = admin.Exec("DROP SCHEMA " + schema + " CASCADE").Error
		_ = admin.Close()
	})
	// Instances on one database share its server key, as they must: it
	// seals the access-token signing keys they all use.
	env := []string{"DATABASE_URL", storagetest.WithSearchPath(t, base, schema),
		"SECRET_KEY", base64.StdEncoding.EncodeToString(randomBytes(t, 32))}
	if u := redisURL(t, false); u != "" {
		env = append(env, "REDIS_URL", u)
	}
	return env
}

// redisURL returns WALLETAUTH_TEST_REDIS_URL. Unset, it fails when CI=true,
// else skips when required, else returns "".
func redisURL(t testing.TB, required bool) string {
	t.Helper()
	u := os.Getenv("WALLETAUTH_TEST_REDIS_URL")
	if u == "" {
		switch {
		case os.Getenv("CI") == "true":
			t.Fatal("CI=true but WALLETAUTH_TEST_REDIS_URL is not set: the Redis tests are required in CI")
		case required:
			t.Skip("WALLETAUTH_TEST_REDIS_URL not set")
		}
	}
	return u
}

// do sends a request through the app's handler: apitest.NewRequest's
// bodies and headers (name, value pairs), from the app's client IP.
func (a *testApp) do(t testing.TB, method, path string, body any, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	return apitest.Do(t, a.handler, a.IP, method, path, body, headers...)
}

// newRequest is the request do would send.
func (a *testApp) newRequest(t testing.TB, method, path string, body any, headers ...string) *http.Request {
	t.Helper()
	return apitest.NewRequest(t, a.IP, method, path, body, headers...)
}

// lastCode is the code of the newest mail queued to email (mail is off in
// these apps).
func (a *testApp) lastCode(t testing.TB, email string) string {
	t.Helper()
	return mailtest.LastCode(t, newOutbox(a.cfg, a.db, a.now), email)
}

// otpLogin asks for a sign-in code and signs in with it.
func (a *testApp) otpLogin(t testing.TB, email string) apitest.Login {
	t.Helper()
	rec := a.do(t, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email})
	apitest.WantStatus(t, rec, http.StatusAccepted)
	rec = a.do(t, http.MethodPost, "/v1/auth/email/otp/verify", map[string]string{"email": email, "code": a.lastCode(t, email)})
	apitest.WantStatus(t, rec, http.StatusOK)
	var out apitest.Login
	apitest.DecodeJSON(t, rec, &out)
	return out
}

// newWalletOnlyUser creates a user without email (as wallet login will)
// directly in the store and issues it a session.
func (a *testApp) newWalletOnlyUser(t testing.TB) (*users.User, string) {
	t.Helper()
	ctx := context.Background()
	u, err := a.users.Create(ctx, users.NewUser{}, nil)
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	tok, _, err := a.sessions.Issue(ctx, u.ID, auth.Origin{Method: auth.MethodEmail})
	if err != nil {
		t.Fatalf("issue session: %v", err)
	}
	return u, tok
}
