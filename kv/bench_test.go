package kv_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/kv/kvtest"
)

func BenchmarkMemory(b *testing.B) {
	bench(b, func(b *testing.B) kv.Store {
		m := kv.NewMemory(time.Now)
		b.Cleanup(func() { _ = m.Close() })
		return m
	})
}

func BenchmarkRedis(b *testing.B) {
	bench(b, func(b *testing.B) kv.Store { return kvtest.Redis(b) })
}

func bench(b *testing.B, newStore func(b *testing.B) kv.Store) {
	value := []byte("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed:8f3c2a")
	b.Run("Set", func(b *testing.B) {
		st := newStore(b)
		ctx := b.Context()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := st.Set(ctx, "set:"+strconv.Itoa(i%1000), value, time.Minute); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Consume", func(b *testing.B) {
		st := newStore(b)
		ctx := b.Context()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			b.StopTimer()
			key := "nonce:" + strconv.Itoa(i)
			if err := st.Set(ctx, key, value, time.Minute); err != nil {
				b.Fatal(err)
			}
			i++
			b.StartTimer()
			if _, err := st.Consume(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Incr", func(b *testing.B) {
		st := newStore(b)
		ctx := b.Context()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, _, err := st.Incr(ctx, "rl:"+strconv.Itoa(i%100), time.Minute); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("IncrParallel", func(b *testing.B) {
		st := newStore(b)
		ctx := b.Context()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := st.Incr(ctx, "rl:shared", time.Minute); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
