package main

import "testing"

// The soft memory limit follows the cache budget, so raising
// WALLETAUTH_CACHE_MIB never puts the live heap above the limit (where the
// collector would run flat out); an invalid value takes the default, as
// config then reports it.
func TestMemoryLimitFollowsCacheBudget(t *testing.T) {
	for _, c := range []struct {
		cache string
		want  int64
	}{
		{"", 128 << 20},
		{"16", 128 << 20},
		{"0", 96 << 20},
		{"256", 608 << 20},
		{"lots", 128 << 20},
		{"-1", 128 << 20},
	} {
		got := memoryLimit(func(k string) string {
			if k == "WALLETAUTH_CACHE_MIB" {
				return c.cache
			}
			return ""
		})
		if got != c.want {
			t.Errorf("CACHE_MIB=%q: limit %d MiB, want %d MiB", c.cache, got>>20, c.want>>20)
		}
	}
}
