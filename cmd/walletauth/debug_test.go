package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestServeDebug(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := serveDebug(ctx, "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr.String()
	get := func(path, host string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/debug/pprof/", ""); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("index: %d %q", code, body)
	}
	if code, _ := get("/debug/pprof/", "localhost:6060"); code != http.StatusOK {
		t.Fatalf("index as localhost: %d", code)
	}
	if code, _ := get("/debug/pprof/cmdline", ""); code != http.StatusNotFound {
		t.Errorf("cmdline: %d, want 404 (it may carry secrets)", code)
	}
	if code, _ := get("/debug/pprof/", "attacker.example:6060"); code != http.StatusForbidden {
		t.Errorf("a non-loopback Host (DNS rebinding): %d, want 403", code)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := &http.Client{Timeout: time.Second}
		if _, err := c.Get(base + "/debug/pprof/"); err != nil {
			break // closed with its context
		}
		if time.Now().After(deadline) {
			t.Fatal("debug server still answering after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
