package kv

import (
	"fmt"
	"testing"
	"time"

	"github.com/walletauth/walletauth/internal/clocktest"
)

// TestMemorySweep checks that expired entries nobody reads again are dropped
// by the writes that follow, without a goroutine.
func TestMemorySweep(t *testing.T) {
	clock := clocktest.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	m := NewMemory(clock.Now)
	ctx := t.Context()
	for i := range 5000 {
		if err := m.Set(ctx, fmt.Sprint("old", i), []byte("v"), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Second)
	for i := range 5000 {
		if err := m.Set(ctx, fmt.Sprint("new", i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := 0
	for k := range m.items {
		if k[:3] == "old" {
			old++
		}
	}
	if old != 0 {
		t.Fatalf("%d expired entries still held after 5000 writes", old)
	}
}
