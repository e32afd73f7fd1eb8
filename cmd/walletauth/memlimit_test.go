package main

import (
	"runtime"
	"testing"

	"github.com/walletauth/walletauth/passwords"
)

// The soft memory limit follows the bounds of what the process keeps (the
// caches; without Redis, the challenge store too), so raising them never
// puts the live heap above the limit, where the collector would run flat
// out; an invalid value takes the default, as config then reports it.
func TestMemoryLimitFollowsCacheBudget(t *testing.T) {
	const redis = "redis://127.0.0.1:6379/0"
	challenges := int64(200_000 * 256)
	hashes := int64(runtime.GOMAXPROCS(0)) * int64(passwords.DefaultParams().Memory) << 10
	for _, c := range []struct {
		cache, challenges, redis string
		want                     int64
	}{
		{"", "", redis, 128 << 20},
		{"16", "", redis, 128 << 20},
		{"0", "", redis, 96 << 20},
		{"256", "", redis, 608 << 20},
		{"lots", "", redis, 128 << 20},
		{"-1", "", redis, 128 << 20},
		{"", "", "", 128<<20 + challenges},
		{"", "0", "", 128 << 20},
		{"", "1000000", "", 128<<20 + 1_000_000*256},
		{"", "many", "", 128<<20 + challenges},
		{" 16 ", "", " " + redis, 128 << 20},
	} {
		env := map[string]string{"WALLETAUTH_CACHE_MIB": c.cache, "WALLETAUTH_MEMORY_CHALLENGES_MAX": c.challenges, "WALLETAUTH_REDIS_URL": c.redis}
		got := memoryLimit(func(k string) string { return env[k] }) - hashes
		if got != c.want {
			t.Errorf("%v: limit %d MiB, want %d MiB", env, got>>20, c.want>>20)
		}
	}
}
