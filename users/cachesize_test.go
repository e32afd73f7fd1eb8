package users

import (
	"crypto/rand"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/walletauth/walletauth/cache"
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

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The user cache holds what its budget says, give or take the estimate's
// error: filled far past its budget with users as sign-ins cache them, the
// heap it keeps stays at most the budget (plus 10 % for the estimate) and
// holds most of it (the estimate is not so large that the budget is
// wasted). This is what keeps the server's memory bounded however many
// users sign in.
func TestCacheSizeEstimates(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a cache of a few MiB")
	}
	const budget = 8 << 20
	const n = 40_000
	before := heapInUse()
	s := &Store{now: time.Now}
	s.EnableCache(cache.NewLocalBus(), budget, time.Hour)
	for range n {
		s.cacheNew(cacheTestUser(), s.views.Version(), s.owners.Version())
	}
	held := int(heapInUse() - before)
	entries := s.views.Len()
	t.Logf("budget %d B: %d users and %d wallet owners cached, heap %d B, estimated %d B",
		budget, entries, s.owners.Len(), held, s.views.Used()+s.owners.Used())
	if entries == 0 || entries == n {
		t.Fatalf("%d users cached: the test did not fill the cache past its budget", entries)
	}
	if held > budget*11/10 {
		t.Errorf("the cache holds %d B of heap, over its budget %d B by more than the estimate's 10 %%: cachedUserBytes underestimates", held, budget)
	}
	if held < budget/2 {
		t.Errorf("the cache holds %d B of heap, under half its budget %d B: cachedUserBytes overestimates", held, budget)
	}
	runtime.KeepAlive(s)
}
