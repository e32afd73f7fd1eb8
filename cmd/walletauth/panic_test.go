package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/config"
	"github.com/walletauth/walletauth/passwords"
)

// A handler that panics is answered 500 internal in the error shape, and
// the request is still accounted for like any other: one access log line
// (status 500, error_code internal, the panic as its error) and a count in
// /metrics. The recovery must sit inside the access log and the metrics.
func TestPanicIsLoggedAndCounted(t *testing.T) {
	env := map[string]string{
		config.Prefix + "DATABASE_URL":    sqliteURL(t),
		config.Prefix + "SECRET_KEY_FILE": filepath.Join(t.TempDir(), "walletauth.key"),
	}
	cfg, err := config.Load(mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	params := passwords.TestParams()
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewJSONHandler(&logs, nil)), appOptions{passwordParams: &params})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.close() })
	a.router.GET("/v1/test-panic", func(*gin.Context) { panic("handler bug") })

	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/test-panic", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"internal"`) {
		t.Fatalf("panic answered %d %s, want 500 internal", rec.Code, rec.Body)
	}

	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["route"] == "/v1/test-panic" {
			line = m
		}
	}
	if line == nil {
		t.Fatalf("no access log line for the request that panicked:\n%s", logs.String())
	}
	if line["status"] != float64(500) || line["error_code"] != "internal" || !strings.Contains(line["error"].(string), "handler bug") {
		t.Errorf("access line = %v, want status 500, error_code internal, the panic as error", line)
	}

	m := httptest.NewRecorder()
	a.handler.ServeHTTP(m, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(m.Body.String(), `walletauth_http_requests_total{method="GET",route="/v1/test-panic",status="500"} 1`) {
		t.Errorf("/metrics does not count the 500 of the request that panicked")
	}
}
