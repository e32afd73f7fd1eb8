package auth

import (
	"context"
	"math"
	"time"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/ratelimit"
)

// Rate is a limit of Max events per Window; Max 0 disables it.
type Rate struct {
	Max    int64
	Window time.Duration
}

// limiter is the part of ratelimit.Limiter the login handlers use.
type limiter interface {
	Allow(ctx context.Context, name, key string, lim ratelimit.Limit) (bool, time.Duration, error)
	Exceeded(ctx context.Context, name, key string, lim ratelimit.Limit) (bool, time.Duration, error)
	Hit(ctx context.Context, name, key string, lim ratelimit.Limit) error
}

func rateLimited(retry time.Duration) error {
	return api.ErrRateLimited.WithRetryAfter(int(math.Ceil(retry.Seconds())))
}

// allow counts one attempt and refuses it past the limit.
func allow(ctx context.Context, l limiter, name, key string, r Rate) error {
	if r.Max == 0 || l == nil {
		return nil
	}
	ok, retry, err := l.Allow(ctx, name, key, ratelimit.Limit{Max: r.Max, Window: r.Window})
	if err != nil {
		return err
	}
	if !ok {
		return rateLimited(retry)
	}
	return nil
}

// exceeded refuses, without counting, when key already used up its limit.
func exceeded(ctx context.Context, l limiter, name, key string, r Rate) error {
	if r.Max == 0 || l == nil {
		return nil
	}
	over, retry, err := l.Exceeded(ctx, name, key, ratelimit.Limit{Max: r.Max, Window: r.Window})
	if err != nil {
		return err
	}
	if over {
		return rateLimited(retry)
	}
	return nil
}

func hit(ctx context.Context, l limiter, name, key string, r Rate) error {
	if r.Max == 0 || l == nil {
		return nil
	}
	return l.Hit(ctx, name, key, ratelimit.Limit{Max: r.Max, Window: r.Window})
}
