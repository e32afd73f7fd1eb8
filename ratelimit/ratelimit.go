// Package ratelimit counts events in fixed windows over a shared counter
// store (kv.Memory or kv.Redis), so limits hold across every instance that
// shares the store.
//
// Every store error is returned wrapped (for a kv store it wraps
// kv.ErrUnavailable); callers fail closed and answer 503.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrInvalidLimit is returned for a Limit with a non-positive Window or a
// negative Max.
var ErrInvalidLimit = errors.New("ratelimit: invalid limit")

// counter is what the limiter needs from a store; kv.Store satisfies it.
type counter interface {
	// Incr adds one to key, creating it with expiry window; it returns the
	// new count and the time left in the window.
	Incr(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error)
	// Count returns key's count and the time left; 0, 0 when absent.
	Count(ctx context.Context, key string) (int64, time.Duration, error)
	// Delete removes keys.
	Delete(ctx context.Context, keys ...string) error
}

// Limit allows Max events per Window. Max 0 allows nothing.
type Limit struct {
	Max    int64
	Window time.Duration
}

func (l Limit) validate() error {
	if l.Window <= 0 || l.Max < 0 {
		return fmt.Errorf("%w: max %d per %v", ErrInvalidLimit, l.Max, l.Window)
	}
	return nil
}

// Limiter applies fixed-window limits. A window starts at the first event
// counted on a key and lasts lim.Window; events in it, refused ones
// included, count toward lim.Max.
type Limiter struct {
	store  counter
	prefix string
}

// New returns a Limiter keeping its counters in store, under keys
// prefix + name + ":" + key.
func New(store counter, prefix string) *Limiter {
	return &Limiter{store: store, prefix: prefix}
}

// key builds the store key. name is a constant chosen by the caller (e.g.
// "login-fail-account") and must not contain ':'; key is anything (an
// account, an IP address).
func (l *Limiter) key(name, key string) string {
	return l.prefix + name + ":" + key
}

// Allow counts one hit on key and reports whether it is within lim;
// retryAfter > 0 when refused (the time left in the window). Errors are
// ErrInvalidLimit or the store's, wrapped.
func (l *Limiter) Allow(ctx context.Context, name, key string, lim Limit) (ok bool, retryAfter time.Duration, err error) {
	if err := lim.validate(); err != nil {
		return false, 0, err
	}
	n, ttl, err := l.store.Incr(ctx, l.key(name, key), lim.Window)
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: allow %s: %w", name, err)
	}
	if n <= lim.Max {
		return true, 0, nil
	}
	return false, remaining(ttl, lim), nil
}

// Exceeded reports, without counting, whether key has already reached lim,
// and if so how long until its window ends. Check it before an attempt and
// count only failures with Hit (failed logins). Errors are ErrInvalidLimit or
// the store's, wrapped.
func (l *Limiter) Exceeded(ctx context.Context, name, key string, lim Limit) (exceeded bool, retryAfter time.Duration, err error) {
	if err := lim.validate(); err != nil {
		return false, 0, err
	}
	n, ttl, err := l.store.Count(ctx, l.key(name, key))
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: exceeded %s: %w", name, err)
	}
	if n < lim.Max {
		return false, 0, nil
	}
	return true, remaining(ttl, lim), nil
}

// Hit counts one event on key without deciding (a failed login). Errors are
// ErrInvalidLimit or the store's, wrapped.
func (l *Limiter) Hit(ctx context.Context, name, key string, lim Limit) error {
	if err := lim.validate(); err != nil {
		return err
	}
	if _, _, err := l.store.Incr(ctx, l.key(name, key), lim.Window); err != nil {
		return fmt.Errorf("ratelimit: hit %s: %w", name, err)
	}
	return nil
}

// Reset clears key's counter (e.g. after a successful login). Errors are the
// store's, wrapped.
func (l *Limiter) Reset(ctx context.Context, name, key string) error {
	if err := l.store.Delete(ctx, l.key(name, key)); err != nil {
		return fmt.Errorf("ratelimit: reset %s: %w", name, err)
	}
	return nil
}

// remaining is the time left in the window when refusing. The store gives
// every counter an expiry, so ttl > 0, except with Max 0 in Exceeded on a key
// never counted; then, as for any ttl <= 0, the whole window is the answer.
func remaining(ttl time.Duration, lim Limit) time.Duration {
	if ttl <= 0 {
		return lim.Window
	}
	return ttl
}
