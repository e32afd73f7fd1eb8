package clocktest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/walletauth/walletauth/internal/clocktest"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 1, 22, 8, 0, 0, 0, time.UTC)
	c := clocktest.New(start)
	if first, second := c.Now(), c.Now(); first != start || second != start {
		t.Fatal("a stopped clock moved")
	}
	c.Advance(time.Minute)
	if got := c.Now(); got != start.Add(time.Minute) {
		t.Fatalf("after Advance: %v", got)
	}
	c.SetStep(time.Millisecond)
	a, b := c.Now(), c.Now()
	if a != start.Add(time.Minute) || b != a.Add(time.Millisecond) {
		t.Fatalf("stepping readings %v, %v", a, b)
	}
	c.SetStep(0)
	if first, second := c.Now(), c.Now(); first != second {
		t.Fatal("SetStep(0) did not stop the clock")
	}

	// Concurrent readers each get their own instant while stepping.
	c = clocktest.NewStepping(start, time.Nanosecond)
	if got := c.Now(); got != start {
		t.Fatalf("NewStepping's first reading %v, want %v", got, start)
	}
	var mu sync.Mutex
	seen := map[time.Time]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				n := c.Now()
				mu.Lock()
				seen[n] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 800 || seen[start] {
		t.Fatalf("%d distinct readings of 800 (start among them: %v)", len(seen), seen[start])
	}
}
