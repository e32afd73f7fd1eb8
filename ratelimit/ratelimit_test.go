package ratelimit_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/kv/kvtest"
	"github.com/walletauth/walletauth/ratelimit"
)

var start = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// env is a limiter and a way to move its store's clock.
type env struct {
	lim     *ratelimit.Limiter
	advance func(time.Duration)
	exact   bool // the clock only moves when advanced
}

func memoryEnv(t *testing.T) env {
	clock := clocktest.New(start)
	m := kv.NewMemory(clock.Now)
	t.Cleanup(func() { _ = m.Close() })
	return env{lim: ratelimit.New(m, "rl:"), advance: clock.Advance, exact: true}
}

func redisEnv(t *testing.T) env {
	return env{lim: ratelimit.New(kvtest.Redis(t), "rl:"), advance: time.Sleep}
}

func TestMemory(t *testing.T) { run(t, memoryEnv) }

func TestRedis(t *testing.T) {
	kvtest.RedisURL(t) // skip or fail once, not in every subtest
	run(t, redisEnv)
}

func run(t *testing.T, newEnv func(t *testing.T) env) {
	t.Run("Allow", func(t *testing.T) { testAllow(t, newEnv(t)) })
	t.Run("WindowRollover", func(t *testing.T) { testRollover(t, newEnv(t)) })
	t.Run("ExceededHit", func(t *testing.T) { testExceededHit(t, newEnv(t)) })
	t.Run("Reset", func(t *testing.T) { testReset(t, newEnv(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newEnv(t)) })
	t.Run("MaxZero", func(t *testing.T) { testMaxZero(t, newEnv(t)) })
}

func allow(t *testing.T, e env, name, key string, lim ratelimit.Limit) (bool, time.Duration) {
	t.Helper()
	ok, retry, err := e.lim.Allow(t.Context(), name, key, lim)
	if err != nil {
		t.Fatalf("Allow: %v", err)
	}
	if ok && retry != 0 {
		t.Fatalf("Allow = true with retryAfter %v, want 0", retry)
	}
	if !ok && retry <= 0 {
		t.Fatalf("Allow = false with retryAfter %v, want > 0", retry)
	}
	return ok, retry
}

func testAllow(t *testing.T, e env) {
	lim := ratelimit.Limit{Max: 3, Window: time.Minute}
	for i := range 3 {
		if ok, _ := allow(t, e, "login", "alice", lim); !ok {
			t.Fatalf("hit %d refused, want allowed", i+1)
		}
		if e.exact {
			e.advance(10 * time.Second)
		}
	}
	ok, retry := allow(t, e, "login", "alice", lim)
	if ok {
		t.Fatal("4th hit allowed, want refused")
	}
	if e.exact && retry != 30*time.Second {
		t.Fatalf("retryAfter = %v, want 30s (the window started 30s ago)", retry)
	}
	if retry > time.Minute {
		t.Fatalf("retryAfter = %v, more than the window", retry)
	}
	// Other keys and other names count apart.
	if ok, _ := allow(t, e, "login", "bob", lim); !ok {
		t.Fatal("another key refused")
	}
	if ok, _ := allow(t, e, "signup", "alice", lim); !ok {
		t.Fatal("another name refused")
	}
	if e.exact {
		e.advance(retry - time.Millisecond)
		if ok, _ := allow(t, e, "login", "alice", lim); ok {
			t.Fatal("allowed before retryAfter passed")
		}
		e.advance(time.Millisecond)
		if ok, _ := allow(t, e, "login", "alice", lim); !ok {
			t.Fatal("refused once retryAfter passed")
		}
	}
}

func testRollover(t *testing.T, e env) {
	lim := ratelimit.Limit{Max: 2, Window: 400 * time.Millisecond}
	allow(t, e, "code", "k", lim)
	allow(t, e, "code", "k", lim)
	ok, retry := allow(t, e, "code", "k", lim)
	if ok {
		t.Fatal("3rd hit allowed")
	}
	// Refused hits do not extend the window.
	e.advance(retry + 50*time.Millisecond)
	for i := range 2 {
		if ok, _ := allow(t, e, "code", "k", lim); !ok {
			t.Fatalf("hit %d in the new window refused", i+1)
		}
	}
	if ok, _ := allow(t, e, "code", "k", lim); ok {
		t.Fatal("3rd hit in the new window allowed")
	}
}

func testExceededHit(t *testing.T, e env) {
	ctx := t.Context()
	lim := ratelimit.Limit{Max: 2, Window: time.Minute}
	exceeded := func() (bool, time.Duration) {
		t.Helper()
		ex, retry, err := e.lim.Exceeded(ctx, "login-fail", "alice", lim)
		if err != nil {
			t.Fatalf("Exceeded: %v", err)
		}
		return ex, retry
	}
	hit := func() {
		t.Helper()
		if err := e.lim.Hit(ctx, "login-fail", "alice", lim); err != nil {
			t.Fatalf("Hit: %v", err)
		}
	}
	for range 5 { // Exceeded does not count
		if ex, retry := exceeded(); ex || retry != 0 {
			t.Fatalf("Exceeded before any failure = %v, %v", ex, retry)
		}
	}
	hit()
	if e.exact {
		e.advance(15 * time.Second)
	}
	if ex, _ := exceeded(); ex {
		t.Fatal("Exceeded after 1 of 2 failures")
	}
	hit()
	ex, retry := exceeded()
	if !ex || retry <= 0 || retry > time.Minute {
		t.Fatalf("Exceeded after 2 of 2 failures = %v, %v; want true, (0, 1m]", ex, retry)
	}
	if e.exact {
		if retry != 45*time.Second {
			t.Fatalf("retryAfter = %v, want 45s", retry)
		}
		e.advance(retry)
		if ex, _ := exceeded(); ex {
			t.Fatal("still exceeded after the window")
		}
	}
}

func testReset(t *testing.T, e env) {
	lim := ratelimit.Limit{Max: 1, Window: time.Minute}
	allow(t, e, "login", "alice", lim)
	if ok, _ := allow(t, e, "login", "alice", lim); ok {
		t.Fatal("2nd hit allowed")
	}
	if err := e.lim.Reset(t.Context(), "login", "alice"); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if ok, _ := allow(t, e, "login", "alice", lim); !ok {
		t.Fatal("refused after Reset")
	}
}

func testConcurrent(t *testing.T, e env) {
	const callers = 100
	lim := ratelimit.Limit{Max: 10, Window: time.Minute}
	var allowed, refused atomic.Int64
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	begin := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-begin
			ok, retry, err := e.lim.Allow(t.Context(), "ip", "192.0.2.1", lim)
			switch {
			case err != nil:
				errs <- err
			case ok:
				allowed.Add(1)
			case retry > 0:
				refused.Add(1)
			default:
				errs <- errors.New("refused with retryAfter 0")
			}
		})
	}
	close(begin)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if allowed.Load() != 10 || refused.Load() != callers-10 {
		t.Fatalf("%d allowed, %d refused; want 10 and %d", allowed.Load(), refused.Load(), callers-10)
	}
}

func testMaxZero(t *testing.T, e env) {
	lim := ratelimit.Limit{Max: 0, Window: time.Minute}
	ex, retry, err := e.lim.Exceeded(t.Context(), "off", "k", lim)
	if err != nil || !ex || retry != time.Minute {
		t.Fatalf("Exceeded with Max 0 = %v, %v, %v; want true, 1m, nil", ex, retry, err)
	}
	if ok, _ := allow(t, e, "off", "k", lim); ok {
		t.Fatal("Allow with Max 0 allowed")
	}
}

func TestInvalidLimit(t *testing.T) {
	e := memoryEnv(t)
	ctx := t.Context()
	for _, lim := range []ratelimit.Limit{{Max: 1}, {Max: 1, Window: -time.Second}, {Max: -1, Window: time.Second}} {
		if _, _, err := e.lim.Allow(ctx, "n", "k", lim); !errors.Is(err, ratelimit.ErrInvalidLimit) {
			t.Errorf("Allow(%+v): err = %v, want ErrInvalidLimit", lim, err)
		}
		if _, _, err := e.lim.Exceeded(ctx, "n", "k", lim); !errors.Is(err, ratelimit.ErrInvalidLimit) {
			t.Errorf("Exceeded(%+v): err = %v, want ErrInvalidLimit", lim, err)
		}
		if err := e.lim.Hit(ctx, "n", "k", lim); !errors.Is(err, ratelimit.ErrInvalidLimit) {
			t.Errorf("Hit(%+v): err = %v, want ErrInvalidLimit", lim, err)
		}
	}
}

// TestStoreDown checks that store failures come back wrapped, so callers can
// fail closed with 503.
func TestStoreDown(t *testing.T) {
	m := kv.NewMemory(time.Now)
	_ = m.Close()
	lim := ratelimit.New(m, "rl:")
	ctx := t.Context()
	l := ratelimit.Limit{Max: 10, Window: time.Minute}
	ok, _, err := lim.Allow(ctx, "n", "k", l)
	if ok || !errors.Is(err, kv.ErrUnavailable) {
		t.Errorf("Allow = %v, %v; want false, ErrUnavailable", ok, err)
	}
	ex, _, err := lim.Exceeded(ctx, "n", "k", l)
	if ex || !errors.Is(err, kv.ErrUnavailable) {
		t.Errorf("Exceeded = %v, %v; want ErrUnavailable", ex, err)
	}
	if err := lim.Hit(ctx, "n", "k", l); !errors.Is(err, kv.ErrUnavailable) {
		t.Errorf("Hit: err = %v, want ErrUnavailable", err)
	}
	if err := lim.Reset(ctx, "n", "k"); !errors.Is(err, kv.ErrUnavailable) {
		t.Errorf("Reset: err = %v, want ErrUnavailable", err)
	}
}

func BenchmarkAllowMemory(b *testing.B) {
	m := kv.NewMemory(time.Now)
	b.Cleanup(func() { _ = m.Close() })
	benchAllow(b, ratelimit.New(m, "rl:"))
}

func BenchmarkAllowRedis(b *testing.B) {
	benchAllow(b, ratelimit.New(kvtest.Redis(b), "rl:"))
}

func benchAllow(b *testing.B, lim *ratelimit.Limiter) {
	ctx := b.Context()
	l := ratelimit.Limit{Max: 1 << 40, Window: time.Minute}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := lim.Allow(ctx, "ip", "192.0.2.1", l); err != nil {
			b.Fatal(err)
		}
	}
}
