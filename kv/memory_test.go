package kv_test

import (
	"errors"
	"testing"
	"time"

	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/kv/kvtest"
)

var start = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestMemory(t *testing.T) {
	clock := clocktest.New(start)
	kvtest.Run(t, func(t *testing.T) kv.Store {
		m := kv.NewMemory(clock.Now)
		t.Cleanup(func() { _ = m.Close() })
		return m
	}, kvtest.WithAdvance(clock.Advance))
}

func TestMemoryCloseTwice(t *testing.T) {
	m := kv.NewMemory(time.Now)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A limited store passes the whole contract suite while under its limit.
func TestMemoryLimitedContract(t *testing.T) {
	clock := clocktest.New(start)
	kvtest.Run(t, func(t *testing.T) kv.Store {
		m := kv.NewMemory(clock.Now).Limit(100_000)
		t.Cleanup(func() { _ = m.Close() })
		return m
	}, kvtest.WithAdvance(clock.Advance))
}

// TestMemoryLimit: at its limit the store refuses new keys as unavailable
// (every way of adding one), keeps serving the keys it holds, and makes room
// from expired entries, looking for them at most once a second.
func TestMemoryLimit(t *testing.T) {
	clock := clocktest.New(start)
	m := kv.NewMemory(clock.Now).Limit(3)
	defer m.Close()
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	full := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, kv.ErrUnavailable) {
			t.Fatalf("%s on a full store: %v, want ErrUnavailable", what, err)
		}
	}
	must(m.Set(ctx, "a", []byte("1"), time.Second))
	must(m.SetMany(ctx, 10*time.Second, kv.Entry{Key: "b", Value: []byte("2")}, kv.Entry{Key: "c", Value: []byte("3")}))
	if _, _, err := m.Incr(ctx, "c-count", time.Minute); err == nil {
		t.Fatal("Incr of a fourth key succeeded")
	}
	full("Set", m.Set(ctx, "d", []byte("4"), time.Minute))
	full("SetMany", m.SetMany(ctx, time.Minute, kv.Entry{Key: "a", Value: []byte("x")}, kv.Entry{Key: "d", Value: []byte("4")}))
	_, err := m.SetNX(ctx, "d", []byte("4"), time.Minute)
	full("SetNX", err)
	_, _, err = m.Incr(ctx, "d", time.Minute)
	full("Incr", err)
	// What it holds still works: overwrite, read, consume.
	must(m.SetMany(ctx, 500*time.Millisecond, kv.Entry{Key: "a", Value: []byte("x")}, kv.Entry{Key: "b", Value: []byte("y")}))
	if v, err := m.Get(ctx, "a"); err != nil || string(v) != "x" {
		t.Fatalf("Get a = %q, %v", v, err)
	}
	if _, err := m.Consume(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	must(m.Set(ctx, "d", []byte("4"), time.Minute)) // c's place
	// a and b expire after 500 ms; the last sweep (of the first refusal
	// above) was under a second ago, so there is no room yet, then there is.
	clock.Advance(999 * time.Millisecond)
	full("Set after expiry, within a second of a sweep", m.Set(ctx, "e", []byte("5"), time.Minute))
	clock.Advance(time.Millisecond)
	must(m.Set(ctx, "e", []byte("5"), time.Minute))
	if n, _, err := m.Incr(ctx, "f", time.Minute); err != nil || n != 1 {
		t.Fatalf("Incr f = %d, %v", n, err)
	}
	if _, err := m.Get(ctx, "a"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("expired a: %v", err)
	}
}

// TestMemoryLimitList: every value of a list counts against the limit (a
// list of five challenges holds what five entries do), and so do the
// entries pushed with it; trimming and overwriting free what they drop.
func TestMemoryLimitList(t *testing.T) {
	clock := clocktest.New(start)
	m := kv.NewMemory(clock.Now).Limit(4)
	defer m.Close()
	ctx := t.Context()
	push := func(v, entry string) error {
		return m.PushList(ctx, "l", []byte(v), 3, time.Minute, kv.Entry{Key: entry, Value: []byte(v)})
	}
	if err := push("a", "n1"); err != nil { // 2 held
		t.Fatal(err)
	}
	if err := push("b", "n2"); err != nil { // 4 held
		t.Fatal(err)
	}
	if err := push("c", "n3"); !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("push past the limit: %v, want ErrUnavailable", err)
	}
	if err := m.Set(ctx, "x", []byte("1"), time.Minute); !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("Set past the limit: %v, want ErrUnavailable", err)
	}
	if got, err := m.List(ctx, "l"); err != nil || len(got) != 2 {
		t.Fatalf("List after a refused push = %q, %v; want 2 values", got, err)
	}
	if _, err := m.Get(ctx, "n3"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("entry of a refused push: %v, want ErrNotFound", err)
	}
	if err := m.Delete(ctx, "n1", "n2"); err != nil { // 2 held
		t.Fatal(err)
	}
	if err := push("c", "n3"); err != nil { // 3 + 1
		t.Fatal(err)
	}
	if err := push("d", "n3"); err != nil { // trimmed to 3, n3 overwritten: still 4
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "l"); err != nil { // 1 held
		t.Fatal(err)
	}
	for _, k := range []string{"x", "y", "z"} {
		if err := m.Set(ctx, k, []byte("1"), time.Minute); err != nil {
			t.Fatalf("Set %s after the list was deleted: %v", k, err)
		}
	}
	// Expired lists make room too.
	clock.Advance(time.Minute)
	if err := m.PushList(ctx, "l2", []byte("a"), 3, time.Minute); err != nil {
		t.Fatalf("push after everything expired: %v", err)
	}
}
