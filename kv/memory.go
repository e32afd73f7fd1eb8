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
	units   int // entries held, a list counting one per value
	sweptAt time.Time
	closed  bool
}

type entry struct {
	value   []byte
	list    [][]byte  // non-nil: a list (PushList), newest first
	expires time.Time // zero: no expiry
}

// units is what e counts against the limit: one, or one per list value,
// since a list holds as much as that many entries.
func (e entry) units() int {
	if e.list != nil {
		return len(e.list)
	}
	return 1
}

func (e entry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-process store reading the time from now.
func NewMemory(now func() time.Time) *Memory {
	return &Memory{now: now, items: make(map[string]entry), sweepAt: sweepMin}
}

// Limit makes m hold at most max entries (0: no limit; each value of a
// list counts as one): a write that would add a key past it fails with an error wrapping ErrUnavailable, after
// expired entries are dropped, while keys already held can still be written,
// read and deleted. Nonces and challenges live until used or expired, so
// without a limit a flood of them grows the heap until the process dies.
// Call it before m is used.
func (m *Memory) Limit(max int) *Memory {
	m.max = max
	return m
}

// room reports whether n new entries fit; when they do not, it drops
// expired entries (at most once per fullSweepEvery) and checks again.
func (m *Memory) room(op string, now time.Time, n int) error {
	if m.max == 0 || n <= 0 || m.units+n <= m.max {
		return nil
	}
	if now.Sub(m.sweptAt) >= fullSweepEvery || now.Before(m.sweptAt) {
		m.sweep(now)
		if m.units+n <= m.max {
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
		m.del(key)
		return entry{}, false
	}
	return e, true
}

// put stores e under key, keeping the count of units.
func (m *Memory) put(key string, e entry) {
	if old, ok := m.items[key]; ok {
		m.units -= old.units()
	}
	m.items[key] = e
	m.units += e.units()
}

// del removes key, keeping the count of units.
func (m *Memory) del(key string) {
	if old, ok := m.items[key]; ok {
		m.units -= old.units()
		delete(m.items, key)
	}
}

// value returns the live plain value of key: not found when absent or
// expired, errWrongType when key holds a list.
func (m *Memory) value(op, key string, now time.Time) (entry, error) {
	e, ok := m.get(key, now)
	if !ok {
		return entry{}, ErrNotFound
	}
	if e.list != nil {
		return entry{}, fmt.Errorf("kv: %s: %w", op, errWrongType)
	}
	return e, nil
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
			m.del(k)
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
		if err := m.room("set", now, m.added(now, entries)); err != nil {
			return err
		}
	}
	m.set(now, ttl, entries)
	m.wrote(now)
	return nil
}

// added is how many units writing entries adds (or, negative, frees).
func (m *Memory) added(now time.Time, entries []Entry) int {
	n := 0
	for _, e := range entries {
		n++
		if old, ok := m.get(e.Key, now); ok {
			n -= old.units()
		}
	}
	return n
}

func (m *Memory) set(now time.Time, ttl time.Duration, entries []Entry) {
	for _, e := range entries {
		m.put(e.Key, entry{value: bytes.Clone(e.Value), expires: expiry(now, ttl)})
	}
}

// Get implements Store; ErrNotFound when absent or expired.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	now, err := m.lock(ctx, "get")
	if err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e, err := m.value("get", key, now)
	if err != nil {
		return nil, err
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
	m.put(key, entry{value: bytes.Clone(value), expires: expiry(now, ttl)})
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
	e, err := m.value("consume", key, now)
	if err != nil {
		return nil, err
	}
	m.del(key)
	return e.value, nil
}

// CompareAndDelete implements Store.
func (m *Memory) CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error) {
	now, err := m.lock(ctx, "compare and delete")
	if err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	e, err := m.value("compare and delete", key, now)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !bytes.Equal(e.value, value) {
		return false, nil
	}
	m.del(key)
	return true, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, keys ...string) error {
	if _, err := m.lock(ctx, "delete"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	for _, k := range keys {
		m.del(k)
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
	if ok && e.list != nil {
		return 0, 0, fmt.Errorf("kv: incr: %w", errWrongType)
	}
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
	m.put(key, e)
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
	e, err := m.value("count", key, now)
	if errors.Is(err, ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
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

// PushList implements Store: under one lock, the list and entries together.
// A keep under 1, a negative ttl and a key holding a plain value are errors.
func (m *Memory) PushList(ctx context.Context, key string, value []byte, keep int, ttl time.Duration, entries ...Entry) error {
	if err := pushArgs(keep, ttl); err != nil {
		return err
	}
	now, err := m.lock(ctx, "push")
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	old, ok := m.get(key, now)
	if ok && old.list == nil {
		return fmt.Errorf("kv: push: %w", errWrongType)
	}
	list := make([][]byte, 0, min(len(old.list)+1, keep))
	list = append(list, bytes.Clone(value))
	list = append(list, old.list[:min(len(old.list), keep-1)]...)
	if m.max > 0 {
		if err := m.room("push", now, len(list)-len(old.list)+m.added(now, entries)); err != nil {
			return err
		}
	}
	m.put(key, entry{list: list, expires: expiry(now, ttl)})
	m.set(now, ttl, entries)
	m.wrote(now)
	return nil
}

// List implements Store; none when absent or expired, errWrongType when
// key holds a plain value.
func (m *Memory) List(ctx context.Context, key string) ([][]byte, error) {
	now, err := m.lock(ctx, "list")
	if err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e, ok := m.get(key, now)
	if !ok {
		return nil, nil
	}
	if e.list == nil {
		return nil, fmt.Errorf("kv: list: %w", errWrongType)
	}
	out := make([][]byte, len(e.list))
	for i, v := range e.list {
		out[i] = bytes.Clone(v)
	}
	return out, nil
}

// CompareAndDeleteList implements Store.
func (m *Memory) CompareAndDeleteList(ctx context.Context, key string, value []byte) (bool, error) {
	now, err := m.lock(ctx, "compare and delete list")
	if err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	e, ok := m.get(key, now)
	if !ok {
		return false, nil
	}
	if e.list == nil {
		return false, fmt.Errorf("kv: compare and delete list: %w", errWrongType)
	}
	if len(e.list) != 1 || !bytes.Equal(e.list[0], value) {
		return false, nil
	}
	m.del(key)
	return true, nil
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
	m.units = 0
	return nil
}
