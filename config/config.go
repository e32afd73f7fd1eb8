// Package config reads walletauth's settings from WALLETAUTH_* environment
// variables, applies defaults and validates them. It is a leaf package.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Prefix starts the name of every environment variable.
const Prefix = "WALLETAUTH_"

// Rate is a limit of Max events per Window; Max 0 disables it.
type Rate struct {
	Max    int64
	Window time.Duration
}

func (r Rate) String() string {
	if r.Max == 0 {
		return "0"
	}
	return fmt.Sprintf("%d/%s", r.Max, r.Window)
}

// Config is every setting of the service.
type Config struct {
	HTTPAddr            string
	DebugAddr           string
	DatabaseURL         string
	RedisURL            string
	SIWEDomain          string
	SIWEURI             string
	SIWEStatement       string
	AllowedDomains      []string
	ChainIDs            []uint64
	RPCURLs             map[uint64]string
	RPCTimeout          time.Duration
	ChallengeTTL        time.Duration
	TokenTTL            time.Duration
	LoginCodeTTL        time.Duration
	Issuer              string        // iss of access tokens and the OIDC discovery issuer
	TokenAudience       string        // aud of access tokens
	AccessTokenTTL      time.Duration // lifetime of an access token (JWT)
	AuditRetention      time.Duration // how long security activity events are kept (0 = forever)
	CORSOrigins         []string
	LogLevel            slog.Level
	LogFormat           string
	TrustedProxies      []string
	RequestTimeout      time.Duration
	ShutdownTimeout     time.Duration
	DBMaxOpenConns      int
	MemoryChallengesMax int // wallet nonces and challenge records held in process without Redis; 0: no limit
	CacheMiB            int // heap the in-process user and session caches may hold, MiB; 0: no caches
	SecretKey           string
	SecretKeyFile       string
	DemoPage            bool // serve the demo sign-in page at /demo

	EmailFailPerAccount Rate
	EmailFailPerIP      Rate
	WalletPerAddress    Rate
	WalletPerIP         Rate
	ChallengePerIP      Rate
	PartnerRate         Rate
	SignupPerIP         Rate
	LoginCodeFailPerIP  Rate

	// Mail (see the mail package).
	SMTPURL             string // empty: mail is off, the outbox is only read by `walletauth mail list`
	MailFrom            string
	SMTPTimeout         time.Duration
	MailTemplates       string
	MailGiveUpAfter     time.Duration
	MailRetention       time.Duration
	EmailCodeTTL        time.Duration
	EmailSendPerAddress Rate
	EmailSendPerIP      Rate
	WebhookAllowPrivate bool // webhook endpoints may be loopback/private addresses (development)
}

// Setting documents one environment variable (docs/configuration.md's table is made
// from the same words).
type Setting struct {
	Name, Default, Help string
}

// Defaults the memory limit (cmd/walletauth) is made from.
const (
	DefaultCacheMiB            = 16      // CACHE_MIB
	DefaultMemoryChallengesMax = 200_000 // MEMORY_CHALLENGES_MAX
)

// Settings lists every variable with its default.
func Settings() []Setting {
	return []Setting{
		{"HTTP_ADDR", "127.0.0.1:8080", "listen address (host:port; port 0 picks a free one)"},
		{"DEBUG_ADDR", "(empty: off)", "loopback host:port serving Go's net/http/pprof profiles (for profiling; never expose it)"},
		{"DATABASE_URL", "sqlite://walletauth.db", "sqlite:///absolute/path.db, sqlite://relative.db (its folder must exist), sqlite://:memory: or postgres://user@host:5432/db"},
		{"REDIS_URL", "(empty: in-process store)", "redis://host:6379/0, rediss://…, or a cluster/sentinel URL (see README)"},
		{"MEMORY_CHALLENGES_MAX", "200000", "without Redis: wallet nonces and challenge records held in process at most (~250 bytes each, ~50 MB at the default; the Go soft memory limit is raised by as much); past it new challenges are refused 503 until some expire; 0: no limit"},
		{"CACHE_MIB", "16", "heap the in-process caches of users and sessions may hold, in MiB as estimated per entry (half for users, half for sessions; a user ~1 KiB, a session ~0.5 KiB); 0 turns them off (every token check then reads the database)"},
		{"SIWE_DOMAIN", "host:port of HTTP_ADDR", "domain named in issued EIP-4361 challenges"},
		{"SIWE_URI", "http:// + SIWE_DOMAIN", "URI named in issued challenges; must be on SIWE_DOMAIN"},
		{"SIWE_STATEMENT", "Sign in with your wallet.", "statement line of issued challenges (one line)"},
		{"ALLOWED_DOMAINS", "SIWE_DOMAIN", "comma-separated domains a signed message may name"},
		{"CHAIN_IDS", "1", "comma-separated allowed chain IDs; the first is the challenge default"},
		{"RPC_URLS", "(none)", "chainId=url,… JSON-RPC endpoints for smart-contract wallets (EIP-1271/6492)"},
		{"RPC_TIMEOUT", "5s", "deadline of one contract-signature check"},
		{"CHALLENGE_TTL", "5m", "lifetime of a nonce/challenge"},
		{"TOKEN_TTL", "720h", "auth token lifetime (0 = no expiry)"},
		{"LOGIN_CODE_TTL", "5m", "lifetime of a partner login_code"},
		{"ISSUER", "origin of SIWE_URI", "iss claim of access tokens (JWT) and issuer of /.well-known/openid-configuration; an absolute http(s) URL without query, fragment or trailing slash"},
		{"TOKEN_AUDIENCE", "walletauth", "aud claim of access tokens"},
		{"ACCESS_TOKEN_TTL", "15m", "access token (JWT) lifetime, from 1m to 24h; never past its session's expiry"},
		{"AUDIT_RETENTION", "2160h", "how long security activity events (GET /v1/users/me/activity) are kept, 90 days by default (0 = forever)"},
		{"CORS_ORIGINS", "(none)", "comma-separated origins allowed by CORS (exact scheme://host:port, or *)"},
		{"LOG_LEVEL", "info", "debug, info, warn or error"},
		{"LOG_FORMAT", "json", "json or text"},
		{"TRUSTED_PROXIES", "(none)", "comma-separated proxy IPs/CIDRs whose X-Forwarded-For is believed"},
		{"REQUEST_TIMEOUT", "10s", "deadline of one request's work (database, store)"},
		{"SHUTDOWN_TIMEOUT", "25s", "how long SIGTERM waits for in-flight requests"},
		{"DB_MAX_OPEN_CONNS", "20", "PostgreSQL pool size (SQLite uses one connection)"},
		{"SECRET_KEY", "(empty: use SECRET_KEY_FILE; required with PostgreSQL)", "comma-separated 32-byte server keys (base64 or hex; `openssl rand -base64 32`) sealing partners' HS256 signing keys and the access-token signing keys; the first seals, all open. Every instance and every `walletauth partner` run needs the same keys, so with PostgreSQL `serve` and `partner create`/`rotate-secret` refuse to start without it (or an existing SECRET_KEY_FILE)"},
		{"SECRET_KEY_FILE", "walletauth.key beside the SQLite file (none with PostgreSQL)", "when SECRET_KEY is empty: a file holding the server key; with SQLite created (mode 0600) with a random key on first use, with PostgreSQL it must exist"},
		{"EMAIL_FAIL_PER_ACCOUNT", "10/15m", "failed email logins per account per window"},
		{"EMAIL_FAIL_PER_IP", "50/15m", "failed email logins per client IP per window"},
		{"WALLET_PER_ADDRESS", "100/1m", "failed wallet logins naming one address from one client IP per window, then 429 for that IP and address until it ends (never per address alone: others' failures do not lock the owner out)"},
		{"WALLET_PER_IP", "300/1m", "failed wallet logins per client IP per window, then 429 until it ends"},
		{"CHALLENGE_PER_IP", "600/1m", "wallet challenges and nonces issued per client IP per window (each is kept until used or expired); behind a proxy set TRUSTED_PROXIES, or every client shares its IP"},
		{"SIGNUP_PER_IP", "30/15m", "email sign-up attempts per client IP per window (those past the format checks, refused ones included), then 429 until it ends; 0: no limit"},
		{"PARTNER_RATE", "6000/1m", "partner API requests per partner per window"},
		{"LOGIN_CODE_FAIL_PER_IP", "50/15m", "refused login-code exchanges (`POST /v1/auth/code`) per client IP per window, then 429 until it ends"},
		{"SMTP_URL", "(empty: mail off)", "smtp://[user:pass@]host[:port] (STARTTLS when offered; port 587 by default) or smtps://… (implicit TLS; port 465); without it nothing is sent and `walletauth mail list` shows the outbox"},
		{"MAIL_FROM", "(empty; required with SMTP_URL)", "From of every mail, e.g. `walletauth <no-reply@example.com>`"},
		{"SMTP_TIMEOUT", "10s", "deadline of connecting to the SMTP server and of each SMTP command"},
		{"MAIL_TEMPLATES", "(empty: built-in)", "folder of mail templates (<lang>/<kind>.txt and .html) replacing or adding to the built-in ones"},
		{"MAIL_GIVE_UP_AFTER", "1h", "a mail not delivered this long after it was queued is given up (recorded as failed)"},
		{"MAIL_RETENTION", "24h", "sent and given-up mails are deleted from the outbox after this"},
		{"EMAIL_CODE_TTL", "10m", "lifetime of a mailed six-digit code"},
		{"EMAIL_SEND_PER_ADDRESS", "5/1h", "mailed codes asked for per email address per window"},
		{"EMAIL_SEND_PER_IP", "30/1h", "mailed codes asked for per client IP per window"},
		{"DEMO_PAGE", "false", "true: serve the demo sign-in page at /demo (`make run` turns it on)"},
		{"WEBHOOK_ALLOW_PRIVATE", "false", "true lets partner webhook URLs, and the addresses their names resolve to at delivery, be loopback, private or link-local (for development; keep false in production: SSRF)"},
	}
}

// Load reads the configuration from getenv (os.Getenv in production) and
// validates it. The error names the variable that is wrong.
func Load(getenv func(string) string) (Config, error) {
	var errs []error
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(Prefix + name)); v != "" {
			return v
		}
		return def
	}
	dur := func(name, def string) time.Duration {
		s := get(name, def)
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%s%s=%q: want a non-negative duration like 30s or 5m", Prefix, name, s))
		}
		return d
	}
	rate := func(name, def string) Rate {
		s := get(name, def)
		r, err := ParseRate(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s%s=%q: %w", Prefix, name, s, err))
		}
		return r
	}
	c := Config{
		HTTPAddr:            get("HTTP_ADDR", "127.0.0.1:8080"),
		DebugAddr:           get("DEBUG_ADDR", ""),
		DatabaseURL:         get("DATABASE_URL", "sqlite://walletauth.db"),
		RedisURL:            get("REDIS_URL", ""),
		SIWEStatement:       get("SIWE_STATEMENT", "Sign in with your wallet."),
		RPCTimeout:          dur("RPC_TIMEOUT", "5s"),
		ChallengeTTL:        dur("CHALLENGE_TTL", "5m"),
		TokenTTL:            dur("TOKEN_TTL", "720h"),
		LoginCodeTTL:        dur("LOGIN_CODE_TTL", "5m"),
		TokenAudience:       get("TOKEN_AUDIENCE", "walletauth"),
		AccessTokenTTL:      dur("ACCESS_TOKEN_TTL", "15m"),
		AuditRetention:      dur("AUDIT_RETENTION", "2160h"),
		LogFormat:           get("LOG_FORMAT", "json"),
		SecretKey:           get("SECRET_KEY", ""),
		SecretKeyFile:       get("SECRET_KEY_FILE", ""),
		RequestTimeout:      dur("REQUEST_TIMEOUT", "10s"),
		ShutdownTimeout:     dur("SHUTDOWN_TIMEOUT", "25s"),
		EmailFailPerAccount: rate("EMAIL_FAIL_PER_ACCOUNT", "10/15m"),
		EmailFailPerIP:      rate("EMAIL_FAIL_PER_IP", "50/15m"),
		WalletPerAddress:    rate("WALLET_PER_ADDRESS", "100/1m"),
		WalletPerIP:         rate("WALLET_PER_IP", "300/1m"),
		ChallengePerIP:      rate("CHALLENGE_PER_IP", "600/1m"),
		SignupPerIP:         rate("SIGNUP_PER_IP", "30/15m"),
		PartnerRate:         rate("PARTNER_RATE", "6000/1m"),
		LoginCodeFailPerIP:  rate("LOGIN_CODE_FAIL_PER_IP", "50/15m"),
		SMTPURL:             get("SMTP_URL", ""),
		MailFrom:            get("MAIL_FROM", ""),
		SMTPTimeout:         dur("SMTP_TIMEOUT", "10s"),
		MailTemplates:       get("MAIL_TEMPLATES", ""),
		MailGiveUpAfter:     dur("MAIL_GIVE_UP_AFTER", "1h"),
		MailRetention:       dur("MAIL_RETENTION", "24h"),
		EmailCodeTTL:        dur("EMAIL_CODE_TTL", "10m"),
		EmailSendPerAddress: rate("EMAIL_SEND_PER_ADDRESS", "5/1h"),
		EmailSendPerIP:      rate("EMAIL_SEND_PER_IP", "30/1h"),
	}
	switch v := get("WEBHOOK_ALLOW_PRIVATE", "false"); strings.ToLower(v) {
	case "true", "1":
		c.WebhookAllowPrivate = true
	case "false", "0":
	default:
		errs = append(errs, fmt.Errorf("%sWEBHOOK_ALLOW_PRIVATE=%q: want true or false", Prefix, v))
	}

	// HTTP_ADDR first: SIWE_DOMAIN and SIWE_URI default to values made from
	// it, and a bad address must be blamed on itself, not on them.
	httpAddrOK := validHostPort(c.HTTPAddr)
	if !httpAddrOK {
		errs = append(errs, fmt.Errorf("%sHTTP_ADDR=%q: want host:port with a port from 0 to 65535, such as 127.0.0.1:8080 or :8080", Prefix, c.HTTPAddr))
	}
	if c.DebugAddr != "" {
		if host, _, err := net.SplitHostPort(c.DebugAddr); err != nil || !IsLoopbackHost(host) {
			errs = append(errs, fmt.Errorf("%sDEBUG_ADDR=%q: want a loopback host:port such as 127.0.0.1:6060 (profiles must not be public)", Prefix, c.DebugAddr))
		}
	}
	if err := validateDatabaseURL(c.DatabaseURL); err != nil {
		errs = append(errs, fmt.Errorf("%sDATABASE_URL: %w", Prefix, err))
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || !(strings.HasPrefix(u.Scheme, "redis") || u.Scheme == "unix") {
			errs = append(errs, fmt.Errorf("%sREDIS_URL: want redis://, rediss://, redis+cluster://, redis+sentinel:// or unix://", Prefix))
		}
	}

	if c.SecretKeyFile == "" {
		c.SecretKeyFile = defaultKeyFile(c.DatabaseURL)
	}

	c.SIWEDomain = get("SIWE_DOMAIN", c.HTTPAddr)
	// Derived from a bad HTTP_ADDR (reported above), the SIWE defaults are
	// not checked: the fault is not theirs.
	derivedFromBadAddr := !httpAddrOK && get("SIWE_DOMAIN", "") == ""
	if !derivedFromBadAddr && (strings.ContainsAny(c.SIWEDomain, "/ \n") || c.SIWEDomain == "") {
		errs = append(errs, fmt.Errorf("%sSIWE_DOMAIN=%q: want a host or host:port (an RFC 3986 authority)", Prefix, c.SIWEDomain))
	}
	c.SIWEURI = get("SIWE_URI", "http://"+c.SIWEDomain)
	if u, err := url.Parse(c.SIWEURI); !derivedFromBadAddr && (err != nil || u.Scheme == "" || !strings.EqualFold(u.Host, c.SIWEDomain)) {
		errs = append(errs, fmt.Errorf("%sSIWE_URI=%q: want an absolute URI whose host is SIWE_DOMAIN %q", Prefix, c.SIWEURI, c.SIWEDomain))
	}
	c.Issuer = get("ISSUER", origin(c.SIWEURI))
	if err := validateIssuer(c.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("%sISSUER=%q: %w", Prefix, c.Issuer, err))
	}
	if c.AccessTokenTTL < MinAccessTokenTTL || c.AccessTokenTTL > MaxAccessTokenTTL {
		errs = append(errs, fmt.Errorf("%sACCESS_TOKEN_TTL=%s: want from %s to %s", Prefix, c.AccessTokenTTL, MinAccessTokenTTL, MaxAccessTokenTTL))
	}
	if strings.ContainsAny(c.SIWEStatement, "\n\r") {
		errs = append(errs, fmt.Errorf("%sSIWE_STATEMENT: must be one line", Prefix))
	}
	c.AllowedDomains = list(get("ALLOWED_DOMAINS", c.SIWEDomain))

	for _, s := range list(get("CHAIN_IDS", "1")) {
		id, err := strconv.ParseUint(s, 10, 64)
		if err != nil || id == 0 {
			errs = append(errs, fmt.Errorf("%sCHAIN_IDS: %q is not a positive decimal chain ID", Prefix, s))
			continue
		}
		c.ChainIDs = append(c.ChainIDs, id)
	}
	if len(c.ChainIDs) == 0 {
		errs = append(errs, fmt.Errorf("%sCHAIN_IDS: at least one chain ID is needed", Prefix))
	}

	c.RPCURLs = map[uint64]string{}
	for _, kv := range list(get("RPC_URLS", "")) {
		k, v, ok := strings.Cut(kv, "=")
		id, err := strconv.ParseUint(strings.TrimSpace(k), 10, 64)
		u, uerr := url.Parse(strings.TrimSpace(v))
		if !ok || err != nil || uerr != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ws" && u.Scheme != "wss") {
			errs = append(errs, fmt.Errorf("%sRPC_URLS: %q: want chainId=http(s)://url", Prefix, kv))
			continue
		}
		c.RPCURLs[id] = strings.TrimSpace(v)
	}

	c.CORSOrigins = list(get("CORS_ORIGINS", ""))
	for _, o := range c.CORSOrigins {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			errs = append(errs, fmt.Errorf("%sCORS_ORIGINS: %q: want scheme://host[:port]", Prefix, o))
		}
	}

	switch strings.ToLower(get("LOG_LEVEL", "info")) {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		errs = append(errs, fmt.Errorf("%sLOG_LEVEL=%q: want debug, info, warn or error", Prefix, get("LOG_LEVEL", "")))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("%sLOG_FORMAT=%q: want json or text", Prefix, c.LogFormat))
	}

	c.TrustedProxies = list(get("TRUSTED_PROXIES", ""))
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				errs = append(errs, fmt.Errorf("%sTRUSTED_PROXIES: %q is not an IP or CIDR", Prefix, p))
			}
		}
	}

	n, err := strconv.Atoi(get("DB_MAX_OPEN_CONNS", "20"))
	if err != nil || n < 1 {
		errs = append(errs, fmt.Errorf("%sDB_MAX_OPEN_CONNS: want a positive integer", Prefix))
	}
	c.DBMaxOpenConns = n
	m, err := strconv.Atoi(get("MEMORY_CHALLENGES_MAX", strconv.Itoa(DefaultMemoryChallengesMax)))
	if err != nil || m < 0 {
		errs = append(errs, fmt.Errorf("%sMEMORY_CHALLENGES_MAX: want a non-negative integer", Prefix))
	}
	c.MemoryChallengesMax = m
	cm, err := strconv.Atoi(get("CACHE_MIB", strconv.Itoa(DefaultCacheMiB)))
	if err != nil || cm < 0 || cm > 1<<20 {
		errs = append(errs, fmt.Errorf("%sCACHE_MIB: want an integer from 0 to 1048576", Prefix))
	}
	c.CacheMiB = cm
	demo, err := strconv.ParseBool(get("DEMO_PAGE", "false"))
	if err != nil {
		errs = append(errs, fmt.Errorf("%sDEMO_PAGE=%q: want true or false", Prefix, get("DEMO_PAGE", "")))
	}
	c.DemoPage = demo
	if c.ChallengeTTL == 0 {
		errs = append(errs, fmt.Errorf("%sCHALLENGE_TTL: must be positive", Prefix))
	}
	if c.LoginCodeTTL == 0 {
		errs = append(errs, fmt.Errorf("%sLOGIN_CODE_TTL: must be positive", Prefix))
	}
	errs = append(errs, c.validateMail()...)
	return c, errors.Join(errs...)
}

// Bounds of ACCESS_TOKEN_TTL: an access token cannot be revoked where it is
// verified offline, so it must be short-lived; under a minute it would
// expire before clients use it.
const (
	MinAccessTokenTTL = time.Minute
	MaxAccessTokenTTL = 24 * time.Hour
)

// origin is scheme://host[:port] of an absolute URI ("" when it has none).
func origin(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + u.Host
}

// validateIssuer accepts what OIDC allows as an issuer: an absolute http(s)
// URL with no query or fragment. A path is allowed, without a trailing "/"
// (discovery appends "/.well-known/…" to it).
func validateIssuer(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
		strings.HasSuffix(s, "/") || strings.ContainsAny(s, "?#") {
		return fmt.Errorf("want an absolute http(s) URL without query, fragment or trailing slash, e.g. https://app.example.com")
	}
	return nil
}

// validateMail checks the mail settings.
func (c *Config) validateMail() []error {
	var errs []error
	if c.SMTPURL != "" {
		u, err := url.Parse(c.SMTPURL)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
			errs = append(errs, fmt.Errorf("%sSMTP_URL: want smtp://[user:pass@]host[:port] or smtps://[user:pass@]host[:port]", Prefix))
		} else if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				errs = append(errs, fmt.Errorf("%sSMTP_URL: the port must be 1-65535", Prefix))
			}
		}
		if c.MailFrom == "" {
			errs = append(errs, fmt.Errorf("%sMAIL_FROM is required with SMTP_URL, e.g. \"walletauth <no-reply@example.com>\"", Prefix))
		}
	}
	if c.MailFrom != "" {
		if _, err := mail.ParseAddress(c.MailFrom); err != nil {
			errs = append(errs, fmt.Errorf("%sMAIL_FROM=%q: want an address such as walletauth <no-reply@example.com>", Prefix, c.MailFrom))
		}
	}
	if c.EmailCodeTTL == 0 {
		errs = append(errs, fmt.Errorf("%sEMAIL_CODE_TTL: must be positive", Prefix))
	}
	if c.MailGiveUpAfter == 0 {
		errs = append(errs, fmt.Errorf("%sMAIL_GIVE_UP_AFTER: must be positive", Prefix))
	}
	if c.MailRetention == 0 {
		errs = append(errs, fmt.Errorf("%sMAIL_RETENTION: must be positive", Prefix))
	}
	return errs
}

// ParseRate reads "N/duration" (e.g. "10/15m"); "0" disables the limit.
func ParseRate(s string) (Rate, error) {
	if s == "0" {
		return Rate{}, nil
	}
	n, w, ok := strings.Cut(s, "/")
	max, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
	if !ok || err != nil || max < 0 {
		return Rate{}, errors.New(`want "count/window" like 10/15m, or 0 to disable`)
	}
	d, err := time.ParseDuration(strings.TrimSpace(w))
	if err != nil || d <= 0 {
		return Rate{}, errors.New(`want "count/window" with a positive window like 15m`)
	}
	return Rate{Max: max, Window: d}, nil
}

// validateDatabaseURL accepts sqlite:// and postgres(ql):// URLs.
func validateDatabaseURL(s string) error {
	switch {
	case strings.HasPrefix(s, "sqlite://"):
		if strings.TrimPrefix(s, "sqlite://") == "" {
			return errors.New("sqlite:// needs a path, e.g. sqlite://walletauth.db")
		}
		return nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			var ue *url.Error
			if errors.As(err, &ue) { // its text repeats the URL, password and all
				err = ue.Err
			}
			return fmt.Errorf("not a valid postgres:// URL: %w", err)
		}
		return nil
	}
	return fmt.Errorf("%q: want sqlite://path or postgres://…", redact(s))
}

// defaultKeyFile keeps the server key beside an SQLite database (the two
// belong together), in the working directory for an in-memory one, and
// nowhere for PostgreSQL: every instance and every CLI run against a shared
// database must seal with the same key, so WALLETAUTH_SECRET_KEY is
// required there (a file per working directory would differ).
func defaultKeyFile(databaseURL string) string {
	if IsPostgres(databaseURL) {
		return ""
	}
	if p, ok := strings.CutPrefix(databaseURL, "sqlite://"); ok && p != ":memory:" {
		return filepath.Join(filepath.Dir(p), "walletauth.key")
	}
	return "walletauth.key"
}

// IsPostgres reports whether a WALLETAUTH_DATABASE_URL names PostgreSQL.
func IsPostgres(databaseURL string) bool {
	return strings.HasPrefix(databaseURL, "postgres://") || strings.HasPrefix(databaseURL, "postgresql://")
}

// validHostPort reports whether s is host:port: a host name or IP (or
// nothing) and a port from 0 to 65535.
func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// IsLoopbackHost reports whether host (no port) is localhost or a loopback
// IP (an IPv4-mapped one too).
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// UnknownVariable is a WALLETAUTH_* variable that names no setting (a typo
// such as WALLETAUTH_CHAINIDS), with the closest setting's name when one is
// near.
type UnknownVariable struct {
	Name, Suggestion string
}

// testPrefix starts the variables of walletauth's own tests
// (WALLETAUTH_TEST_DATABASE_URL, …), which may well be set where the
// service runs and are no typo.
const testPrefix = Prefix + "TEST_"

// Unknown returns the WALLETAUTH_* names among environ (NAME=value entries,
// as os.Environ returns them) that Load does not read, sorted.
func Unknown(environ []string) []UnknownVariable {
	known := map[string]bool{}
	for _, s := range Settings() {
		known[Prefix+s.Name] = true
	}
	var out []UnknownVariable
	seen := map[string]bool{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, Prefix) || strings.HasPrefix(name, testPrefix) || known[name] || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, UnknownVariable{Name: name, Suggestion: closestSetting(name)})
	}
	slices.SortFunc(out, func(a, b UnknownVariable) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// closestSetting is the setting whose name is fewest edits from name (at
// most 3), or "".
func closestSetting(name string) string {
	best, bestD := "", 4
	for _, s := range Settings() {
		if d := editDistance(strings.ToUpper(name), Prefix+s.Name); d < bestD {
			best, bestD = Prefix+s.Name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
