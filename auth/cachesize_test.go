package auth

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/walletauth/walletauth/cache"
	"github.com/walletauth/walletauth/cache/cachetest"
)

// The session cache holds what its budget says, give or take the
// estimate's error (see users.TestCacheSizeEstimates): filled far past its
// budget with sessions as a wallet sign-in and its access-token checks
// cache them (under the token hash and under the session id), the heap it
// keeps is at most the budget plus 10 % and at least half of it.
func TestSessionCacheSizeEstimate(t *testing.T) {
	const budget, n = 4 << 20, 40_000
	cachetest.WantHeldWithin(t, budget, func() (any, int, int) {
		c := NewMemorySessionCache(cache.NewLocalBus(), budget, time.Hour, nil)
		for range n {
			var h [32]byte
			_, _ = rand.Read(h[:])
			now := time.Now().UTC()
			exp := now.Add(30 * 24 * time.Hour)
			// Strings of their own, as a request's header or a database row gives them.
			method := strings.Clone(MethodWallet)
			ua := strings.Clone("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36")
			s := Session{TokenHash: h[:], UserID: uuid.NewString(), CreatedAt: now, ExpiresAt: &exp, Method: &method, UserAgent: &ua}
			c.PutIf(h, s, c.Version())
			c.PutIf(sidKey(SessionID(h)), s, c.Version())
		}
		return c, c.m.Len(), 2 * n
	}, "the session cache")
}
