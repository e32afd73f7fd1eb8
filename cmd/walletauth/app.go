package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/walletauth/walletauth/activity"
	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/cache"
	jsclient "github.com/walletauth/walletauth/clients/js"
	"github.com/walletauth/walletauth/config"
	"github.com/walletauth/walletauth/emailcode"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/metrics"
	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/passwords"
	"github.com/walletauth/walletauth/points"
	"github.com/walletauth/walletauth/ratelimit"
	"github.com/walletauth/walletauth/referrals"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/tokens"
	"github.com/walletauth/walletauth/users"
	"github.com/walletauth/walletauth/wallet"
	"github.com/walletauth/walletauth/web"
	"github.com/walletauth/walletauth/webhooks"
)

// app is the wired service: every dependency is built here and handed down.
type app struct {
	cfg      config.Config
	log      *slog.Logger
	now      func() time.Time
	db       *storage.DB
	kv       kv.Store
	users    *users.Store
	sessions *auth.Sessions
	activity *activity.Log
	router   *gin.Engine
	handler  http.Handler // router, answering HEAD on every GET route (what serve serves)
	metrics  *metrics.Metrics
	bus      *cache.Bus
	closers  []func() error
	redis    redis.UniversalClient // nil without Redis; the store (kv) closes it
	stop     context.CancelFunc    // ends background work (the invalidation bus)

	webhooksDone chan struct{} // closed when the webhook worker has stopped
}

// appOptions lets tests swap the clock and the password cost; run hands
// serve the unknown WALLETAUTH_* variables to warn of.
type appOptions struct {
	now            func() time.Time
	passwordParams *passwords.Params
	unknownVars    []config.UnknownVariable
	hasher         auth.Hasher // replaces the argon2id hasher of new passwords
	// noWebhookWorker leaves webhook delivery to other instances: tests that
	// count SQL statements or hook GORM callbacks need no background queries.
	noWebhookWorker bool
	// beforeWire, when set, is given the database after its migrations and
	// before any feature (or background goroutine) uses it: tests register
	// GORM callbacks there, which GORM does not allow concurrently with
	// queries.
	beforeWire func(*storage.DB)
}

var (
	serveHelp = help{
		usage: "walletauth serve [flags]",
		summary: `Run the HTTP server until SIGTERM or SIGINT. Migrations are applied first.
It prints "listening on http://ADDR" on stdout once the socket is open; the
log (one JSON object per line unless WALLETAUTH_LOG_FORMAT=text) is on stderr.`,
	}
	migrateHelp = help{
		usage:   "walletauth migrate [flags]",
		summary: "Apply the schema migrations not yet applied, print their names (or that the database is up to date), and exit.",
		vars:    []string{"DATABASE_URL"},
		note:    "Every other WALLETAUTH_* setting is checked too (see walletauth serve -h).",
	}
)

// loadConfig reads the settings, letting the command's flags override them.
// The command takes no positional argument.
func loadConfig(name string, h help, args []string, getenv func(string) string, stdout, stderr io.Writer) (config.Config, error) {
	fs := newFlagSet(name)
	addr := fs.String("addr", "", "listen address (overrides WALLETAUTH_HTTP_ADDR)")
	dbURL := fs.String("database-url", "", "database URL (overrides WALLETAUTH_DATABASE_URL)")
	redisURL := fs.String("redis-url", "", "Redis URL (overrides WALLETAUTH_REDIS_URL)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		printHelp(stdout, fs, h)
		return config.Config{}, errHelpShown
	} else if err != nil {
		printShortUsage(stderr, fs, h)
		return config.Config{}, fmt.Errorf("%s: %w", name, err)
	}
	if fs.NArg() > 0 {
		return config.Config{}, fmt.Errorf("%s takes no arguments, got %q (settings come from its flags and WALLETAUTH_* variables; see walletauth %s -h)",
			name, strings.Join(fs.Args(), " "), name)
	}
	overrides := map[string]string{
		config.Prefix + "HTTP_ADDR":    *addr,
		config.Prefix + "DATABASE_URL": *dbURL,
		config.Prefix + "REDIS_URL":    *redisURL,
	}
	return config.Load(func(k string) string {
		if v := overrides[k]; v != "" {
			return v
		}
		return getenv(k)
	})
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openStore opens the shared store over client (Redis), or the in-process
// store when no Redis is configured (client nil). Redis is not pinged: the
// service starts while Redis is down and answers the requests that need it
// 503 until it is back (/readyz tells).
func openStore(client redis.UniversalClient, now func() time.Time) kv.Store {
	if client == nil {
		return kv.NewMemory(now)
	}
	return kv.NewRedis(client, kv.DefaultPrefix)
}

// openRedis returns the process's one Redis client of cfg.RedisURL (nil
// when none is configured): the store, the cache bus and their pub/sub
// share its pool.
func openRedis(cfg config.Config) (redis.UniversalClient, error) {
	if cfg.RedisURL == "" {
		return nil, nil
	}
	client, err := kv.NewRedisClient(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("%sREDIS_URL: %w", config.Prefix, err)
	}
	return client, nil
}

// newApp opens the database (migrating it) and the shared store and wires
// every feature.
func newApp(ctx context.Context, cfg config.Config, log *slog.Logger, opt appOptions) (*app, error) {
	now := opt.now
	if now == nil {
		now = time.Now
	}
	db, err := openDatabase(ctx, cfg, storage.Options{MaxOpenConns: cfg.DBMaxOpenConns, Log: log})
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	client, err := openRedis(cfg)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	if opt.beforeWire != nil {
		opt.beforeWire(db)
	}
	// The store's Close closes the client, after everything else using it.
	a := &app{cfg: cfg, log: log, now: now, db: db, redis: client, kv: openStore(client, now)}
	if err := a.wire(opt); err != nil {
		_ = a.close()
		return nil, err
	}
	return a, nil
}

// openDatabase opens the configured database; a failure names the
// setting to look at.
func openDatabase(ctx context.Context, cfg config.Config, opt storage.Options) (*storage.DB, error) {
	db, err := storage.Open(ctx, cfg.DatabaseURL, opt)
	if err != nil {
		return nil, fmt.Errorf("%sDATABASE_URL: %w", config.Prefix, err)
	}
	return db, nil
}

func (a *app) wire(opt appOptions) error {
	cfg := a.cfg
	a.metrics = metrics.New()
	a.users = users.NewStore(a.db, a.now, nil)
	var sessionCache auth.SessionCache
	bus := cache.BusFor(a.redis, a.db.Dialect == storage.SQLite, kv.DefaultPrefix+"invalidate", a.log)
	bg, stop := context.WithCancel(context.Background()) // background work, ended by close
	a.stop = stop
	if bus != nil {
		a.bus = bus
		go bus.Run(bg)
		if half := cfg.CacheMiB << 20 / 2; half > 0 {
			a.users.EnableCache(bus, half, users.CacheTTL)
			sessionCache = auth.NewMemorySessionCache(bus, half, auth.SessionCacheTTL, a.now)
		}
	}
	a.sessions = auth.NewSessions(a.db, a.now, cfg.TokenTTL, sessionCache)
	a.activity = activity.New(a.db, a.now)
	a.sessions.UseActivity(a.activity)
	a.users.SetEventHook(a.activity.UsersHook())
	if cfg.AuditRetention > 0 {
		go a.activity.Sweep(bg, cfg.AuditRetention, time.Hour, a.log.Warn)
	}
	if cfg.TokenTTL > 0 {
		go a.sessions.Sweep(bg, time.Hour, a.log)
	}
	policy, err := passwords.NewPolicy()
	if err != nil {
		return err
	}
	params := passwords.DefaultParams()
	if opt.passwordParams != nil {
		params = *opt.passwordParams
	}
	limiter := ratelimit.New(a.kv, "rl:")
	email := auth.NewEmail(a.users, a.sessions, policy, params, limiter, auth.EmailLimits{
		FailPerAccount: auth.Rate(cfg.EmailFailPerAccount),
		FailPerIP:      auth.Rate(cfg.EmailFailPerIP),
		SignupPerIP:    auth.Rate(cfg.SignupPerIP),
	}, runtime.GOMAXPROCS(0)) // one argon2id (one thread, 19 MiB) per core: more adds memory, not throughput
	email.Observe(a.metrics.Login)
	if opt.hasher != nil {
		email.SetHasher(opt.hasher)
	}
	mailOutbox, templates, notifyMail, err := a.wireMail(bg)
	if err != nil {
		return err
	}
	emailCodes := auth.NewEmailCodes(email, emailcode.New(a.kv, a.now, cfg.EmailCodeTTL), mailOutbox, templates, notifyMail,
		auth.CodeLimits{PerAddress: auth.Rate(cfg.EmailSendPerAddress), PerIP: auth.Rate(cfg.EmailSendPerIP)})

	keys, err := loadKeyring(cfg)
	if err != nil {
		return err
	}
	partnerRegistry := partners.NewRegistry(a.db, keys, a.now)
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n, unreadable, err := partnerRegistry.Reseal(rctx); err != nil {
		return err
	} else if n > 0 || unreadable > 0 {
		a.log.Warn("partner signing keys resealed under the current server key", "resealed", n, "unreadable", unreadable)
	}
	signingKeys := tokens.NewKeys(a.db, keys, bus, cfg.AccessTokenTTL, a.now, a.log)
	if err := signingKeys.Load(rctx); err != nil {
		return err
	}
	go signingKeys.Run(bg)
	accessTokens := tokens.NewIssuer(signingKeys, cfg.Issuer, cfg.TokenAudience, cfg.AccessTokenTTL, a.now)
	a.sessions.UseAccessTokens(accessTokens, a.users)
	ledger := points.NewLedger(a.db, a.users, a.now)
	partnerAPI := partners.New(partnerRegistry, a.users, a.sessions, ledger, a.kv, limiter, a.now,
		partners.Options{LoginCodeTTL: cfg.LoginCodeTTL, Rate: partners.Rate(cfg.PartnerRate),
			CodeFailPerIP: partners.Rate(cfg.LoginCodeFailPerIP)})
	// Partner webhooks: events enter the outbox in the transaction of each
	// change of a user (the users TxHook); the worker delivers them.
	hooks := webhooks.NewOutbox(a.db, a.users, keys, a.now, cfg.WebhookAllowPrivate)
	a.users.SetTxHook(hooks.Enqueue)
	if !opt.noWebhookWorker {
		worker := webhooks.NewWorker(hooks, a.log, a.metrics, webhooks.WorkerOptions{AllowPrivate: cfg.WebhookAllowPrivate})
		a.webhooksDone = make(chan struct{})
		go func() { defer close(a.webhooksDone); worker.Run(bg) }()
	}

	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	// Route on the path as sent, so a percent-encoded "/" (%2F) stays inside
	// its segment: partner external IDs may contain one (handlers read them
	// with api.PathParam). No trailing-slash redirects: they are built from
	// the decoded path, so ".../x%2Fpoints/" would be sent to user x's
	// points; such a path is 404 not_found instead.
	r.UseRawPath = true
	r.RedirectTrailingSlash = false
	if err := r.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return fmt.Errorf("WALLETAUTH_TRUSTED_PROXIES: %w", err)
	}
	r.Use(api.HeadMethod()) // first: everything after sees a HEAD as HEAD (a.handler routes it as GET)
	// Recover inside the access log and the metrics: a panic is answered,
	// logged and counted as the 500 it is.
	r.Use(api.RequestID(), a.metrics.Middleware(), api.AccessLog(a.log), api.Recover(a.log), api.LimitBody(),
		api.CORS(cfg.CORSOrigins, "/v1/js/"), api.Deadline(cfg.RequestTimeout))
	r.Use(api.LimitHeaders()) // 431 in the error shape (serve's server reads up to api.ServerMaxHeaderBytes)
	r.NoRoute(api.NoRoute)
	r.NoMethod(api.NoMethod)

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", api.Ready(api.Check{What: "the database", Ping: a.db.Ping}, api.Check{What: "the shared store", Ping: a.kv.Ping}))
	r.GET("/metrics", gin.WrapH(a.metrics.Handler()))
	accessTokens.Routes(r, a.log)
	spec, err := api.OpenAPIJSON()
	if err != nil {
		return err
	}
	site, err := web.New(web.Options{SDK: jsclient.Source(), OpenAPI: spec, DemoPage: cfg.DemoPage})
	if err != nil {
		return err
	}
	site.Routes(r) // /sdk/walletauth.js, /openapi.json, /demo

	v1 := r.Group("/v1", api.NoStore())
	partnerAPI.Routes(v1, hooks.Routes, a.activity.PartnerRoutes(partnerAPI))
	email.Routes(v1.Group("/auth/email"))
	emailCodes.Routes(v1.Group("/auth"))
	authed := v1.Group("", a.sessions.RequireUser())
	a.sessions.SessionRoutes(authed.Group("/auth"))
	a.sessions.TokenRoutes(v1.Group("/auth"))
	me := authed.Group("/users/me")
	a.sessions.MeRoutes(me)
	users.NewHandlers(a.users).Routes(me)
	email.MeRoutes(me)
	emailCodes.MeRoutes(me)
	referrals.NewHandlers(referrals.NewService(a.users)).Routes(me)
	a.activity.MeRoutes(me)
	var contracts *wallet.ContractVerifier
	if len(cfg.RPCURLs) > 0 {
		chains, closeChains, err := wallet.DialChains(context.Background(), cfg.RPCURLs)
		if err != nil {
			return fmt.Errorf("WALLETAUTH_RPC_URLS: %w", err)
		}
		a.closers = append(a.closers, func() error { closeChains(); return nil })
		contracts = wallet.NewContractVerifier(chains, cfg.RPCTimeout, a.now)
	}
	// Without Redis, wallet nonces and challenges get an in-process store of
	// their own with a bound: anyone can ask for them, and each is kept
	// until used or expired, so a flood could otherwise grow the heap
	// without end, or (in one shared bounded store) crowd out the partner
	// API's counters, login codes and replay records.
	nonces := a.kv
	if a.cfg.RedisURL == "" {
		m := kv.NewMemory(a.now).Limit(a.cfg.MemoryChallengesMax)
		a.closers = append(a.closers, m.Close)
		nonces = m
	}
	wl := auth.NewWallet(a.users, a.sessions, nonces, optionalVerifier(contracts), limiter, auth.WalletConfig{
		Domain: cfg.SIWEDomain, URI: cfg.SIWEURI, Statement: cfg.SIWEStatement,
		AllowedDomains: cfg.AllowedDomains, ChainIDs: cfg.ChainIDs, ChallengeTTL: cfg.ChallengeTTL,
		PerAddress: auth.Rate(cfg.WalletPerAddress), PerIP: auth.Rate(cfg.WalletPerIP),
		ChallengePerIP: auth.Rate(cfg.ChallengePerIP),
	}, a.now, a.metrics.Login)
	wl.Routes(v1.Group("/auth/wallet"))
	wl.MeRoutes(me)
	a.router = r
	a.handler = api.HeadAsGet(r)
	return nil
}

// optionalVerifier keeps a nil *ContractVerifier from becoming a non-nil
// interface.
func optionalVerifier(v *wallet.ContractVerifier) auth.ContractVerifier {
	if v == nil {
		return nil
	}
	return v
}

func (a *app) close() error {
	if a.stop != nil {
		a.stop()
	}
	if a.webhooksDone != nil {
		<-a.webhooksDone // its last writes go to the database closed below
	}
	var errs []error
	for _, c := range a.closers {
		errs = append(errs, c())
	}
	// Last: the Redis client the store closes is the cache bus's too.
	errs = append(errs, a.kv.Close(), a.db.Close())
	return errors.Join(errs...)
}

// serve runs the HTTP server until ctx ends (SIGTERM/SIGINT), then stops
// accepting connections, lets in-flight requests finish within
// SHUTDOWN_TIMEOUT, and closes the database and store after the drain.
// It prints "listening on http://ADDR" once the socket is open.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, opt *appOptions) error {
	cfg, err := loadConfig("serve", serveHelp, args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	logOut := newBufferedLog(stderr)
	defer func() { _ = logOut.Close() }() // the last lines' write error has nowhere to go
	log := newLogger(cfg, logOut)
	useRedisLogger(log)
	if opt == nil {
		opt = &appOptions{}
	}
	for _, u := range opt.unknownVars {
		log.Warn(unknownMessage(u), "variable", u.Name, "did_you_mean", u.Suggestion)
	}
	if err := serveWith(ctx, cfg, log, stdout, *opt); err != nil {
		// Logged, so the log stays one JSON object per line; main does not
		// print it again.
		log.Error("stopped", "error", err)
		return &loggedError{err}
	}
	log.Info("stopped")
	return nil
}

// serveWith is serve once its log is set up: it builds the app, listens,
// and drains on ctx's end. Its error is serve's to log.
func serveWith(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer, opt appOptions) error {
	a, err := newApp(ctx, cfg, log, opt)
	if err != nil {
		return err
	}
	defer func() {
		if err := a.close(); err != nil {
			log.Error("close", "error", err)
		}
	}()

	if cfg.DebugAddr != "" {
		if _, err := serveDebug(ctx, cfg.DebugAddr, log); err != nil {
			return err
		}
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    api.ServerMaxHeaderBytes, // api.LimitHeaders answers past api.MaxHeaderBytes
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	log.Info("listening", "addr", ln.Addr().String(), "database", string(a.db.Dialect), "redis", cfg.RedisURL != "")

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "deadline_ms", cfg.ShutdownTimeout.Milliseconds())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// migrate applies the schema migrations and exits, saying which it applied.
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("migrate", migrateHelp, args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	db, err := openDatabase(ctx, cfg, storage.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }() // migrate's result is what matters
	before, err := db.AppliedMigrations(ctx)
	if err != nil {
		return err
	}
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	after, err := db.AppliedMigrations(ctx)
	if err != nil {
		return err
	}
	had := map[string]bool{}
	for _, id := range before {
		had[id] = true
	}
	n := 0
	for _, id := range after {
		if !had[id] {
			fmt.Fprintf(stdout, "applied migration %s\n", id)
			n++
		}
	}
	if n == 0 {
		fmt.Fprintf(stdout, "%s database is up to date (%d migrations applied)\n", db.Dialect, len(after))
		return nil
	}
	fmt.Fprintf(stdout, "%s database migrated: %d applied now, %d in all\n", db.Dialect, n, len(after))
	return nil
}
