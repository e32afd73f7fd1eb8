package users

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/walletauth/walletauth/cache"
	"github.com/walletauth/walletauth/cache/cachetest"
)

// cacheTestUser is a user as a first wallet sign-in caches it: one wallet,
// its view's JSON made.
func cacheTestUser() *User {
	id := uuid.NewString()
	addr := make([]byte, 20)
	_, _ = rand.Read(addr)
	now := time.Now().UTC()
	u := &User{ID: id, Username: newUsername(), Language: "en", ReferralCode: NewReferralCode(), JoinedAt: now, UpdatedAt: now,
		Wallets: []Wallet{{Address: addr, UserID: id, ChainID: 1, Type: "eoa", IsPrimary: true, LinkedAt: now}}}
	u.memoizeView()
	return u
}

// The user cache holds what its budget says, give or take the estimate's
// error: filled far past its budget with users as sign-ins cache them, the
// heap it keeps stays at most the budget (plus 10 % for the estimate) and
// holds most of it (the estimate is not so large that the budget is
// wasted). This is what keeps the server's memory bounded however many
// users sign in.
func TestCacheSizeEstimates(t *testing.T) {
	const budget, n = 8 << 20, 40_000
	cachetest.WantHeldWithin(t, budget, func() (any, int, int) {
		s := &Store{now: time.Now}
		s.EnableCache(cache.NewLocalBus(), budget, time.Hour)
		for range n {
			s.cacheNew(cacheTestUser(), s.views.Version(), s.owners.Version())
		}
		return s, s.views.Len(), n
	}, "the user cache")
}
