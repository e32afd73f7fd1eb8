package emailcode_test

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletauth/walletauth/emailcode"
	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/kv/kvtest"
)

// backends runs f on the in-process store and, when configured (required
// in CI), on Redis: the store a code is consumed in across instances.
func backends(t *testing.T, f func(t *testing.T, store kv.Store, clock *clocktest.Clock)) {
	t.Run("memory", func(t *testing.T) {
		clock := clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
		f(t, kv.NewMemory(clock.Now), clock)
	})
	t.Run("redis", func(t *testing.T) {
		f(t, kvtest.Redis(t), clocktest.New(time.Now()))
	})
}

var ctx = context.Background()

func wrong(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

func TestCodeIsSixDigitsAndWorksOnce(t *testing.T) {
	backends(t, func(t *testing.T, store kv.Store, clock *clocktest.Clock) {
		c := emailcode.New(store, clock.Now, 10*time.Minute)
		code, exp, err := c.Issue(ctx, emailcode.Login, "alice@example.com", "Alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^\d{6}$`).MatchString(code) {
			t.Fatalf("code %q is not six digits", code)
		}
		if want := clock.Now().Add(10 * time.Minute); exp.Sub(want) > time.Second || want.Sub(exp) > time.Second {
			t.Errorf("expires %v, want about %v", exp, want)
		}
		email, err := c.Consume(ctx, emailcode.Login, "alice@example.com", code)
		if err != nil || email != "Alice@example.com" {
			t.Fatalf("Consume = %q, %v", email, err)
		}
		if _, err := c.Consume(ctx, emailcode.Login, "alice@example.com", code); !errors.Is(err, emailcode.ErrCodeInvalid) {
			t.Errorf("second use: %v, want code_invalid", err)
		}
	})
}

func TestCodeIsTiedToPurposeAndSubject(t *testing.T) {
	backends(t, func(t *testing.T, store kv.Store, clock *clocktest.Clock) {
		c := emailcode.New(store, clock.Now, 10*time.Minute)
		code, _, err := c.Issue(ctx, emailcode.Login, "a@example.com", "a@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Consume(ctx, emailcode.Reset, "a@example.com", code); !errors.Is(err, emailcode.ErrCodeInvalid) {
			t.Errorf("login code used for a reset: %v", err)
		}
		if _, err := c.Consume(ctx, emailcode.Login, "b@example.com", code); !errors.Is(err, emailcode.ErrCodeInvalid) {
			t.Errorf("code used for another address: %v", err)
		}
		if _, err := c.Consume(ctx, emailcode.Login, "a@example.com", code); err != nil {
			t.Errorf("the right use after the wrong ones: %v", err)
		}
	})
}

func TestCodeIsStoredHashed(t *testing.T) {
	clock := clocktest.New(time.Now())
	store := kv.NewMemory(clock.Now)
	c := emailcode.New(store, clock.Now, 10*time.Minute)
	code, _, err := c.Issue(ctx, emailcode.Verify, "user-1", "a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := store.Get(ctx, "ecode:verify:user-1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(code)) {
		t.Errorf("the stored record holds the code: %s", raw)
	}
}

func TestFiveWrongTriesKillTheCode(t *testing.T) {
	backends(t, func(t *testing.T, store kv.Store, clock *clocktest.Clock) {
		c := emailcode.New(store, clock.Now, 10*time.Minute)
		code, _, err := c.Issue(ctx, emailcode.Login, "k", "k@example.com")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			if _, err := c.Consume(ctx, emailcode.Login, "k", wrong(code)); !errors.Is(err, emailcode.ErrCodeInvalid) {
				t.Fatalf("wrong try %d: %v", i+1, err)
			}
		}
		// Four wrong tries: the right code still works.
		if _, err := c.Consume(ctx, emailcode.Login, "k", code); err != nil {
			t.Fatalf("after 4 wrong tries: %v", err)
		}

		code, _, err = c.Issue(ctx, emailcode.Login, "k", "k@example.com")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < emailcode.MaxTries; i++ {
			_, _ = c.Consume(ctx, emailcode.Login, "k", wrong(code))
		}
		if _, err := c.Consume(ctx, emailcode.Login, "k", code); !errors.Is(err, emailcode.ErrCodeInvalid) {
			t.Errorf("the right code after 5 wrong tries: %v, want code_invalid", err)
		}
		// A new code starts with fresh tries.
		code, _, err = c.Issue(ctx, emailcode.Login, "k", "k@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Consume(ctx, emailcode.Login, "k", code); err != nil {
			t.Errorf("a new code after a killed one: %v", err)
		}
	})
}

func TestNewerCodeReplacesTheOlder(t *testing.T) {
	backends(t, func(t *testing.T, store kv.Store, clock *clocktest.Clock) {
		c := emailcode.New(store, clock.Now, 10*time.Minute)
		old, _, err := c.Issue(ctx, emailcode.Reset, "r", "r@example.com")
		if err != nil {
			t.Fatal(err)
		}
		var newer string
		for newer == "" || newer == old {
			if newer, _, err = c.Issue(ctx, emailcode.Reset, "r", "r@example.com"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Consume(ctx, emailcode.Reset, "r", old); !errors.Is(err, emailcode.ErrCodeInvalid) {
			t.Errorf("the replaced code: %v", err)
		}
		if _, err := c.Consume(ctx, emailcode.Reset, "r", newer); err != nil {
			t.Errorf("the newer code: %v", err)
		}
	})
}

func TestCodeExpires(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	store := kv.NewMemory(clock.Now)
	c := emailcode.New(store, clock.Now, 10*time.Minute)
	code, _, err := c.Issue(ctx, emailcode.Login, "e", "e@example.com")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(10*time.Minute + time.Second)
	if _, err := c.Consume(ctx, emailcode.Login, "e", code); !errors.Is(err, emailcode.ErrCodeInvalid) {
		t.Errorf("expired code: %v", err)
	}
}

// Many requests with the right code at once, as from many instances
// sharing the store: exactly one is accepted.
func TestConcurrentConsumptionAcceptsOnce(t *testing.T) {
	backends(t, func(t *testing.T, store kv.Store, clock *clocktest.Clock) {
		// Two Codes values over one store: two instances.
		a := emailcode.New(store, clock.Now, 10*time.Minute)
		b := emailcode.New(store, clock.Now, 10*time.Minute)
		for round := 0; round < 5; round++ {
			code, _, err := a.Issue(ctx, emailcode.Login, "c", "c@example.com")
			if err != nil {
				t.Fatal(err)
			}
			var ok, invalid atomic.Int64
			var wg sync.WaitGroup
			for i := 0; i < 16; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := a
					if i%2 == 1 {
						c = b
					}
					_, err := c.Consume(ctx, emailcode.Login, "c", code)
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, emailcode.ErrCodeInvalid):
						invalid.Add(1)
					default:
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if ok.Load() != 1 || invalid.Load() != 15 {
				t.Fatalf("round %d: %d accepted, %d refused; want 1 and 15", round, ok.Load(), invalid.Load())
			}
		}
	})
}

// Concurrent wrong guesses cannot get past the five tries.
func TestConcurrentGuessesAreBounded(t *testing.T) {
	backends(t, func(t *testing.T, store kv.Store, clock *clocktest.Clock) {
		c := emailcode.New(store, clock.Now, 10*time.Minute)
		code, _, err := c.Issue(ctx, emailcode.Login, "g", "g@example.com")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := 0; i < 30; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = c.Consume(ctx, emailcode.Login, "g", wrong(code)) }()
		}
		wg.Wait()
		if _, err := c.Consume(ctx, emailcode.Login, "g", code); !errors.Is(err, emailcode.ErrCodeInvalid) {
			t.Errorf("right code after 30 concurrent wrong guesses: %v", err)
		}
	})
}

func TestUnavailableStoreFailsClosed(t *testing.T) {
	clock := clocktest.New(time.Now())
	store := kv.NewMemory(clock.Now)
	c := emailcode.New(store, clock.Now, 10*time.Minute)
	code, _, err := c.Issue(ctx, emailcode.Login, "u", "u@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_ = store.Close()
	if _, err := c.Consume(ctx, emailcode.Login, "u", code); !errors.Is(err, kv.ErrUnavailable) {
		t.Errorf("Consume on a closed store: %v, want kv.ErrUnavailable", err)
	}
	if _, _, err := c.Issue(ctx, emailcode.Login, "u", "u@example.com"); !errors.Is(err, kv.ErrUnavailable) {
		t.Errorf("Issue on a closed store: %v, want kv.ErrUnavailable", err)
	}
}

func TestCodesAreUniform(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		c, err := emailcode.NewCode()
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != 6 {
			t.Fatalf("%q", c)
		}
		seen[c[:1]] = true
	}
	if len(seen) != 10 {
		t.Errorf("first digits seen: %v", seen)
	}
}
