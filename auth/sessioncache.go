package auth

import (
	"context"
	"encoding/hex"
	"time"
	"unsafe"

	"github.com/walletauth/walletauth/cache"
)

// MemorySessionCache keeps checked sessions in process memory so the token
// check of GET /v1/users/me needs no database round trip. Every revocation
// goes through the bus: applied here at once and on every other instance
// over Redis pub/sub. While the bus is unhealthy the cache answers misses,
// so the database (where revocation is durable) decides.
type MemorySessionCache struct {
	m   *cache.TTLMap[[32]byte, Session]
	bus *cache.Bus
}

// SessionCacheTTL is how long the session cache keeps an entry.
const SessionCacheTTL = time.Minute

// NewMemorySessionCache returns a cache of sessions holding at most
// maxBytes of heap as estimated per entry, each kept at most ttl,
// invalidated through bus.
func NewMemorySessionCache(bus *cache.Bus, maxBytes int, ttl time.Duration, now func() time.Time) *MemorySessionCache {
	c := &MemorySessionCache{m: cache.NewSizedTTLMap(maxBytes, cachedSessionBytes, ttl, now), bus: bus}
	bus.OnEvent(c.apply, c.m.Clear)
	return c
}

func (c *MemorySessionCache) apply(e cache.Event) {
	switch e.Kind {
	case cache.KindToken:
		var h [32]byte
		if b, err := hex.DecodeString(e.Key); err == nil && len(b) == 32 {
			copy(h[:], b)
			c.m.Delete(h, sidKey(SessionID(h))) // and its access tokens' entry
		}
	case cache.KindUserTokens, cache.KindUserChanged:
		// A changed user may have been deleted: its sessions are re-read.
		c.m.DeleteFunc(func(_ [32]byte, s Session) bool { return s.UserID == e.Key })
	}
}

// Get returns a cached session while the bus is healthy.
func (c *MemorySessionCache) Get(h [32]byte) (Session, bool) {
	if !c.bus.Healthy() {
		return Session{}, false
	}
	return c.m.Get(h)
}

// Version is read before a database read; PutIf stores its result only if
// no invalidation happened in between.
func (c *MemorySessionCache) Version() uint64 { return c.m.Version() }

// PutIf caches s unless invalidated since version.
func (c *MemorySessionCache) PutIf(h [32]byte, s Session, version uint64) {
	if c.bus.Healthy() {
		c.m.PutIf(h, s, version)
	}
}

// Forget drops one session everywhere. A failed broadcast is not an error
// of the revocation: the session is already gone from the database, and an
// instance that cannot hear the bus is bypassing its cache (Healthy false).
func (c *MemorySessionCache) Forget(ctx context.Context, h [32]byte) error {
	_ = c.bus.Publish(ctx, cache.Event{Kind: cache.KindToken, Key: hex.EncodeToString(h[:])})
	return nil
}

// ForgetUser drops every session of a user everywhere (see Forget).
func (c *MemorySessionCache) ForgetUser(ctx context.Context, userID string) error {
	_ = c.bus.Publish(ctx, cache.Event{Kind: cache.KindUserTokens, Key: userID})
	return nil
}

// cachedSessionBytes estimates the heap one cache entry holds: the map's
// share and what the session points to (a session cached under its token
// hash and under its id for access tokens shares its strings: counted
// twice, so the estimate errs on the large side).
func cachedSessionBytes(_ [32]byte, s Session) int {
	n := cache.EntryBytes[[32]byte, Session]() + cache.HeapBytes(cap(s.TokenHash)) + cache.HeapBytes(len(s.UserID))
	if s.ExpiresAt != nil {
		n += cache.HeapBytes(int(unsafe.Sizeof(*s.ExpiresAt)))
	}
	for _, p := range []*string{s.Method, s.UserAgent} {
		if p != nil {
			n += cache.HeapBytes(int(unsafe.Sizeof(*p))) + cache.HeapBytes(len(*p))
		}
	}
	return n
}
