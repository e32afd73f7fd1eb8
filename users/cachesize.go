package users

import (
	"unsafe"

	"github.com/walletauth/walletauth/cache"
)

// cachedUserBytes estimates the heap one entry of the user cache holds:
// the map's share, the record, its strings and wallets, and its view's
// JSON. Strings the record shares with its key are counted twice: the
// estimate errs on the large side (TestCacheSizeEstimates measures it).
func cachedUserBytes(id string, u *User) int {
	n := cache.EntryBytes[string, *User]() + cache.HeapBytes(len(id)) + cache.HeapBytes(int(unsafe.Sizeof(*u)))
	n += stringBytes(u.ID) + stringBytes(u.Username) + stringPtrBytes(u.Email) + stringPtrBytes(u.PasswordHash) +
		stringBytes(u.Language) + stringBytes(u.ReferralCode) + stringPtrBytes(u.ReferrerID) + stringPtrBytes(u.ReferrerUsername)
	n += cache.HeapBytes(cap(u.Wallets) * int(unsafe.Sizeof(Wallet{})))
	for i := range u.Wallets {
		w := &u.Wallets[i]
		n += cache.HeapBytes(cap(w.Address)) + stringBytes(w.UserID) + stringBytes(w.Type)
	}
	if m := u.memo; m != nil {
		n += cache.HeapBytes(int(unsafe.Sizeof(*m))) + cache.HeapBytes(cap(m.json))
	}
	return n
}

// walletOwnerBytes estimates one entry of the wallet → user ID cache.
func walletOwnerBytes(addr, id string) int {
	return cache.EntryBytes[string, string]() + cache.HeapBytes(len(addr)) + cache.HeapBytes(len(id))
}

func stringBytes(s string) int { return cache.HeapBytes(len(s)) }

func stringPtrBytes(s *string) int {
	if s == nil {
		return 0
	}
	return cache.HeapBytes(int(unsafe.Sizeof(*s))) + cache.HeapBytes(len(*s))
}
