package cache_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/walletauth/walletauth/cache"
	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/kv/kvtest"
)

func TestTTLMapExpiryAndBound(t *testing.T) {
	clock := clocktest.New(time.Unix(1_700_000_000, 0))
	m := cache.NewTTLMap[string, int](2, time.Minute, clock.Now)
	m.PutIf("a", 1, m.Version())
	if v, ok := m.Get("a"); !ok || v != 1 {
		t.Fatalf("Get(a) = %v, %v", v, ok)
	}
	clock.Advance(time.Minute)
	if _, ok := m.Get("a"); ok {
		t.Fatal("entry outlived its ttl")
	}
	m.PutIf("b", 2, m.Version())
	m.PutIf("c", 3, m.Version()) // full: cleared first
	if m.Len() > 2 {
		t.Fatalf("len %d over the bound", m.Len())
	}
}

// A sized map keeps its entries' costs within its budget, evicting to make
// room, and drops a key whose new value alone is over the budget.
func TestSizedTTLMapBudget(t *testing.T) {
	m := cache.NewSizedTTLMap(100, func(_ string, v string) int { return len(v) }, time.Minute, nil)
	for i := range 50 {
		m.PutIf(string(rune('a'+i%26))+string(rune('a'+i/26)), "0123456789", m.Version())
		if m.Used() > 100 {
			t.Fatalf("after %d puts: %d used, over the budget of 100", i+1, m.Used())
		}
	}
	if m.Len() == 0 || m.Used() != 10*m.Len() {
		t.Fatalf("%d entries, %d used: the accounting is off", m.Len(), m.Used())
	}
	m.PutIf("k", "small", m.Version())
	m.PutIf("k", string(make([]byte, 101)), m.Version()) // over the budget alone
	if _, ok := m.Get("k"); ok {
		t.Fatal("a key kept its earlier value after a put too large to keep")
	}
	m.Delete("k")
	m.DeleteFunc(func(string, string) bool { return true })
	if m.Len() != 0 || m.Used() != 0 {
		t.Fatalf("after deleting everything: %d entries, %d used", m.Len(), m.Used())
	}
}

// A value read before an invalidation must not be stored after it: this is
// what keeps a revoked session from being cached by a racing check.
func TestTTLMapPutIfLosesToInvalidation(t *testing.T) {
	m := cache.NewTTLMap[string, int](10, time.Minute, nil)
	v := m.Version()
	m.Delete("k") // the invalidation lands between the read and the put
	m.PutIf("k", 1, v)
	if _, ok := m.Get("k"); ok {
		t.Fatal("a stale value was cached after an invalidation")
	}
}

func TestLocalBusDeliversAtOnce(t *testing.T) {
	b := cache.NewLocalBus()
	var got []cache.Event
	b.OnEvent(func(e cache.Event) { got = append(got, e) }, func() {})
	if !b.Healthy() {
		t.Fatal("a local bus is always healthy")
	}
	if err := b.Publish(context.Background(), cache.Event{Kind: cache.KindToken, Key: "x"}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "x" {
		t.Fatalf("got %v", got)
	}
}

// Two instances on one Redis: an event published by A reaches B.
func TestRedisBusAcrossInstances(t *testing.T) {
	url := kvtest.RedisURL(t)
	channel := "walletauth-test:bus:" + t.Name() + time.Now().Format("150405.000000")
	newBus := func() (*cache.Bus, chan cache.Event, chan struct{}) {
		client, err := kv.NewRedisClient(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.Close() })
		b := cache.NewRedisBus(client, channel, nil)
		events := make(chan cache.Event, 10)
		flushed := make(chan struct{}, 10)
		b.OnEvent(func(e cache.Event) { events <- e }, func() { flushed <- struct{}{} })
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); b.Run(ctx) }()
		t.Cleanup(func() { cancel(); wg.Wait() })
		return b, events, flushed
	}
	a, _, _ := newBus()
	b, bEvents, bFlushed := newBus()
	waitHealthy(t, a)
	waitHealthy(t, b)
	select {
	case <-bFlushed: // subscribing flushes what may have been missed
	default:
		t.Fatal("B did not flush its caches when it subscribed")
	}
	if err := a.Publish(context.Background(), cache.Event{Kind: cache.KindUserTokens, Key: "user-1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-bEvents:
		if e.Kind != cache.KindUserTokens || e.Key != "user-1" {
			t.Fatalf("B got %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B never got A's event")
	}
}

// A bus that cannot reach Redis is never healthy, so caches are bypassed.
func TestRedisBusUnreachableIsUnhealthy(t *testing.T) {
	client, err := kv.NewRedisClient("redis://127.0.0.1:1/0")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	b := cache.NewRedisBus(client, "x", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	time.Sleep(300 * time.Millisecond) // let it try; the assertion is on state, not on time
	if b.Healthy() {
		t.Fatal("healthy without a subscription")
	}
	cancel()
	<-done
}

func waitHealthy(t *testing.T, b *cache.Bus) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !b.Healthy() {
		if time.Now().After(deadline) {
			t.Fatal("bus never became healthy")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BusFor: an in-process bus for a single instance by nature, and none — no
// caching — for several instances without Redis.
func TestBusForWithoutRedis(t *testing.T) {
	if b := cache.BusFor(nil, true, "ch", nil); b == nil || !b.Healthy() {
		t.Fatalf("single instance: bus %v, want a healthy local bus", b)
	}
	if b := cache.BusFor(nil, false, "ch", nil); b != nil {
		t.Fatalf("several instances without Redis: bus %v, want none", b)
	}
}
