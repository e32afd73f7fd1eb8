package every_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletauth/walletauth/internal/every"
)

// Period calls fn again and again, and returns once its context ends.
func TestPeriodRunsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		every.Period(ctx, time.Millisecond, func(context.Context) {
			if calls.Add(1) == 3 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Period did not return after its context ended")
	}
	if n := calls.Load(); n < 3 {
		t.Fatalf("fn ran %d times, want at least 3", n)
	}
}
