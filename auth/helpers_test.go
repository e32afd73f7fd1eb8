package auth_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/cache"
	"github.com/walletauth/walletauth/emailcode"
	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/kv/kvtest"
	"github.com/walletauth/walletauth/mail"
	"github.com/walletauth/walletauth/mail/mailtest"
	"github.com/walletauth/walletauth/passwords"
	"github.com/walletauth/walletauth/ratelimit"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/tokens"
	"github.com/walletauth/walletauth/tokens/tokenstest"
	"github.com/walletauth/walletauth/users"
	"github.com/walletauth/walletauth/wallet"
)

// The configured SIWE domain and URI of the test service.
const (
	testDomain   = "app.example.com"
	testURI      = "https://app.example.com/login"
	challengeTTL = 5 * time.Minute
	skew         = 30 * time.Second
	clientIP     = "198.51.100.7"
)

// testChains are the allowed chains; the first is the challenge default.
var testChains = []uint64{1, 137}

func init() { gin.SetMode(gin.TestMode) }

// testStart is where every test clock starts.
var testStart = time.Date(2026, 1, 22, 8, 36, 58, 0, time.UTC)

// newTestClock is the injected clock: it only moves when advanced.
func newTestClock() *clocktest.Clock { return clocktest.New(testStart) }

// env is a router wired like cmd/walletauth with the real pieces: the user
// store and sessions on a test database, wallet login over a kv store, email
// login and its mailed codes (the mail outbox on the same database, sent
// over SMTP with withSMTP), the rate limiter over the same store, the api
// middleware. Requests made with do and the Client's methods come from IP.
type env struct {
	router   *gin.Engine
	clock    *clocktest.Clock
	db       *storage.DB
	users    *users.Store
	sessions *auth.Sessions
	store    kv.Store
	cfg      auth.WalletConfig
	issuer   *tokens.Issuer
	keys     *tokens.Keys
	outbox   *mail.Outbox
	apitest.Client
}

type envConfig struct {
	sessionCache bool
	db           *storage.DB
	store        kv.Store
	clock        *clocktest.Clock
	contracts    auth.ContractVerifier
	wallet       auth.WalletConfig
	userCache    bool
	emailLimits  auth.EmailLimits
	codeLimits   auth.CodeLimits
	smtp         *mailtest.Server
}

type envOption func(*envConfig)

// withDB uses db instead of a fresh SQLite file.
func withDB(db *storage.DB) envOption { return func(c *envConfig) { c.db = db } }

// withStore uses st instead of an in-memory store on the test clock.
func withStore(st kv.Store) envOption { return func(c *envConfig) { c.store = st } }

// withContracts verifies smart-contract wallets with v.
func withContracts(v auth.ContractVerifier) envOption {
	return func(c *envConfig) { c.contracts = v }
}

// withUserCache caches user records in process (invalidated over a bus of
// this env's own), as the service does with Redis.
func withUserCache() envOption { return func(c *envConfig) { c.userCache = true } }

// withCaches caches users and sessions, over one bus, as the service does.
func withCaches() envOption {
	return func(c *envConfig) { c.userCache, c.sessionCache = true, true }
}

// withClock shares a clock (a ContractVerifier's, say) with the service.
func withClock(cl *clocktest.Clock) envOption { return func(c *envConfig) { c.clock = cl } }

// withCodeLimits changes the limits on asking for mailed codes.
func withCodeLimits(f func(*auth.CodeLimits)) envOption {
	return func(c *envConfig) { f(&c.codeLimits) }
}

// withSMTP sends the outbox's mail to srv, as the service does with
// WALLETAUTH_SMTP_URL; without it nothing is sent and the mails stay in the
// outbox.
func withSMTP(srv *mailtest.Server) envOption { return func(c *envConfig) { c.smtp = srv } }

// withWallet changes the wallet login rules.
func withWallet(f func(*auth.WalletConfig)) envOption {
	return func(c *envConfig) { f(&c.wallet) }
}

func newEnv(tb testing.TB, opts ...envOption) *env {
	tb.Helper()
	c := envConfig{wallet: auth.WalletConfig{
		Domain:         testDomain,
		URI:            testURI,
		Statement:      "Sign in to the example app.",
		AllowedDomains: []string{testDomain},
		ChainIDs:       testChains,
		ChallengeTTL:   challengeTTL,
		Skew:           skew,
	},
		// The service's defaults (config's).
		emailLimits: auth.EmailLimits{
			FailPerAccount: auth.Rate{Max: 10, Window: 15 * time.Minute},
			FailPerIP:      auth.Rate{Max: 50, Window: 15 * time.Minute},
			SignupPerIP:    auth.Rate{Max: 30, Window: 15 * time.Minute},
		},
		codeLimits: auth.CodeLimits{
			PerAddress: auth.Rate{Max: 5, Window: time.Hour},
			PerIP:      auth.Rate{Max: 30, Window: time.Hour},
		},
	}
	for _, o := range opts {
		o(&c)
	}
	if c.clock == nil {
		c.clock = newTestClock()
	}
	if c.db == nil {
		c.db = storagetest.OpenSQLite(tb)
	}
	if c.store == nil {
		m := kv.NewMemory(c.clock.Now)
		tb.Cleanup(func() { _ = m.Close() })
		c.store = m
	}
	us := users.NewStore(c.db, c.clock.Now, nil)
	bus := cache.NewLocalBus() // shared, as in the service: a user's change reaches the session cache
	if c.userCache {
		us.EnableCache(bus, 1<<20, time.Hour)
	}
	var sc auth.SessionCache
	if c.sessionCache {
		sc = auth.NewMemorySessionCache(bus, 1<<20, time.Hour, c.clock.Now)
	}
	sessions := auth.NewSessions(c.db, c.clock.Now, 30*24*time.Hour, sc)
	issuer, keys := tokenstest.NewIssuer(tb, c.db, tokenstest.Keyring(tb), c.clock.Now)
	sessions.UseAccessTokens(issuer, us)
	limiter := ratelimit.New(c.store, "rl:")
	wl := auth.NewWallet(us, sessions, c.store, c.contracts, limiter, c.wallet, c.clock.Now, nil)
	email, codes, outbox := newEmail(tb, &c, us, sessions, limiter)

	r := apitest.NewRouter(tb)
	issuer.Routes(r, nil)
	v1 := r.Group("/v1")
	sessions.TokenRoutes(v1.Group("/auth"))
	email.Routes(v1.Group("/auth/email"))
	codes.Routes(v1.Group("/auth"))
	authed := v1.Group("", sessions.RequireUser())
	sessions.SessionRoutes(authed.Group("/auth"))
	me := authed.Group("/users/me")
	users.NewHandlers(us).Routes(me)
	sessions.MeRoutes(me)
	email.MeRoutes(me)
	codes.MeRoutes(me)
	wl.Routes(v1.Group("/auth/wallet"))
	wl.MeRoutes(me)
	return &env{router: r, clock: c.clock, db: c.db, users: us, sessions: sessions, store: c.store, cfg: c.wallet, issuer: issuer, keys: keys,
		outbox: outbox, Client: apitest.Client{Handler: r, IP: clientIP}}
}

// newEmail is email login and its mailed codes as the service wires them:
// cheap argon2id parameters, codes in the env's store, mail queued in the
// outbox of the env's database and, with withSMTP, sent by a sender running
// until the test ends.
func newEmail(tb testing.TB, c *envConfig, us *users.Store, sessions *auth.Sessions, limiter *ratelimit.Limiter) (*auth.Email, *auth.EmailCodes, *mail.Outbox) {
	tb.Helper()
	policy, err := passwords.NewPolicy()
	if err != nil {
		tb.Fatal(err)
	}
	email := auth.NewEmail(us, sessions, policy, passwords.TestParams(), limiter, c.emailLimits, 4)
	templates, err := mail.LoadTemplates("")
	if err != nil {
		tb.Fatal(err)
	}
	outbox := mail.NewOutbox(c.db, c.clock.Now, time.Hour, "example.com")
	notify := func() {}
	if c.smtp != nil {
		tr, err := mail.NewSMTP(mail.SMTPConfig{URL: c.smtp.URL(), From: "walletauth <no-reply@example.com>"})
		if err != nil {
			tb.Fatal(err)
		}
		sender := mail.NewSender(outbox, tr, nil, mail.SenderOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); sender.Run(ctx) }()
		tb.Cleanup(func() { cancel(); <-done }) // before the database closes
		notify = sender.Notify
	}
	codes := auth.NewEmailCodes(email, emailcode.New(c.store, c.clock.Now, 10*time.Minute), outbox, templates, notify, c.codeLimits)
	return email, codes, outbox
}

// backend is a database and shared store pair the service runs on.
type backend struct {
	name string
	open func(t *testing.T) []envOption
}

// backends are SQLite with the in-memory store, always, and PostgreSQL with
// Redis when their test URLs are set (required when CI=true).
func backends(t *testing.T) []backend {
	t.Helper()
	bs := []backend{{name: "sqlite+memory", open: func(*testing.T) []envOption { return nil }}}
	pg := storagetest.PostgresURL(t)
	rd := os.Getenv(kvtest.RedisURLEnv)
	if rd == "" && os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but %s is not set: the Redis tests are required in CI", kvtest.RedisURLEnv)
	}
	if pg != "" && rd != "" {
		bs = append(bs, backend{name: "postgres+redis", open: func(t *testing.T) []envOption {
			return []envOption{withDB(storagetest.OpenPostgres(t)), withStore(kvtest.Redis(t))}
		}})
	}
	return bs
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// do sends a request from e.IP through the router (apitest.NewRequest's
// bodies), with token as its bearer token unless "".
func (e *env) do(tb testing.TB, method, path string, body any, token string) *httptest.ResponseRecorder {
	tb.Helper()
	return apitest.Do(tb, e.router, e.IP, method, path, body, apitest.Bearer(token)...)
}

type challengeJSON struct {
	Message   string `json:"message"`
	Nonce     string `json:"nonce"`
	ExpiresAt string `json:"expires_at"`
}

// wantLogin asserts a successful login answer for address.
func wantLogin(tb testing.TB, rec *httptest.ResponseRecorder, address common.Address, created bool) apitest.Login {
	tb.Helper()
	l := apitest.DecodeOK[apitest.Login](tb, rec)
	if !strings.HasPrefix(l.AuthToken, auth.TokenPrefix) || l.User.ID == "" {
		tb.Fatalf("login answer without token or user: %s", rec.Body)
	}
	if strings.Count(l.AccessToken, ".") != 2 || l.TokenType != "Bearer" || l.ExpiresIn <= 0 || rec.Header().Get("Cache-Control") != "no-store" {
		tb.Fatalf("login answer without an access token, or cacheable: %s %v", rec.Body, rec.Header())
	}
	if l.Created == nil || *l.Created != created {
		tb.Fatalf("created = %v, want %v: %s", l.Created, created, rec.Body)
	}
	if !hasWallet(l.User, address) {
		tb.Fatalf("user %s has no wallet %s: %s", l.User.ID, address.Hex(), rec.Body)
	}
	return l
}

func hasWallet(u apitest.User, a common.Address) bool {
	for _, w := range u.Wallets {
		if w.Address == a.Hex() { // EIP-55, exactly
			return true
		}
	}
	return false
}

// signer is a wallet key.
type signer struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}

func newSigner(tb testing.TB) signer {
	tb.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	return signer{key: k, addr: crypto.PubkeyToAddress(k.PublicKey)}
}

// sign returns the 65-byte personal_sign signature of msg, v = 0/1.
func (s signer) sign(tb testing.TB, msg string) []byte {
	tb.Helper()
	h := wallet.HashEIP191([]byte(msg))
	sig, err := crypto.Sign(h[:], s.key)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return sig
}

// hex0x is a signature as clients send it.
func hex0x(b []byte) string { return "0x" + hex.EncodeToString(b) }

// with27 turns v 0/1 into 27/28, as wallets' personal_sign returns it.
func with27(sig []byte) []byte {
	out := append([]byte{}, sig...)
	out[64] += 27
	return out
}

// compact is the 64-byte EIP-2098 form of a 65-byte signature.
func compact(sig []byte) []byte {
	out := append([]byte{}, sig[:64]...)
	if sig[64]%27 == 1 {
		out[32] |= 0x80
	}
	return out
}

// challenge asks GET /challenge for addr on the default chain.
func (e *env) challenge(tb testing.TB, addr string) challengeJSON {
	tb.Helper()
	return apitest.DecodeOK[challengeJSON](tb, e.do(tb, http.MethodGet, "/v1/auth/wallet/challenge?address="+addr, nil, ""))
}

// nonce asks GET /nonce.
func (e *env) nonce(tb testing.TB) string {
	tb.Helper()
	n := apitest.DecodeOK[map[string]string](tb, e.do(tb, http.MethodGet, "/v1/auth/wallet/nonce", nil, ""))
	if n["nonce"] == "" || n["expires_at"] == "" {
		tb.Fatalf("nonce answer %v", n)
	}
	return n["nonce"]
}

// selfMessage builds the message a client library (siwe, viem) makes around a
// nonce from GET /nonce: the configured domain and URI, its own Issued At with
// milliseconds, as JavaScript's toISOString writes it. edit may change it.
func (e *env) selfMessage(tb testing.TB, addr common.Address, nonce string, edit ...func(*wallet.Message)) string {
	tb.Helper()
	st := "Sign in with Ethereum to the app."
	m := &wallet.Message{
		Domain: testDomain, Address: addr, Statement: &st, URI: "https://app.example.com",
		Version: "1", ChainID: 1, Nonce: nonce,
		IssuedAt: e.clock.Now().Add(-1234 * time.Millisecond).Truncate(time.Millisecond),
	}
	for _, f := range edit {
		f(m)
	}
	if err := m.Validate(); err != nil {
		tb.Fatalf("self-built message: %v", err)
	}
	return m.String()
}

// login posts a {message, signature} body.
func (e *env) login(tb testing.TB, msg string, sig []byte) *httptest.ResponseRecorder {
	tb.Helper()
	return e.do(tb, http.MethodPost, "/v1/auth/wallet/login", map[string]string{"message": msg, "signature": hex0x(sig)}, "")
}

// loginRec logs s in through a fresh challenge.
func (e *env) loginRec(tb testing.TB, s signer) *httptest.ResponseRecorder {
	tb.Helper()
	ch := e.challenge(tb, s.addr.Hex())
	return e.login(tb, ch.Message, s.sign(tb, ch.Message))
}

// mustLogin logs s in through a fresh challenge and returns the answer.
func (e *env) mustLogin(tb testing.TB, s signer) apitest.Login {
	tb.Helper()
	return apitest.DecodeOK[apitest.Login](tb, e.loginRec(tb, s))
}

// linkBody is a signed body proving s for POST /v1/users/me/wallets.
func (e *env) linkBody(tb testing.TB, s signer) map[string]string {
	tb.Helper()
	ch := e.challenge(tb, s.addr.Hex())
	return map[string]string{"message": ch.Message, "signature": hex0x(s.sign(tb, ch.Message))}
}

// parallel runs f(i) for i < n on goroutines released together.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// testCtx bounds the store calls the tests make directly.
func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// barrier holds, once done, the first n row reads (gorm's Rows, as
// users.Store reads users) that match made outside a transaction, until all
// n have been done (or a second passed), so concurrent requests all read
// before any of them writes: it makes a check-then-create race happen every
// time instead of by chance. It counts the reads it held. A held read keeps
// its connection (the rows are open), so it needs a pool of more than one:
// PostgreSQL, not SQLite.
type barrier struct {
	mu      sync.Mutex
	n, seen int
	all     chan struct{}
}

func armBarrier(tb testing.TB, db *storage.DB, match func(*gorm.Statement) bool, n int) *barrier {
	tb.Helper()
	b := &barrier{n: n, all: make(chan struct{})}
	name := "test:barrier:" + tb.Name()
	err := db.Callback().Row().After("gorm:row").Register(name, func(tx *gorm.DB) {
		if !match(tx.Statement) {
			return
		}
		if _, inTx := tx.Statement.ConnPool.(gorm.TxCommitter); inTx {
			return
		}
		b.mu.Lock()
		if b.seen >= b.n {
			b.mu.Unlock()
			return
		}
		b.seen++
		if b.seen == b.n {
			close(b.all)
		}
		b.mu.Unlock()
		select {
		case <-b.all:
		case <-time.After(time.Second):
		}
	})
	if err != nil {
		tb.Fatalf("register barrier: %v", err)
	}
	tb.Cleanup(func() { _ = db.Callback().Row().Remove(name) })
	return b
}

func (b *barrier) held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen
}

// newEmailEnv is newEnv with the caches the service runs with, so that
// the email flows' revocations are seen through them; requests come from a
// random client IP.
func newEmailEnv(tb testing.TB, opts ...envOption) *env {
	tb.Helper()
	e := newEnv(tb, append([]envOption{withCaches()}, opts...)...)
	e.IP = apitest.RandomIP(tb)
	return e
}

// lastCode is the code of the newest mail queued to email.
func (e *env) lastCode(tb testing.TB, email string) string {
	tb.Helper()
	return mailtest.LastCode(tb, e.outbox, email)
}

// mailCount is the number of mails in the outbox.
func (e *env) mailCount(tb testing.TB) int {
	tb.Helper()
	rows, err := e.outbox.List(context.Background(), 0)
	if err != nil {
		tb.Fatal(err)
	}
	return len(rows)
}

// otpLogin asks for a sign-in code and signs in with it.
func (e *env) otpLogin(tb testing.TB, email string) apitest.Login {
	tb.Helper()
	apitest.WantStatus(tb, e.do(tb, http.MethodPost, "/v1/auth/email/otp", map[string]string{"email": email}, ""), http.StatusAccepted)
	return apitest.DecodeOK[apitest.Login](tb, e.do(tb, http.MethodPost, "/v1/auth/email/otp/verify",
		map[string]string{"email": email, "code": e.lastCode(tb, email)}, ""))
}
