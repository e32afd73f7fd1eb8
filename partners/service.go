package partners

import (
	"context"
	"time"

	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/points"
	"github.com/walletauth/walletauth/ratelimit"
	"github.com/walletauth/walletauth/users"
)

// Store is the part of the shared key-value store (kv.Store) the partner
// API uses: login codes and jti replay records. Backend failures wrap
// kv.ErrUnavailable and are answered 503: a jti or a login code is never
// accepted unchecked.
type Store interface {
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	Consume(ctx context.Context, key string) ([]byte, error)
}

// Limiter is the part of ratelimit.Limiter the partner API uses.
type Limiter interface {
	Allow(ctx context.Context, name, key string, lim ratelimit.Limit) (bool, time.Duration, error)
	Exceeded(ctx context.Context, name, key string, lim ratelimit.Limit) (bool, time.Duration, error)
	Hit(ctx context.Context, name, key string, lim ratelimit.Limit) error
}

// Ledger is the part of points.Ledger the partner API uses.
type Ledger interface {
	Apply(ctx context.Context, userID string, amount int64, reason, key string) (points.Entry, error)
	RankInPartner(ctx context.Context, scope users.Scope, userID string, n int) (points.Ranking, error)
}

// Rate is a limit of Max requests per Window; Max 0 disables it.
type Rate struct {
	Max    int64
	Window time.Duration
}

// Defaults of Options.
const (
	DefaultLoginCodeTTL = 5 * time.Minute
	// IATWindow is how far a request JWT's iat may be from now, either way.
	IATWindow = 300 * time.Second
	// jtiTTL is how long a jti is remembered: a JWT with iat = now+IATWindow
	// stays acceptable until now+2*IATWindow.
	jtiTTL = 2 * IATWindow
)

// Options tune the Service.
type Options struct {
	LoginCodeTTL time.Duration // default DefaultLoginCodeTTL
	Rate         Rate          // per partner, over every instance (WALLETAUTH_PARTNER_RATE)
	// CodeFailPerIP bounds refused login-code exchanges per client IP
	// (WALLETAUTH_LOGIN_CODE_FAIL_PER_IP); past it even a valid code gets
	// 429 until the window ends. Max 0 disables it.
	CodeFailPerIP Rate
}

// Service is the partner API.
type Service struct {
	reg      *Registry
	users    *users.Store
	sessions *auth.Sessions
	ledger   Ledger
	store    Store
	limiter  Limiter
	now      func() time.Time
	opt      Options
}

// New returns the partner API over its dependencies. limiter may be nil
// (no rate limit). It registers the partner identities with us as login
// methods (users.Store.SetLoginMethodCounter).
func New(reg *Registry, us *users.Store, sessions *auth.Sessions, ledger Ledger, store Store, limiter Limiter, now func() time.Time, opt Options) *Service {
	if now == nil {
		now = time.Now
	}
	if opt.LoginCodeTTL <= 0 {
		opt.LoginCodeTTL = DefaultLoginCodeTTL
	}
	// A partner identity is a way to log in: the users store counts it
	// before it lets a user lose its last one.
	us.SetLoginMethodCounter(CountIdentities)
	return &Service{reg: reg, users: us, sessions: sessions, ledger: ledger, store: store, limiter: limiter, now: now, opt: opt}
}
