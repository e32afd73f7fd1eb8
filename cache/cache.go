// Package cache keeps hot reads (sessions, user records) in process memory
// and drops them when they change on any instance: invalidation events are
// applied locally at once and broadcast over Redis pub/sub to the other
// instances. While the broadcast cannot be trusted (Redis unreachable, the
// subscription not yet confirmed), Healthy is false and callers bypass the
// caches, so a revocation made elsewhere is never missed.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// Event kinds.
const (
	KindToken       = 't' // one session ended: Key is the token hash (hex)
	KindUserTokens  = 'u' // every session of a user ended: Key is the user ID
	KindUserChanged = 'c' // a user's record changed: Key is the user ID
	KindSigningKeys = 'k' // the access-token signing keys changed (rotation): Key is unused
)

// Event is one invalidation.
type Event struct {
	Kind byte
	Key  string
}

func (e Event) encode() string { return string(e.Kind) + ":" + e.Key }

func decode(s string) (Event, bool) {
	if len(s) < 3 || s[1] != ':' {
		return Event{}, false
	}
	return Event{Kind: s[0], Key: s[2:]}, true
}

// Bus fans invalidation events out to local handlers and, with Redis, to
// every other instance.
type Bus struct {
	client  redis.UniversalClient // nil: this process is the only instance
	channel string
	log     *slog.Logger

	mu       sync.RWMutex
	handlers []func(Event)
	flushers []func()
	healthy  atomic.Bool
	heard    atomic.Int64 // UnixNano of the last message on the subscription
}

// BusFor picks how caches learn of changes made elsewhere: over Redis
// pub/sub when there is a client (any number of instances); in process
// when the deployment is one instance by nature (singleInstance: SQLite);
// and nil — no caching at all — otherwise (PostgreSQL without Redis, where
// another instance could revoke a token without telling this one).
func BusFor(client redis.UniversalClient, singleInstance bool, channel string, log *slog.Logger) *Bus {
	switch {
	case client != nil:
		return NewRedisBus(client, channel, log)
	case singleInstance:
		return NewLocalBus()
	}
	return nil
}

// NewLocalBus is a bus for a single instance: always healthy.
func NewLocalBus() *Bus {
	b := &Bus{log: slog.New(slog.DiscardHandler)}
	b.healthy.Store(true)
	return b
}

// NewRedisBus is a bus shared over Redis pub/sub on channel. It is unhealthy
// until Run has confirmed its subscription.
func NewRedisBus(client redis.UniversalClient, channel string, log *slog.Logger) *Bus {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bus{client: client, channel: channel, log: log}
}

// OnEvent registers a handler of events (local and remote); flush is called
// when events may have been missed, to drop everything.
func (b *Bus) OnEvent(handle func(Event), flush func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handlers = append(b.handlers, handle)
	b.flushers = append(b.flushers, flush)
}

// Shared reports whether events reach other processes (over Redis): a
// local bus hears nothing another process (the CLI) publishes.
func (b *Bus) Shared() bool { return b.client != nil }

// Healthy reports whether cached entries can be trusted: no event can have
// been missed since they were stored. With Redis, that also needs the
// subscription to have heard from Redis (a message or a pong) within
// staleAfter: a connection that went silent (Redis hung, a partition) is
// not trusted from then on, without waiting for its receive to time out.
func (b *Bus) Healthy() bool {
	if !b.healthy.Load() {
		return false
	}
	return b.client == nil || time.Since(time.Unix(0, b.heard.Load())) < staleAfter
}

func (b *Bus) deliver(e Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, h := range b.handlers {
		h(e)
	}
}

func (b *Bus) flush() {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, f := range b.flushers {
		f()
	}
}

// Publish applies e here at once and broadcasts it. When the broadcast
// fails, the error is returned; the other instances, having lost their
// subscription too, bypass their caches until they resubscribe and flush.
func (b *Bus) Publish(ctx context.Context, e Event) error {
	b.deliver(e)
	if b.client == nil {
		return nil
	}
	if err := b.client.Publish(ctx, b.channel, e.encode()).Err(); err != nil {
		b.log.Warn("cache invalidation not broadcast", "kind", string(e.Kind), "error", err)
		return fmt.Errorf("cache: publish: %w", err)
	}
	return nil
}

// Run keeps the Redis subscription alive until ctx ends: on every
// (re)subscription it flushes the local caches and then marks the bus
// healthy; on any receive error or missed ping it marks it unhealthy.
func (b *Bus) Run(ctx context.Context) {
	if b.client == nil {
		<-ctx.Done()
		return
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := b.subscribe(ctx)
		b.healthy.Store(false)
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("cache invalidation subscription lost; caches bypassed until it is back", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 2*time.Second {
			backoff *= 2
		}
	}
}

// The subscription is pinged every pingEvery. An instance cut off from
// Redis cannot hear invalidations, so it must stop trusting its caches well
// within the contract's one second for revocations to hold everywhere:
// after staleAfter of silence it does (Healthy), and after 4 pings it
// resubscribes.
const (
	pingEvery  = 200 * time.Millisecond
	staleAfter = 3 * pingEvery
)

func (b *Bus) subscribe(ctx context.Context) error {
	ps := b.client.Subscribe(ctx, b.channel)
	defer ps.Close()
	done := make(chan struct{})
	defer close(done)
	go func() { // a blocked read does not watch ctx: closing unblocks it
		select {
		case <-ctx.Done():
			_ = ps.Close()
		case <-done:
		}
	}()
	// Any message, pong included, proves the connection is alive; silence
	// longer than a few ping periods means it is not.
	for {
		rctx, cancel := context.WithTimeout(ctx, 4*pingEvery)
		msg, err := ps.Receive(rctx)
		cancel()
		if err != nil {
			return err
		}
		b.heard.Store(time.Now().UnixNano())
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				b.flush()
				b.healthy.Store(true)
				go b.pinger(ctx, ps)
			}
		case *redis.Message:
			if e, ok := decode(m.Payload); ok {
				b.deliver(e)
			}
		case *redis.Pong:
		}
	}
}

func (b *Bus) pinger(ctx context.Context, ps *redis.PubSub) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := ps.Ping(ctx); err != nil {
				if errors.Is(err, redis.ErrClosed) || strings.Contains(err.Error(), "closed") {
					return
				}
				b.healthy.Store(false)
			}
		}
	}
}

// TTLMap is a map whose entries expire, bounded by a budget: the sum of
// its entries' costs (bytes, as the caller's cost function estimates them,
// or 1 each when there is none). When an entry does not fit, expired
// entries go first, then others in map order (which is random) until a
// quarter of the budget is free: a cache miss costs one database read, so
// simplicity wins over LRU, and evicting a quarter at a time keeps the
// cost of a put constant on average.
type TTLMap[K comparable, V any] struct {
	mu      sync.Mutex
	m       map[K]ttlEntry[V]
	max     int // budget
	used    int // sum of the entries' costs
	cost    func(K, V) int
	ttl     time.Duration
	now     func() time.Time
	version uint64
}

type ttlEntry[V any] struct {
	v    V
	exp  int64 // UnixNano
	cost int
}

// NewTTLMap returns a map of at most max entries living ttl each.
func NewTTLMap[K comparable, V any](max int, ttl time.Duration, now func() time.Time) *TTLMap[K, V] {
	return NewSizedTTLMap[K, V](max, nil, ttl, now)
}

// NewSizedTTLMap returns a map whose entries' costs add up to at most
// budget, each living ttl; cost (nil: 1 per entry) estimates what one
// entry holds, in the unit of budget.
func NewSizedTTLMap[K comparable, V any](budget int, cost func(K, V) int, ttl time.Duration, now func() time.Time) *TTLMap[K, V] {
	if now == nil {
		now = time.Now
	}
	if cost == nil {
		cost = func(K, V) int { return 1 }
	}
	return &TTLMap[K, V]{m: make(map[K]ttlEntry[V]), max: budget, cost: cost, ttl: ttl, now: now}
}

// Get returns a live entry.
func (c *TTLMap[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || c.now().UnixNano() >= e.exp {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Version changes whenever entries are deleted; PutIf uses it so a value
// read before an invalidation is not stored after it.
func (c *TTLMap[K, V]) Version() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// PutIf stores v unless an invalidation happened since version was read.
// An entry costing more than the whole budget is not stored, and the
// key's earlier entry goes.
func (c *TTLMap[K, V]) PutIf(k K, v V, version uint64) {
	cost := c.cost(k, v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version {
		return
	}
	if old, ok := c.m[k]; ok {
		c.used -= old.cost
		delete(c.m, k)
	}
	if cost > c.max { // too large to keep: nor is the value it replaces
		return
	}
	now := c.now()
	if c.used+cost > c.max {
		c.evict(now.UnixNano(), c.max-c.max/4-cost)
	}
	c.m[k] = ttlEntry[V]{v: v, exp: now.Add(c.ttl).UnixNano(), cost: cost}
	c.used += cost
}

// evict drops expired entries, then others, until at most target is used,
// and moves the survivors into a new map: a Go map never shrinks, and one
// that has churned holds more table than entries. Not a deletion in
// PutIf's sense: an evicted value was current.
func (c *TTLMap[K, V]) evict(now int64, target int) {
	for k, e := range c.m {
		if now >= e.exp {
			delete(c.m, k)
			c.used -= e.cost
		}
	}
	for k, e := range c.m {
		if c.used <= target {
			break
		}
		delete(c.m, k)
		c.used -= e.cost
	}
	m := make(map[K]ttlEntry[V], len(c.m))
	maps.Copy(m, c.m)
	c.m = m
}

// Delete drops keys.
func (c *TTLMap[K, V]) Delete(keys ...K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version++
	for _, k := range keys {
		if e, ok := c.m[k]; ok {
			delete(c.m, k)
			c.used -= e.cost
		}
	}
}

// DeleteFunc drops every entry for which drop is true.
func (c *TTLMap[K, V]) DeleteFunc(drop func(K, V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version++
	for k, e := range c.m {
		if drop(k, e.v) {
			delete(c.m, k)
			c.used -= e.cost
		}
	}
}

// Clear drops everything.
func (c *TTLMap[K, V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version++
	clear(c.m)
	c.used = 0
}

// Len is the number of entries, live or expired.
func (c *TTLMap[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Used is the sum of the entries' costs, live or expired.
func (c *TTLMap[K, V]) Used() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// EntryBytes estimates what one entry of a TTLMap[K, V] costs the map
// itself: its slot (key, value, expiry, cost and the table's control byte)
// times 2, on the large side of a Swiss table's room per entry between
// growths (it holds 7/16 to 7/8 of its slots). What the key and value point to is the
// caller's to add (see HeapBytes).
func EntryBytes[K comparable, V any]() int {
	var k K
	slot := int(unsafe.Sizeof(k)) + int(unsafe.Sizeof(ttlEntry[V]{})) + 1
	return slot * 2
}

// HeapBytes estimates the heap a block of n bytes takes: n rounded up in
// steps close to Go's size classes (8 bytes up to 128, 16 up to 256, 32 up
// to 1 KiB, then an eighth of the size; the classes themselves step a
// little coarser in places), zero for n == 0.
func HeapBytes(n int) int {
	switch {
	case n <= 0:
		return 0
	case n <= 128:
		return (n + 7) &^ 7
	case n <= 256:
		return (n + 15) &^ 15
	case n <= 1024:
		return (n + 31) &^ 31
	}
	step := 1 << (bits.Len(uint(n)) - 3)
	return (n + step - 1) &^ (step - 1)
}
