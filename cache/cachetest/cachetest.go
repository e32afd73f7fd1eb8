// Package cachetest measures what a bounded cache really keeps on the heap,
// for the tests that hold a cache's size estimates to its budget.
package cachetest

import (
	"runtime"
	"testing"
)

// WantHeldWithin fills a cache through fill (which returns it, kept alive
// until measured) and checks the live heap it keeps against budget: at
// most budget plus 10 % (the estimate may err by that much) and at least
// half of it (an estimate so large that the budget is wasted fails too).
// entries reports how many entries the cache holds and fed how many were
// offered: a cache that took every one was not filled past its budget,
// and the test is void.
func WantHeldWithin(t *testing.T, budget int, fill func() (cache any, entries, fed int), what string) {
	t.Helper()
	if testing.Short() {
		t.Skip("fills a cache of a few MiB")
	}
	before := heapInUse()
	c, entries, fed := fill()
	held := int(heapInUse()) - int(before) //nolint:gosec // a heap's size in bytes fits an int on 64-bit
	runtime.KeepAlive(c)
	t.Logf("%s: budget %d B, %d of %d entries kept, heap %d B", what, budget, entries, fed, held)
	if entries == 0 || entries == fed {
		t.Fatalf("%s: %d of %d entries kept: the test did not fill the cache past its budget", what, entries, fed)
	}
	if held > budget*11/10 {
		t.Errorf("%s holds %d B of heap, over its budget %d B by more than 10 %%: its estimate is too small", what, held, budget)
	}
	if held < budget/2 {
		t.Errorf("%s holds %d B of heap, under half its budget %d B: its estimate is too large", what, held, budget)
	}
}

// heapInUse is the live heap after full collections.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
