// Package kvtest is the contract suite every kv.Store must pass and a
// helper that opens the test Redis.
package kvtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletauth/walletauth/kv"
)

// RedisURLEnv names the variable giving the Redis tests run against, e.g.
// redis://127.0.0.1:6379/0.
const RedisURLEnv = "WALLETAUTH_TEST_REDIS_URL"

// Option configures Run.
type Option func(*suite)

// WithAdvance tells Run how to move the stores' clock forward (e.g. a Clock's
// Advance, shared by every store newStore returns). Without it Run sleeps in
// real time, with expiries of a few hundred milliseconds.
func WithAdvance(advance func(time.Duration)) Option {
	return func(s *suite) { s.advance = advance; s.exact = true }
}

type suite struct {
	newStore func(t *testing.T) kv.Store
	advance  func(time.Duration)
	exact    bool // the clock only moves when advanced
}

// ttl is the expiry the suite uses; short, since a real backend sleeps past it.
const ttl = 400 * time.Millisecond

// past is how far the suite advances to get past ttl.
const past = ttl + 150*time.Millisecond

// workers is the number of concurrent callers in the concurrency tests.
const workers = 50

// Run runs the contract suite. newStore returns a new, empty store and
// registers its own cleanup (closing it, deleting its keys); each subtest
// gets its own.
func Run(t *testing.T, newStore func(t *testing.T) kv.Store, opts ...Option) {
	s := &suite{newStore: newStore, advance: time.Sleep}
	for _, o := range opts {
		o(s)
	}
	t.Run("SetGet", s.setGet)
	t.Run("SetTTL", s.setTTL)
	t.Run("SetInvalidTTL", s.setInvalidTTL)
	t.Run("SetMany", s.setMany)
	t.Run("SetNX", s.setNX)
	t.Run("SetNXConcurrent", s.setNXConcurrent)
	t.Run("Consume", s.consume)
	t.Run("ConsumeConcurrent", s.consumeConcurrent)
	t.Run("CompareAndDelete", s.compareAndDelete)
	t.Run("CompareAndDeleteConcurrent", s.compareAndDeleteConcurrent)
	t.Run("Delete", s.delete)
	t.Run("Incr", s.incr)
	t.Run("IncrWindow", s.incrWindow)
	t.Run("IncrConcurrent", s.incrConcurrent)
	t.Run("IncrExistingValue", s.incrExistingValue)
	t.Run("IncrNotInteger", s.incrNotInteger)
	t.Run("Count", s.count)
	t.Run("PushList", s.pushList)
	t.Run("PushListTTL", s.pushListTTL)
	t.Run("PushListInvalid", s.pushListInvalid)
	t.Run("PushListConcurrent", s.pushListConcurrent)
	t.Run("ListWrongType", s.listWrongType)
	t.Run("CompareAndDeleteList", s.compareAndDeleteList)
	t.Run("PingClose", s.pingClose)
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("%s: err = %v, want ErrNotFound", what, err)
	}
}

func mustGet(t *testing.T, s kv.Store, key string, want string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if string(got) != want {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func mustSet(t *testing.T, s kv.Store, key, value string, ttl time.Duration) {
	t.Helper()
	if err := s.Set(t.Context(), key, []byte(value), ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

// parallel runs f(i) on workers goroutines released together.
func parallel(f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range workers {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

func (s *suite) setGet(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	_, err := st.Get(ctx, "missing")
	wantNotFound(t, "Get(missing)", err)

	v := []byte("value")
	if err := st.Set(ctx, "k", v, 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
	v[0] = 'X' // the store keeps its own copy
	mustGet(t, st, "k", "value")
	got, _ := st.Get(ctx, "k")
	got[0] = 'Y' // and hands out copies
	mustGet(t, st, "k", "value")

	mustSet(t, st, "k", "other", 0)
	mustGet(t, st, "k", "other")

	mustSet(t, st, "empty", "", 0)
	if got, err := st.Get(ctx, "empty"); err != nil || len(got) != 0 {
		t.Fatalf("Get(empty) = %q, %v; want empty, nil", got, err)
	}
	bin := []byte{0, 1, 0xff, '\n', 0}
	if err := st.Set(ctx, "bin", bin, 0); err != nil {
		t.Fatalf("Set(bin): %v", err)
	}
	if got, err := st.Get(ctx, "bin"); err != nil || !bytes.Equal(got, bin) {
		t.Fatalf("Get(bin) = %v, %v; want %v", got, err, bin)
	}
}

func (s *suite) setTTL(t *testing.T) {
	st := s.newStore(t)
	mustSet(t, st, "short", "v", ttl)
	mustSet(t, st, "forever", "v", 0)
	mustSet(t, st, "reset", "v", ttl)
	mustSet(t, st, "reset", "w", 0) // a Set without ttl clears the expiry
	if s.exact {
		s.advance(ttl - time.Millisecond)
		mustGet(t, st, "short", "v")
		s.advance(time.Millisecond)
	} else {
		mustGet(t, st, "short", "v")
		s.advance(past)
	}
	_, err := st.Get(t.Context(), "short")
	wantNotFound(t, "Get after ttl", err)
	mustGet(t, st, "forever", "v")
	mustGet(t, st, "reset", "w")
}

func (s *suite) setInvalidTTL(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	for _, err := range []error{
		st.Set(ctx, "k", []byte("v"), -time.Second),
		func() error { _, err := st.SetNX(ctx, "k", []byte("v"), -time.Second); return err }(),
		func() error { _, _, err := st.Incr(ctx, "k", 0); return err }(),
	} {
		if err == nil || errors.Is(err, kv.ErrUnavailable) || errors.Is(err, kv.ErrNotFound) {
			t.Errorf("invalid ttl: err = %v, want an argument error", err)
		}
	}
	_, err := st.Get(ctx, "k")
	wantNotFound(t, "Get after invalid Set", err)
}

func (s *suite) setMany(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	if err := st.SetMany(ctx, ttl); err != nil {
		t.Fatalf("SetMany of nothing: %v", err)
	}
	mustSet(t, st, "b", "old", 0)
	if err := st.SetMany(ctx, ttl, kv.Entry{Key: "a", Value: []byte("1")}, kv.Entry{Key: "b", Value: []byte("2")}); err != nil {
		t.Fatalf("SetMany: %v", err)
	}
	if err := st.SetMany(ctx, 0, kv.Entry{Key: "c", Value: []byte("3")}); err != nil {
		t.Fatalf("SetMany without expiry: %v", err)
	}
	mustGet(t, st, "a", "1")
	mustGet(t, st, "b", "2")
	if s.exact {
		s.advance(ttl)
	} else {
		s.advance(past)
	}
	for _, k := range []string{"a", "b"} { // both got the ttl, "b" its new one
		_, err := st.Get(ctx, k)
		wantNotFound(t, "Get "+k+" after ttl", err)
	}
	mustGet(t, st, "c", "3")
	err := st.SetMany(ctx, -time.Second, kv.Entry{Key: "d", Value: []byte("4")})
	if err == nil || errors.Is(err, kv.ErrUnavailable) {
		t.Errorf("SetMany with a negative ttl: err = %v, want an argument error", err)
	}
	_, err = st.Get(ctx, "d")
	wantNotFound(t, "Get after invalid SetMany", err)
}

func (s *suite) setNX(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	ok, err := st.SetNX(ctx, "k", []byte("first"), ttl)
	if err != nil || !ok {
		t.Fatalf("first SetNX = %v, %v; want true, nil", ok, err)
	}
	ok, err = st.SetNX(ctx, "k", []byte("second"), ttl)
	if err != nil || ok {
		t.Fatalf("second SetNX = %v, %v; want false, nil", ok, err)
	}
	mustGet(t, st, "k", "first")

	ok, err = st.SetNX(ctx, "forever", []byte("v"), 0)
	if err != nil || !ok {
		t.Fatalf("SetNX without ttl = %v, %v; want true, nil", ok, err)
	}

	s.advance(past)
	_, err = st.Get(ctx, "k")
	wantNotFound(t, "Get after SetNX ttl", err)
	mustGet(t, st, "forever", "v")
	ok, err = st.SetNX(ctx, "k", []byte("third"), ttl)
	if err != nil || !ok {
		t.Fatalf("SetNX after expiry = %v, %v; want true, nil", ok, err)
	}
	mustGet(t, st, "k", "third")
}

func (s *suite) setNXConcurrent(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	var wins atomic.Int64
	winner := make(chan string, workers)
	errs := make(chan error, workers)
	parallel(func(i int) {
		v := fmt.Sprint("v", i)
		ok, err := st.SetNX(ctx, "k", []byte(v), time.Minute)
		if err != nil {
			errs <- err
			return
		}
		if ok {
			wins.Add(1)
			winner <- v
		}
	})
	close(errs)
	for err := range errs {
		t.Fatalf("SetNX: %v", err)
	}
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d SetNX calls won, want 1", n)
	}
	mustGet(t, st, "k", <-winner)
}

func (s *suite) consume(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	_, err := st.Consume(ctx, "missing")
	wantNotFound(t, "Consume(missing)", err)

	mustSet(t, st, "k", "nonce", ttl)
	got, err := st.Consume(ctx, "k")
	if err != nil || string(got) != "nonce" {
		t.Fatalf("Consume = %q, %v; want nonce, nil", got, err)
	}
	_, err = st.Consume(ctx, "k")
	wantNotFound(t, "second Consume", err)
	_, err = st.Get(ctx, "k")
	wantNotFound(t, "Get after Consume", err)

	mustSet(t, st, "expiring", "v", ttl)
	s.advance(past)
	_, err = st.Consume(ctx, "expiring")
	wantNotFound(t, "Consume after ttl", err)
}

func (s *suite) consumeConcurrent(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	mustSet(t, st, "k", "nonce", time.Minute)
	var got, missed atomic.Int64
	errs := make(chan error, workers)
	parallel(func(int) {
		v, err := st.Consume(ctx, "k")
		switch {
		case err == nil && string(v) == "nonce":
			got.Add(1)
		case errors.Is(err, kv.ErrNotFound):
			missed.Add(1)
		default:
			errs <- fmt.Errorf("got Consume = %q, %w", v, err)
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got.Load() != 1 || missed.Load() != workers-1 {
		t.Fatalf("Consume: %d got the value, %d ErrNotFound; want 1 and %d", got.Load(), missed.Load(), workers-1)
	}
}

func (s *suite) compareAndDelete(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	cad := func(key, value string, want bool) {
		t.Helper()
		ok, err := st.CompareAndDelete(ctx, key, []byte(value))
		if err != nil || ok != want {
			t.Fatalf("CompareAndDelete(%q, %q) = %v, %v; want %v, nil", key, value, ok, err, want)
		}
	}
	cad("missing", "v", false)

	mustSet(t, st, "k", "session-1", 0)
	cad("k", "session-2", false)
	cad("k", "session", false)
	cad("k", "", false)
	mustGet(t, st, "k", "session-1")
	cad("k", "session-1", true)
	_, err := st.Get(ctx, "k")
	wantNotFound(t, "Get after CompareAndDelete", err)
	cad("k", "session-1", false)

	mustSet(t, st, "expiring", "v", ttl)
	s.advance(past)
	cad("expiring", "v", false)
}

func (s *suite) compareAndDeleteConcurrent(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	mustSet(t, st, "k", "v", time.Minute)
	var deleted atomic.Int64
	errs := make(chan error, workers)
	parallel(func(int) {
		ok, err := st.CompareAndDelete(ctx, "k", []byte("v"))
		if err != nil {
			errs <- err
			return
		}
		if ok {
			deleted.Add(1)
		}
	})
	close(errs)
	for err := range errs {
		t.Fatalf("CompareAndDelete: %v", err)
	}
	if n := deleted.Load(); n != 1 {
		t.Fatalf("%d CompareAndDelete calls deleted, want 1", n)
	}
}

func (s *suite) delete(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	if err := st.Delete(ctx); err != nil {
		t.Fatalf("Delete(): %v", err)
	}
	if err := st.Delete(ctx, "missing"); err != nil {
		t.Fatalf("Delete(missing): %v", err)
	}
	for _, k := range []string{"a", "b", "c", "keep"} {
		mustSet(t, st, k, k, 0)
	}
	if err := st.Delete(ctx, "a"); err != nil {
		t.Fatalf("Delete(a): %v", err)
	}
	if err := st.Delete(ctx, "b", "missing", "c"); err != nil {
		t.Fatalf("Delete(b, missing, c): %v", err)
	}
	for _, k := range []string{"a", "b", "c"} {
		_, err := st.Get(ctx, k)
		wantNotFound(t, "Get after Delete", err)
	}
	mustGet(t, st, "keep", "keep")
}

func (s *suite) incr(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	const window = time.Minute
	n, left, err := st.Incr(ctx, "k", window)
	if err != nil || n != 1 {
		t.Fatalf("first Incr = %d, %v; want 1, nil", n, err)
	}
	if left <= window-5*time.Second || left > window || (s.exact && left != window) {
		t.Fatalf("first Incr ttl = %v, want about %v", left, window)
	}
	if s.exact {
		s.advance(10 * time.Second)
	}
	n, left2, err := st.Incr(ctx, "k", window)
	if err != nil || n != 2 {
		t.Fatalf("second Incr = %d, %v; want 2, nil", n, err)
	}
	if left2 <= 0 || left2 > left || (s.exact && left2 != window-10*time.Second) {
		t.Fatalf("second Incr ttl = %v, want the first window's remainder (first %v)", left2, left)
	}
	mustGet(t, st, "k", "2") // counters are decimal strings, as in Redis
}

func (s *suite) incrWindow(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	for want := int64(1); want <= 3; want++ {
		n, _, err := st.Incr(ctx, "k", ttl)
		if err != nil || n != want {
			t.Fatalf("Incr = %d, %v; want %d, nil", n, err, want)
		}
	}
	s.advance(past)
	n, left, err := st.Incr(ctx, "k", ttl)
	if err != nil || n != 1 {
		t.Fatalf("Incr in the next window = %d, %v; want 1, nil", n, err)
	}
	if left <= 0 || left > ttl {
		t.Fatalf("Incr in the next window: ttl = %v, want in (0, %v]", left, ttl)
	}
}

func (s *suite) incrConcurrent(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	seen := make([]atomic.Int64, workers+1)
	errs := make(chan error, workers)
	parallel(func(int) {
		n, left, err := st.Incr(ctx, "k", time.Minute)
		switch {
		case err != nil:
			errs <- err
		case n < 1 || n > workers || left <= 0:
			errs <- fmt.Errorf("got Incr = %d, %v", n, left)
		default:
			seen[n].Add(1)
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for n := 1; n <= workers; n++ {
		if c := seen[n].Load(); c != 1 {
			t.Fatalf("count %d returned %d times, want once", n, c)
		}
	}
	n, left, err := st.Count(ctx, "k")
	if err != nil || n != workers || left <= 0 {
		t.Fatalf("Count = %d, %v, %v; want %d, >0, nil", n, left, err, workers)
	}
}

func (s *suite) incrExistingValue(t *testing.T) {
	st := s.newStore(t)
	mustSet(t, st, "k", "41", 0) // no expiry: Incr must give it one
	n, left, err := st.Incr(t.Context(), "k", ttl)
	if err != nil || n != 42 || left <= 0 || left > ttl {
		t.Fatalf("Incr on 41 = %d, %v, %v; want 42, (0, %v], nil", n, left, err, ttl)
	}
	s.advance(past)
	n, _, err = st.Count(t.Context(), "k")
	if err != nil || n != 0 {
		t.Fatalf("Count after window = %d, %v; want 0, nil", n, err)
	}
}

func (s *suite) incrNotInteger(t *testing.T) {
	st := s.newStore(t)
	mustSet(t, st, "k", "nonce", 0)
	if _, _, err := st.Incr(t.Context(), "k", time.Minute); err == nil || errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("Incr on a non-integer: err = %v, want an error that is not ErrUnavailable", err)
	}
	if _, _, err := st.Count(t.Context(), "k"); err == nil || errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("Count on a non-integer: err = %v, want an error that is not ErrUnavailable", err)
	}
	mustGet(t, st, "k", "nonce")
}

func (s *suite) count(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	n, left, err := st.Count(ctx, "missing")
	if err != nil || n != 0 || left != 0 {
		t.Fatalf("Count(missing) = %d, %v, %v; want 0, 0, nil", n, left, err)
	}
	for range 3 {
		if _, _, err := st.Incr(ctx, "k", ttl); err != nil {
			t.Fatalf("Incr: %v", err)
		}
	}
	n, left, err = st.Count(ctx, "k")
	if err != nil || n != 3 || left <= 0 || left > ttl || (s.exact && left != ttl) {
		t.Fatalf("Count = %d, %v, %v; want 3, (0, %v], nil", n, left, err, ttl)
	}
	n2, _, _ := st.Count(ctx, "k")
	if n2 != 3 {
		t.Fatalf("Count counted: second Count = %d, want 3", n2)
	}
	mustSet(t, st, "plain", "7", 0)
	n, left, err = st.Count(ctx, "plain")
	if err != nil || n != 7 || left != 0 {
		t.Fatalf("Count(no expiry) = %d, %v, %v; want 7, 0, nil", n, left, err)
	}
	s.advance(past)
	n, left, err = st.Count(ctx, "k")
	if err != nil || n != 0 || left != 0 {
		t.Fatalf("Count after window = %d, %v, %v; want 0, 0, nil", n, left, err)
	}
}

func mustList(t *testing.T, st kv.Store, key string, want ...string) {
	t.Helper()
	got, err := st.List(t.Context(), key)
	if err != nil {
		t.Fatalf("List(%q): %v", key, err)
	}
	if len(got) != len(want) {
		t.Fatalf("List(%q) = %q, want %q", key, got, want)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Fatalf("List(%q) = %q, want %q", key, got, want)
		}
	}
}

func mustPush(t *testing.T, st kv.Store, key, value string, keep int, ttl time.Duration, entries ...kv.Entry) {
	t.Helper()
	if err := st.PushList(t.Context(), key, []byte(value), keep, ttl, entries...); err != nil {
		t.Fatalf("PushList(%q, %q): %v", key, value, err)
	}
}

// compareAndDeleteList deletes a list that holds the value alone, and
// nothing else: not a list with other values, not another value, not an
// absent key; concurrent callers delete it once.
func (s *suite) compareAndDeleteList(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	del := func(key, value string, want bool) {
		t.Helper()
		ok, err := st.CompareAndDeleteList(ctx, key, []byte(value))
		if err != nil || ok != want {
			t.Fatalf("CompareAndDeleteList(%q, %q) = %v, %v; want %v, nil", key, value, ok, err, want)
		}
	}
	del("missing", "a", false)
	mustPush(t, st, "l", "a", 3, time.Minute)
	del("l", "b", false)
	mustPush(t, st, "l", "b", 3, time.Minute)
	del("l", "a", false) // a is there, with b
	del("l", "b", false)
	mustList(t, st, "l", "b", "a")
	mustPush(t, st, "one", "a", 3, time.Minute)
	del("one", "a", true)
	mustList(t, st, "one")
	del("one", "a", false)
	// A list pushed again after the delete is a new list.
	mustPush(t, st, "one", "a", 3, time.Minute)
	mustList(t, st, "one", "a")

	mustPush(t, st, "race", "x", 3, time.Minute)
	var deleted atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if ok, err := st.CompareAndDeleteList(ctx, "race", []byte("x")); err == nil && ok {
				deleted.Add(1)
			}
		})
	}
	wg.Wait()
	if n := deleted.Load(); n != 1 {
		t.Fatalf("%d concurrent CompareAndDeleteList calls deleted, want 1", n)
	}
}

func (s *suite) pushList(t *testing.T) {
	st := s.newStore(t)
	mustList(t, st, "missing")
	mustPush(t, st, "l", "a", 3, time.Minute, kv.Entry{Key: "e1", Value: []byte("v1")}, kv.Entry{Key: "e2", Value: []byte("v2")})
	mustList(t, st, "l", "a")
	mustGet(t, st, "e1", "v1")
	mustGet(t, st, "e2", "v2")
	for _, v := range []string{"b", "c", "d"} {
		mustPush(t, st, "l", v, 3, time.Minute)
	}
	mustList(t, st, "l", "d", "c", "b") // newest first, the oldest dropped
	mustPush(t, st, "l", "e", 2, time.Minute)
	mustList(t, st, "l", "e", "d")
	mustPush(t, st, "l", "e", 3, time.Minute) // a value may repeat
	mustList(t, st, "l", "e", "e", "d")
	// Values are bytes, kept exactly.
	bin := string([]byte{0, 0xff, '\n', 0xc3, 0x28})
	mustPush(t, st, "bin", bin, 1, time.Minute)
	mustList(t, st, "bin", bin)
	mustList(t, st, "other")
}

func (s *suite) pushListTTL(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	mustPush(t, st, "l", "a", 5, ttl, kv.Entry{Key: "e", Value: []byte("v")})
	mustPush(t, st, "kept", "a", 5, ttl)
	mustPush(t, st, "kept", "b", 5, 0) // no expiry from here on
	s.advance(ttl / 2)
	mustPush(t, st, "l", "b", 5, ttl) // the whole list lives ttl from now
	s.advance(ttl/2 + 50*time.Millisecond)
	mustList(t, st, "l", "b", "a")
	_, err := st.Get(ctx, "e")
	wantNotFound(t, "Get of a pushed entry after its ttl", err)
	s.advance(past)
	mustList(t, st, "l")
	mustList(t, st, "kept", "b", "a")
	mustPush(t, st, "l", "c", 5, ttl) // an expired list starts afresh
	mustList(t, st, "l", "c")
}

func (s *suite) pushListInvalid(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	for _, err := range []error{
		st.PushList(ctx, "l", []byte("a"), 0, time.Minute),
		st.PushList(ctx, "l", []byte("a"), -1, time.Minute),
		st.PushList(ctx, "l", []byte("a"), 3, -time.Second, kv.Entry{Key: "e", Value: []byte("v")}),
	} {
		if err == nil || errors.Is(err, kv.ErrUnavailable) || errors.Is(err, kv.ErrNotFound) {
			t.Errorf("invalid PushList: err = %v, want an argument error", err)
		}
	}
	mustList(t, st, "l")
	_, err := st.Get(ctx, "e")
	wantNotFound(t, "Get after an invalid PushList", err)
}

func (s *suite) pushListConcurrent(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	errs := make(chan error, 2*workers)
	parallel(func(i int) {
		v := []byte(fmt.Sprint("v", i))
		errs <- st.PushList(ctx, "all", v, 2*workers, time.Minute)
		errs <- st.PushList(ctx, "capped", v, 5, time.Minute)
	})
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("PushList: %v", err)
		}
	}
	for key, n := range map[string]int{"all": workers, "capped": 5} {
		got, err := st.List(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, v := range got {
			if seen[string(v)] || !strings.HasPrefix(string(v), "v") {
				t.Fatalf("List(%q) = %q: a value lost, doubled or mangled", key, got)
			}
			seen[string(v)] = true
		}
		if len(got) != n {
			t.Fatalf("List(%q) has %d values after %d concurrent pushes, want %d", key, len(got), workers, n)
		}
	}
}

// listWrongType: a list is no plain value and the other way round; mixing
// them is an error, neither not-found nor unavailable, and changes nothing.
func (s *suite) listWrongType(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	mustSet(t, st, "plain", "1", time.Minute)
	mustPush(t, st, "list", "a", 3, time.Minute)
	wrong := func(what string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, kv.ErrUnavailable) || errors.Is(err, kv.ErrNotFound) {
			t.Errorf("%s: err = %v, want a wrong-kind error", what, err)
		}
	}
	wrong("PushList on a plain key", st.PushList(ctx, "plain", []byte("a"), 3, time.Minute))
	_, err := st.List(ctx, "plain")
	wrong("List of a plain key", err)
	_, err = st.Get(ctx, "list")
	wrong("Get of a list", err)
	_, err = st.Consume(ctx, "list")
	wrong("Consume of a list", err)
	_, err = st.CompareAndDelete(ctx, "list", []byte("a"))
	wrong("CompareAndDelete of a list", err)
	_, _, err = st.Incr(ctx, "list", time.Minute)
	wrong("Incr of a list", err)
	_, err = st.CompareAndDeleteList(ctx, "plain", []byte("1"))
	wrong("CompareAndDeleteList of a plain key", err)
	_, _, err = st.Count(ctx, "list")
	wrong("Count of a list", err)
	mustGet(t, st, "plain", "1")
	mustList(t, st, "list", "a")
	// Set and Delete replace or remove either kind.
	mustSet(t, st, "list", "now plain", time.Minute)
	mustGet(t, st, "list", "now plain")
	if err := st.Delete(ctx, "plain"); err != nil {
		t.Fatal(err)
	}
	mustPush(t, st, "plain", "now a list", 3, time.Minute)
	mustList(t, st, "plain", "now a list")
}

func (s *suite) pingClose(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Get(canceled, "k"); !errors.Is(err, kv.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a canceled context: err = %v, want ErrUnavailable and context.Canceled", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Ping(ctx); !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("Ping after Close: err = %v, want ErrUnavailable", err)
	}
	if _, err := st.Get(ctx, "k"); !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("Get after Close: err = %v, want ErrUnavailable", err)
	}
}

// RedisURL returns WALLETAUTH_TEST_REDIS_URL. Without it the test skips,
// except when CI=true, where it fails.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv(RedisURLEnv)
	if url == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is not set; Redis tests are required in CI", RedisURLEnv)
		}
		tb.Skipf("%s is not set", RedisURLEnv)
	}
	return url
}

// Redis returns a Store on the Redis named by WALLETAUTH_TEST_REDIS_URL with
// a random key prefix; cleanup deletes its keys and closes it. Without the
// variable it skips, except when CI=true, where it fails; an unreachable
// Redis always fails.
func Redis(tb testing.TB) *kv.Redis {
	tb.Helper()
	url := RedisURL(tb)
	client, err := kv.NewRedisClient(url)
	if err != nil {
		tb.Fatalf("%s: %v", RedisURLEnv, err)
	}
	prefix := "walletauth-test:" + randomHex(tb) + ":"
	st := kv.NewRedis(client, prefix)
	tb.Cleanup(func() { _ = st.Close() }) // the suite may have closed it already
	if err := st.Ping(tb.Context()); err != nil {
		tb.Fatalf("Redis at %s: %v", RedisURLEnv, err)
	}
	tb.Cleanup(func() { deletePrefix(tb, url, prefix) })
	return st
}

func randomHex(tb testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("random prefix: %v", err)
	}
	return hex.EncodeToString(b)
}

// deletePrefix deletes every key under prefix with a client of its own, since
// the store under test may be closed.
func deletePrefix(tb testing.TB, url, prefix string) {
	client, err := kv.NewRedisClient(url)
	if err != nil {
		tb.Errorf("cleanup: %v", err)
		return
	}
	defer func() { _ = client.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	match := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`).Replace(prefix) + "*"
	iter := client.Scan(ctx, 0, match, 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Errorf("cleanup: scan %s: %v", prefix, err)
		return
	}
	for _, k := range keys {
		if err := client.Del(ctx, k).Err(); err != nil {
			tb.Errorf("cleanup: del: %v", err)
			return
		}
	}
}
