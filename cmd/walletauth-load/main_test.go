package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// runJSON runs the tool with args and -json and decodes its result.
func runJSON(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(append(args, "-json"), &out, &errOut); err != nil {
		t.Fatalf("run %q: %v (stderr %s)", args, err, errOut.String())
	}
	var res result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("result %q: %v", out.String(), err)
	}
	return res
}

// The bare scenario counts 2xx answers as ok and others by status, with
// every request really sent (the server counts them).
func TestBareScenario(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/fail" {
			http.Error(w, `{"error":"x"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()

	res := runJSON(t, "-scenario", "bare", "-target", srv.URL, "-path", "/ok", "-c", "4", "-n", "200", "-duration", "10s")
	if res.Ops != 200 || res.OK != 200 || len(res.Errors) != 0 || served.Load() != 200 {
		t.Fatalf("ok run: ops %d ok %d errors %v, server saw %d; want 200, 200, none, 200", res.Ops, res.OK, res.Errors, served.Load())
	}
	res = runJSON(t, "-scenario", "bare", "-target", srv.URL, "-path", "/fail", "-c", "2", "-n", "50", "-duration", "10s")
	if res.OK != 0 || res.Errors["503"] != 50 {
		t.Fatalf("failing run: ok %d errors %v; want 0 and 50 × 503", res.OK, res.Errors)
	}
}

func TestRefusesNonLoopbackTargets(t *testing.T) {
	for _, target := range []string{"http://10.0.0.1:8080", "http://example.com", "ftp://127.0.0.1"} {
		err := run([]string{"-scenario", "bare", "-target", target, "-n", "1"}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "-target") {
			t.Errorf("-target %s: err = %v, want a refusal", target, err)
		}
	}
}
