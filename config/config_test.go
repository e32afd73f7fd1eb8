package config_test

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/walletauth/walletauth/config"
)

// env is a getenv over name, value pairs given without the prefix.
func env(pairs ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[config.Prefix+pairs[i]] = pairs[i+1]
	}
	return func(k string) string { return m[k] }
}

func mustLoad(t *testing.T, pairs ...string) config.Config {
	t.Helper()
	c, err := config.Load(env(pairs...))
	if err != nil {
		t.Fatalf("Load(%q): %v", pairs, err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t)
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	check("HTTPAddr", c.HTTPAddr, "127.0.0.1:8080")
	check("DatabaseURL", c.DatabaseURL, "sqlite://walletauth.db")
	check("RedisURL", c.RedisURL, "")
	check("SIWEDomain", c.SIWEDomain, "127.0.0.1:8080")
	check("SIWEURI", c.SIWEURI, "http://127.0.0.1:8080")
	check("AllowedDomains", c.AllowedDomains, []string{"127.0.0.1:8080"})
	check("ChainIDs", c.ChainIDs, []uint64{1})
	check("RPCURLs", len(c.RPCURLs), 0)
	check("TokenTTL", c.TokenTTL, 720*time.Hour)
	check("ChallengeTTL", c.ChallengeTTL, 5*time.Minute)
	check("LoginCodeTTL", c.LoginCodeTTL, 5*time.Minute)
	check("CORSOrigins", len(c.CORSOrigins), 0)
	check("TrustedProxies", len(c.TrustedProxies), 0)
	check("LogLevel", c.LogLevel, slog.LevelInfo)
	check("EmailFailPerAccount", c.EmailFailPerAccount, config.Rate{Max: 10, Window: 15 * time.Minute})
	check("EmailFailPerIP", c.EmailFailPerIP, config.Rate{Max: 50, Window: 15 * time.Minute})
	check("LoginCodeFailPerIP", c.LoginCodeFailPerIP, config.Rate{Max: 50, Window: 15 * time.Minute})
	check("SignupPerIP", c.SignupPerIP, config.Rate{Max: 30, Window: 15 * time.Minute})
	if c.RequestTimeout <= 0 || c.ShutdownTimeout <= 0 || c.ShutdownTimeout >= 30*time.Second {
		t.Errorf("RequestTimeout %v, ShutdownTimeout %v: want positive, and shutdown within the contract's 30 s", c.RequestTimeout, c.ShutdownTimeout)
	}
	if c.DBMaxOpenConns < 1 {
		t.Errorf("DBMaxOpenConns = %d", c.DBMaxOpenConns)
	}
}

// Blank values count as unset.
func TestBlankIsDefault(t *testing.T) {
	if got, want := mustLoad(t, "HTTP_ADDR", "  ", "TOKEN_TTL", "", "CHAIN_IDS", " "), mustLoad(t); !reflect.DeepEqual(got, want) {
		t.Errorf("blank values: %+v, want the defaults %+v", got, want)
	}
}

func TestDerivedDefaults(t *testing.T) {
	c := mustLoad(t, "HTTP_ADDR", "0.0.0.0:9000")
	if c.SIWEDomain != "0.0.0.0:9000" || c.SIWEURI != "http://0.0.0.0:9000" || !reflect.DeepEqual(c.AllowedDomains, []string{"0.0.0.0:9000"}) {
		t.Errorf("from HTTP_ADDR: domain %q uri %q allowed %q", c.SIWEDomain, c.SIWEURI, c.AllowedDomains)
	}
	c = mustLoad(t, "SIWE_DOMAIN", "auth.example.com")
	if c.SIWEURI != "http://auth.example.com" || !reflect.DeepEqual(c.AllowedDomains, []string{"auth.example.com"}) {
		t.Errorf("from SIWE_DOMAIN: uri %q allowed %q", c.SIWEURI, c.AllowedDomains)
	}
	c = mustLoad(t, "SIWE_DOMAIN", "auth.example.com", "SIWE_URI", "https://auth.example.com/login",
		"ALLOWED_DOMAINS", "auth.example.com, app.example.com")
	if c.SIWEURI != "https://auth.example.com/login" || !reflect.DeepEqual(c.AllowedDomains, []string{"auth.example.com", "app.example.com"}) {
		t.Errorf("explicit: uri %q allowed %q", c.SIWEURI, c.AllowedDomains)
	}
}

func TestValues(t *testing.T) {
	c := mustLoad(t,
		"CHAIN_IDS", "137, 1,8453",
		"RPC_URLS", "1=https://eth.example.com/rpc, 137=wss://poly.example.com",
		"TOKEN_TTL", "0",
		"CORS_ORIGINS", "https://app.example.com, http://localhost:3000",
		"TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1",
		"LOG_LEVEL", "DEBUG",
		"LOG_FORMAT", "text",
		"DB_MAX_OPEN_CONNS", "5",
		"MEMORY_CHALLENGES_MAX", "0",
		"EMAIL_FAIL_PER_IP", "3/15m",
		"SIGNUP_PER_IP", "0",
		"DATABASE_URL", "postgres://user:pw@db.example.com:5432/walletauth?sslmode=disable",
		"REDIS_URL", "redis://127.0.0.1:6379/0",
	)
	if !reflect.DeepEqual(c.ChainIDs, []uint64{137, 1, 8453}) {
		t.Errorf("ChainIDs = %v", c.ChainIDs)
	}
	if !reflect.DeepEqual(c.RPCURLs, map[uint64]string{1: "https://eth.example.com/rpc", 137: "wss://poly.example.com"}) {
		t.Errorf("RPCURLs = %v", c.RPCURLs)
	}
	if c.TokenTTL != 0 {
		t.Errorf("TokenTTL = %v, want 0 (no expiry)", c.TokenTTL)
	}
	if !reflect.DeepEqual(c.CORSOrigins, []string{"https://app.example.com", "http://localhost:3000"}) {
		t.Errorf("CORSOrigins = %q", c.CORSOrigins)
	}
	if !reflect.DeepEqual(c.TrustedProxies, []string{"10.0.0.0/8", "192.168.1.1"}) {
		t.Errorf("TrustedProxies = %q", c.TrustedProxies)
	}
	if c.LogLevel != slog.LevelDebug || c.LogFormat != "text" || c.DBMaxOpenConns != 5 {
		t.Errorf("LogLevel %v LogFormat %q DBMaxOpenConns %d", c.LogLevel, c.LogFormat, c.DBMaxOpenConns)
	}
	if c.MemoryChallengesMax != 0 || mustLoad(t).MemoryChallengesMax != 200000 {
		t.Errorf("MemoryChallengesMax %d, want 0 when set to 0 and 200000 by default", c.MemoryChallengesMax)
	}
	if c := mustLoad(t); c.ChallengePerIP != (config.Rate{Max: 600, Window: time.Minute}) {
		t.Errorf("ChallengePerIP %v, want 600/1m by default", c.ChallengePerIP)
	}
	if c.EmailFailPerIP != (config.Rate{Max: 3, Window: 15 * time.Minute}) || c.SignupPerIP != (config.Rate{}) {
		t.Errorf("EmailFailPerIP %v SignupPerIP %v", c.EmailFailPerIP, c.SignupPerIP)
	}
	for _, u := range []string{"sqlite:///var/lib/walletauth/w.db", "sqlite://relative.db", "sqlite://:memory:", "postgresql://h/db"} {
		mustLoad(t, "DATABASE_URL", u)
	}
	mustLoad(t, "CORS_ORIGINS", "*")
	if mustLoad(t).DemoPage || !mustLoad(t, "DEMO_PAGE", "true").DemoPage {
		t.Error("DemoPage: want off by default and on with DEMO_PAGE=true")
	}
	for _, a := range []string{"127.0.0.1:6060", "localhost:0", "[::1]:6060", "[::ffff:127.0.0.1]:6060"} {
		if c := mustLoad(t, "DEBUG_ADDR", a); c.DebugAddr != a {
			t.Errorf("DebugAddr = %q, want %q", c.DebugAddr, a)
		}
	}
}

// Every bad value is refused with an error that names its variable.
func TestBadValuesNameTheVariable(t *testing.T) {
	cases := []struct{ name, value string }{
		{"HTTP_ADDR", "localhost"},
		{"HTTP_ADDR", "http://127.0.0.1:8080"},
		{"DEBUG_ADDR", "0.0.0.0:6060"},
		{"DEBUG_ADDR", ":6060"},
		{"DEBUG_ADDR", "localhost"},
		{"DATABASE_URL", "mysql://db/walletauth"},
		{"DATABASE_URL", "sqlite://"},
		{"DATABASE_URL", "walletauth.db"},
		{"DATABASE_URL", "postgres://h:badport/db"},
		{"REDIS_URL", "http://127.0.0.1:6379"},
		{"REDIS_URL", "127.0.0.1:6379"},
		{"SIWE_DOMAIN", "example.com/path"},
		{"SIWE_DOMAIN", "exa mple.com"},
		{"SIWE_URI", "https://other.example.com"},
		{"SIWE_URI", "/relative"},
		{"SIWE_STATEMENT", "two\nlines"},
		{"CHAIN_IDS", "abc"},
		{"CHAIN_IDS", "0"},
		{"CHAIN_IDS", "-1"},
		{"CHAIN_IDS", "1,x"},
		{"CHAIN_IDS", ","},
		{"CHAIN_IDS", "1.5"},
		{"RPC_URLS", "1"},
		{"RPC_URLS", "x=https://rpc.example.com"},
		{"RPC_URLS", "1=ftp://rpc.example.com"},
		{"RPC_URLS", "1=rpc.example.com"},
		{"RPC_TIMEOUT", "5"},
		{"RPC_TIMEOUT", "-1s"},
		{"CHALLENGE_TTL", "0"},
		{"CHALLENGE_TTL", "five minutes"},
		{"TOKEN_TTL", "-1h"},
		{"TOKEN_TTL", "30d"},
		{"LOGIN_CODE_TTL", "0s"},
		{"LOGIN_CODE_TTL", "x"},
		{"CORS_ORIGINS", "app.example.com"},
		{"CORS_ORIGINS", "https://app.example.com/path"},
		{"LOG_LEVEL", "loud"},
		{"LOG_FORMAT", "xml"},
		{"TRUSTED_PROXIES", "1.2.3"},
		{"TRUSTED_PROXIES", "10.0.0.0/33"},
		{"REQUEST_TIMEOUT", "soon"},
		{"SHUTDOWN_TIMEOUT", "-5s"},
		{"DB_MAX_OPEN_CONNS", "0"},
		{"DB_MAX_OPEN_CONNS", "many"},
		{"MEMORY_CHALLENGES_MAX", "-1"},
		{"MEMORY_CHALLENGES_MAX", "lots"},
		{"CHALLENGE_PER_IP", "600"},
		{"EMAIL_FAIL_PER_ACCOUNT", "10"},
		{"EMAIL_FAIL_PER_ACCOUNT", "10/0s"},
		{"EMAIL_FAIL_PER_IP", "-1/15m"},
		{"EMAIL_FAIL_PER_IP", "x/15m"},
		{"WALLET_PER_ADDRESS", "30/soon"},
		{"WALLET_PER_IP", "/1m"},
		{"SIGNUP_PER_IP", "60/-1h"},
		{"PARTNER_RATE", "lots"},
		{"DEMO_PAGE", "yes please"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			_, err := config.Load(env(tc.name, tc.value))
			if err == nil {
				t.Fatalf("Load accepted %s%s=%q", config.Prefix, tc.name, tc.value)
			}
			if !strings.Contains(err.Error(), config.Prefix+tc.name) {
				t.Errorf("error %q does not name %s%s", err, config.Prefix, tc.name)
			}
		})
	}
}

// Several bad values are all reported at once.
func TestAllErrorsReported(t *testing.T) {
	_, err := config.Load(env("CHAIN_IDS", "x", "TOKEN_TTL", "y", "LOG_LEVEL", "z"))
	if err == nil {
		t.Fatal("Load accepted three bad values")
	}
	for _, name := range []string{"CHAIN_IDS", "TOKEN_TTL", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), config.Prefix+name) {
			t.Errorf("error %q does not name %s%s", err, config.Prefix, name)
		}
	}
}

// A password in a bad database URL is not echoed in the error.
func TestBadDatabaseURLIsRedacted(t *testing.T) {
	_, err := config.Load(env("DATABASE_URL", "mysql://user:s3cret-pw@db/walletauth"))
	if err == nil {
		t.Fatal("Load accepted a mysql URL")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error %q shows the password", err)
	}
}

func TestParseRate(t *testing.T) {
	good := map[string]config.Rate{
		"10/15m":   {Max: 10, Window: 15 * time.Minute},
		"0":        {},
		"1/1s":     {Max: 1, Window: time.Second},
		"6000/1m":  {Max: 6000, Window: time.Minute},
		" 5 / 1h ": {Max: 5, Window: time.Hour},
		"0/1m":     {Max: 0, Window: time.Minute},
	}
	for s, want := range good {
		got, err := config.ParseRate(s)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "10", "/15m", "10/", "a/1m", "10/0s", "10/-1m", "-1/1m", "10/15", "10/15m/2", "1e3/1m"} {
		if r, err := config.ParseRate(s); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", s, r)
		}
	}
	// String writes what ParseRate reads.
	for _, r := range []config.Rate{{}, {Max: 10, Window: 15 * time.Minute}, {Max: 3, Window: 90 * time.Second}} {
		back, err := config.ParseRate(r.String())
		if err != nil || back != r {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", r.String(), back, err, r)
		}
	}
}

// The documented default of every setting that has a literal one is the
// default Load applies.
func TestSettingsDefaultsMatchLoad(t *testing.T) {
	defaults := mustLoad(t)
	names := map[string]bool{}
	for _, s := range config.Settings() {
		names[s.Name] = true
	}
	for _, s := range config.Settings() {
		if s.Default == "" || strings.HasPrefix(s.Default, "(") || strings.Contains(s.Default, " ") || names[s.Default] {
			continue // a description, not a value
		}
		got, err := config.Load(env(s.Name, s.Default))
		if err != nil {
			t.Errorf("%s%s: its documented default %q is refused: %v", config.Prefix, s.Name, s.Default, err)
			continue
		}
		if !reflect.DeepEqual(got, defaults) {
			t.Errorf("%s%s=%q (its documented default) gives another configuration than leaving it unset", config.Prefix, s.Name, s.Default)
		}
	}
}
