package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// sweepMin is the least number of writes between two sweeps of expired
// entries. A sweep runs once the writes since the last one reach the number
// of entries the last sweep left (and at least sweepMin), so its cost stays
// constant per write and the map holds at most about twice what is live.
const sweepMin = 1024

var errClosed = errors.New("store closed")

// errFull is why a write of a new key is refused by a store at its limit.
var errFull = errors.New("in-process store full")

// fullSweepEvery bounds how often a full store looks for expired entries to
// make room: a sweep walks every entry under the lock.
const fullSweepEvery = time.Second

// Memory is an in-process Store: a map behind a mutex, with lazy expiry and a
// sweep of expired entries every so many writes. It starts no goroutine. Its
// values hold on this instance only.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex
	items   map[string]entry
	writes  int // since the last sweep
	sweepAt int // writes that trigger the next sweep
	max     int // entries at most; 0: no limit
	sweptAt time.Time
	closed  bool
}

type entry struct {
	value   []byte
	expires time.Time // zero: no expiry
}

func (e entry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-process store reading the time from now.
func NewMemory(now func() time.Time) *Memory {
	return &Memory{now: now, items: make(map[string]entry), sweepAt: sweepMin}
}

// Limit makes m hold at most max entries (0: no limit): a write that would
// add a key past it fails with an error wrapping ErrUnavailable, after
// expired entries are dropped, while keys already held can still be written,
// read and deleted. Nonces and challenges live until used or expired, so
// without a limit a flood of them grows the heap until the process dies.
// Call it before m is used.
func (m *Memory) Limit(max int) *Memory {
	m.max = max
	return m
}

// room reports whether n new keys fit; when they do not, it drops expired
// entries (at most once per fullSweepEvery) and checks again.
func (m *Memory) room(op string, now time.Time, n int) error {
	if m.max == 0 || len(m.items)+n <= m.max {
		return nil
	}
	if now.Sub(m.sweptAt) >= fullSweepEvery || now.Before(m.sweptAt) {
		m.sweep(now)
		if len(m.items)+n <= m.max {
			return nil
		}
	}
	return unavailable(op, fmt.Errorf("%w: %d entries", errFull, m.max))
}

// lock takes the mutex and returns the current time, or an error if ctx is
// done or the store is closed (then the mutex is not held).
func (m *Memory) lock(ctx context.Context, op string) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, unavailable(op, err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return time.Time{}, unavailable(op, errClosed)
	}
	return m.now(), nil
}

// get returns the live entry for key, deleting it if it has expired.
func (m *Memory) get(key string, now time.Time) (entry, bool) {
	e, ok := m.items[key]
	if !ok {
		return entry{}, false
	}
	if e.expired(now) {
		delete(m.items, key)
		return entry{}, false
	}
	return e, true
}

// wrote counts a write and sweeps expired entries when enough have happened.
func (m *Memory) wrote(now time.Time) {
	m.writes++
	if m.writes < m.sweepAt {
		return
	}
	m.sweep(now)
}

// sweep drops every expired entry.
func (m *Memory) sweep(now time.Time) {
	for k, e := range m.items {
		if e.expired(now) {
			delete(m.items, k)
		}
	}
	m.writes = 0
	m.sweepAt = max(sweepMin, len(m.items))
	m.sweptAt = now
}

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl == 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// Set implements Store. A negative ttl is an error.
func (m *Memory) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return m.SetMany(ctx, ttl, Entry{Key: key, Value: value})
}

// SetMany implements Store (under one lock, so all at once).
func (m *Memory) SetMany(ctx context.Context, ttl time.Duration, entries ...Entry) error {
	if ttl < 0 {
		return fmt.Errorf("kv: set: %w: %v", errInvalidTTL, ttl)
	}
	now, err := m.lock(ctx, "set")
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	if m.max > 0 {
		n := 0
		for _, e := range entries {
			if _, ok := m.get(e.Key, now); !ok {
				n++
			}
		}
		if err := m.room("set", now, n); err != nil {
			return err
		}
	}
	for _, e := range entries {
		m.items[e.Key] = entry{value: bytes.Clone(e.Value), expires: expiry(now, ttl)}
	}
	m.wrote(now)
	return nil
}

// Get implements Store; ErrNotFound when absent or expired.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	now, err := m.lock(ctx, "get")
	if err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e, ok := m.get(key, now)
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(e.value), nil
}

// SetNX implements Store. A negative ttl is an error.
func (m *Memory) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if ttl < 0 {
		return false, fmt.Errorf("kv: setnx: %w: %v", errInvalidTTL, ttl)
	}
	now, err := m.lock(ctx, "setnx")
	if err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	if _, ok := m.get(key, now); ok {
		return false, nil
	}
	if err := m.room("setnx", now, 1); err != nil {
		return false, err
	}
	m.items[key] = entry{value: bytes.Clone(value), expires: expiry(now, ttl)}
	m.wrote(now)
	return true, nil
}

// Consume implements Store; ErrNotFound when absent, expired or already
// consumed.
func (m *Memory) Consume(ctx context.Context, key string) ([]byte, error) {
	now, err := m.lock(ctx, "consume")
	if err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e, ok := m.get(key, now)
	if !ok {
		return nil, ErrNotFound
	}
	delete(m.items, key)
	return e.value, nil
}

// CompareAndDelete implements Store.
func (m *Memory) CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error) {
	now, err := m.lock(ctx, "compare and delete")
	if err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	e, ok := m.get(key, now)
	if !ok || !bytes.Equal(e.value, value) {
		return false, nil
	}
	delete(m.items, key)
	return true, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, keys ...string) error {
	if _, err := m.lock(ctx, "delete"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.items, k)
	}
	return nil
}

// Incr implements Store. A non-positive window is an error, and so is a key
// holding something other than a decimal integer.
func (m *Memory) Incr(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	if window <= 0 {
		return 0, 0, fmt.Errorf("kv: incr: %w: window %v", errInvalidTTL, window)
	}
	now, err := m.lock(ctx, "incr")
	if err != nil {
		return 0, 0, err
	}
	defer m.mu.Unlock()
	var n int64
	e, ok := m.get(key, now)
	if ok {
		if n, err = strconv.ParseInt(string(e.value), 10, 64); err != nil {
			return 0, 0, fmt.Errorf("kv: incr: %w", errNotInteger)
		}
	} else if err := m.room("incr", now, 1); err != nil {
		return 0, 0, err
	}
	n++
	if e.expires.IsZero() {
		e.expires = now.Add(window)
	}
	e.value = strconv.AppendInt(nil, n, 10)
	m.items[key] = e
	m.wrote(now)
	return n, e.expires.Sub(now), nil
}

// Count implements Store; 0, 0 when absent. A key holding something other
// than a decimal integer is an error.
func (m *Memory) Count(ctx context.Context, key string) (int64, time.Duration, error) {
	now, err := m.lock(ctx, "count")
	if err != nil {
		return 0, 0, err
	}
	defer m.mu.Unlock()
	e, ok := m.get(key, now)
	if !ok {
		return 0, 0, nil
	}
	n, err := strconv.ParseInt(string(e.value), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("kv: count: %w", errNotInteger)
	}
	if e.expires.IsZero() {
		return n, 0, nil
	}
	return n, e.expires.Sub(now), nil
}

// Ping implements Store; it fails only once the store is closed.
func (m *Memory) Ping(ctx context.Context) error {
	if _, err := m.lock(ctx, "ping"); err != nil {
		return err
	}
	m.mu.Unlock()
	return nil
}

// Close drops every entry; later calls fail with ErrUnavailable. Closing
// twice is not an error.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.items = nil
	return nil
}
