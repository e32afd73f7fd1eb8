package kv_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/kv/kvtest"
)

func TestRedis(t *testing.T) {
	kvtest.RedisURL(t) // skip or fail once, not in every subtest
	kvtest.Run(t, func(t *testing.T) kv.Store { return kvtest.Redis(t) })
}

// TestRedisPrefix checks that stores with different prefixes do not see each
// other's keys.
func TestRedisPrefix(t *testing.T) {
	a, b := kvtest.Redis(t), kvtest.Redis(t)
	ctx := t.Context()
	if err := a.Set(ctx, "k", []byte("a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("other prefix Get: err = %v, want ErrNotFound", err)
	}
}

// TestRedisUnreachable checks that a Redis nobody listens on fails every
// call quickly with ErrUnavailable, keeping the cause.
func TestRedisUnreachable(t *testing.T) {
	const deadline = 3 * time.Second
	ctx := t.Context()

	began := time.Now()
	_, err := kv.OpenRedis(ctx, "redis://127.0.0.1:1/0")
	if !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("OpenRedis: err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("OpenRedis: err = %v, want the cause kept", err)
	}
	if d := time.Since(began); d > deadline {
		t.Fatalf("OpenRedis took %v, want under %v", d, deadline)
	}

	client, err := kv.NewRedisClient("redis://127.0.0.1:1/0")
	if err != nil {
		t.Fatal(err)
	}
	st := kv.NewRedis(client, "walletauth-test:")
	t.Cleanup(func() { _ = st.Close() })
	calls := map[string]func() error{
		"Set":              func() error { return st.Set(ctx, "k", []byte("v"), time.Minute) },
		"Get":              func() error { _, err := st.Get(ctx, "k"); return err },
		"SetNX":            func() error { _, err := st.SetNX(ctx, "k", []byte("v"), time.Minute); return err },
		"Consume":          func() error { _, err := st.Consume(ctx, "k"); return err },
		"CompareAndDelete": func() error { _, err := st.CompareAndDelete(ctx, "k", []byte("v")); return err },
		"Delete":           func() error { return st.Delete(ctx, "a", "b") },
		"Incr":             func() error { _, _, err := st.Incr(ctx, "k", time.Minute); return err },
		"Count":            func() error { _, _, err := st.Count(ctx, "k"); return err },
		"PushList": func() error {
			return st.PushList(ctx, "l", []byte("v"), 3, time.Minute, kv.Entry{Key: "k", Value: []byte("v")})
		},
		"List": func() error { _, err := st.List(ctx, "l"); return err },
		"Ping": func() error { return st.Ping(ctx) },
	}
	for name, call := range calls {
		began := time.Now()
		if err := call(); !errors.Is(err, kv.ErrUnavailable) {
			t.Errorf("%s: err = %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(began); d > deadline {
			t.Errorf("%s took %v, want under %v", name, d, deadline)
		}
	}
}

// TestRedisSilent checks that a server that accepts connections but never
// answers is bounded by the read timeout, or sooner by the caller's deadline.
func TestRedisSilent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	client, err := kv.NewRedisClient("redis://" + ln.Addr().String() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	st := kv.NewRedis(client, "walletauth-test:")
	t.Cleanup(func() { _ = st.Close() })

	began := time.Now()
	if err := st.Ping(t.Context()); !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("Ping: err = %v, want ErrUnavailable", err)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("Ping took %v, want about 2 s at most", d)
	}
	t.Logf("Ping failed after %v", time.Since(began))

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	began = time.Now()
	if _, err := st.Get(ctx, "k"); !errors.Is(err, kv.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get: err = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if d := time.Since(began); d > time.Second {
		t.Fatalf("Get with a 200ms deadline took %v", d)
	}
}

func TestNewRedisClientURLs(t *testing.T) {
	for _, tc := range []struct {
		url     string
		wantErr string
	}{
		{url: "redis://127.0.0.1:6379/0"},
		{url: "redis://:secret@127.0.0.1"},
		{url: "rediss://user:secret@cache.internal:6380/2?read_timeout=2s"},
		{url: "unix:///run/redis.sock?db=1"},
		{url: "redis+cluster://10.0.0.1:7000,10.0.0.2:7001"},
		{url: "rediss+cluster://:secret@10.0.0.1:7000,10.0.0.2:7001/?pool_size=5"},
		{url: "redis+sentinel://:secret@10.0.0.1:26379,10.0.0.2:26379/0?master_name=mymaster"},
		{url: "redis://h1:7000,h2:7001", wantErr: "+cluster"},
		{url: "redis+sentinel://10.0.0.1:26379", wantErr: "master_name"},
		{url: "redis+cluster://h1:7000/3", wantErr: "database 0"},
		{url: "memcached://h1", wantErr: "scheme"},
		{url: "redis+nope://h1", wantErr: "scheme"},
		{url: "redis://h1?bogus=1", wantErr: "bogus"},
		{url: "redis://:p%zz@h1", wantErr: "escape"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			client, err := kv.NewRedisClient(tc.url)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				_ = client.Close()
				return
			}
			if err == nil {
				_ = client.Close()
				t.Fatalf("no error, want one mentioning %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("err = %v shows the password", err)
			}
		})
	}
}

// TestRedisScriptsReloaded checks the EVAL fallback: after SCRIPT FLUSH (a
// restarted or failed-over Redis has no scripts) every scripted call still
// works.
func TestRedisScriptsReloaded(t *testing.T) {
	st := kvtest.Redis(t)
	client, err := kv.NewRedisClient(kvtest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := t.Context()
	for range 2 {
		if err := client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if n, _, err := st.Incr(ctx, "n", time.Minute); err != nil || n < 1 {
			t.Fatalf("Incr = %d, %v", n, err)
		}
		if err := client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if n, ttl, err := st.Count(ctx, "n"); err != nil || n < 1 || ttl <= 0 {
			t.Fatalf("Count = %d, %v, %v", n, ttl, err)
		}
		if err := st.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if ok, err := st.CompareAndDelete(ctx, "k", []byte("v")); err != nil || !ok {
			t.Fatalf("CompareAndDelete = %v, %v", ok, err)
		}
		if err := client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		// The entries go ahead of the script and are not set twice.
		if err := st.PushList(ctx, "l", []byte("v"), 3, time.Minute, kv.Entry{Key: "e", Value: []byte("v")}); err != nil {
			t.Fatalf("PushList: %v", err)
		}
		if got, err := st.List(ctx, "l"); err != nil || len(got) == 0 || string(got[0]) != "v" {
			t.Fatalf("List = %q, %v", got, err)
		}
		if got, err := st.Get(ctx, "e"); err != nil || string(got) != "v" {
			t.Fatalf("Get of the pushed entry = %q, %v", got, err)
		}
	}
}
