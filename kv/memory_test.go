package kv_test

import (
	"testing"
	"time"

	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/kv/kvtest"
)

var start = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestMemory(t *testing.T) {
	clock := kvtest.NewClock(start)
	kvtest.Run(t, func(t *testing.T) kv.Store {
		m := kv.NewMemory(clock.Now)
		t.Cleanup(func() { _ = m.Close() })
		return m
	}, kvtest.WithAdvance(clock.Advance))
}

func TestMemoryCloseTwice(t *testing.T) {
	m := kv.NewMemory(time.Now)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
