package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the flusher goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines written concurrently all arrive whole, within the flush period
// and at the latest on Close.
func TestBufferedLog(t *testing.T) {
	var out syncBuffer
	b := newBufferedLog(&out)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte(strings.Repeat(string(rune('a'+i)), 10) + "\n"))
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "\n") < 800 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the periodic flush, not Close, delivers them
	}
	if n := strings.Count(out.String(), "\n"); n != 800 {
		t.Fatalf("%d lines flushed before Close, want 800", n)
	}
	_, _ = b.Write([]byte("last\n"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 801 || lines[800] != "last" {
		t.Fatalf("after Close: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	for _, l := range lines[:800] {
		if len(l) != 10 || strings.Count(l, l[:1]) != 10 {
			t.Fatalf("a line was interleaved: %q", l)
		}
	}
}
