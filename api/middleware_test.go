package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestAccessLog: one JSON line per request with the request's facts, at
// info for an answer and error for a 5xx; nothing below the logger's level.
func TestAccessLog(t *testing.T) {
	gin.SetMode(gin.TestMode)
	newRouter := func(level slog.Level) (*gin.Engine, *bytes.Buffer) {
		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level})).With("service", "walletauth")
		r := gin.New()
		r.Use(RequestID(), AccessLog(log))
		r.GET("/things/:id", func(c *gin.Context) { c.String(http.StatusCreated, "hello") })
		r.GET("/broken", func(c *gin.Context) {
			_ = c.Error(errors.New("backend down"))
			c.Status(http.StatusServiceUnavailable)
		})
		r.GET("/refused", Handle(func(*gin.Context) error { return ErrRateLimited }))
		r.GET("/failed", Handle(func(*gin.Context) error { return errors.Join(errors.New("disk on fire"), errors.New("and more")) }))
		return r, &buf
	}
	serve := func(r *gin.Engine, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "192.0.2.7:4321"
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	lines := func(t *testing.T, buf *bytes.Buffer) []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if l == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("not a JSON line: %q: %v", l, err)
			}
			out = append(out, m)
		}
		return out
	}

	r, buf := newRouter(slog.LevelInfo)
	w := serve(r, "/things/42")
	got := lines(t, buf)
	if len(got) != 1 {
		t.Fatalf("%d lines, want 1: %s", len(got), buf)
	}
	l := got[0]
	want := map[string]any{
		"level": "INFO", "msg": "request", "service": "walletauth", "request_id": w.Header().Get(RequestIDHeader),
		"method": "GET", "route": "/things/:id", "path": "/things/42", "status": float64(201),
		"client_ip": "192.0.2.7", "bytes": float64(5),
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("%s = %v, want %v (line %v)", k, l[k], v, l)
		}
	}
	if d, ok := l["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("duration_ms = %v, want a number of milliseconds", l["duration_ms"])
	}
	if _, ok := l["duration"]; ok {
		t.Errorf("a duration without its unit in the key: %v", l)
	}
	if _, ok := l["time"].(string); !ok {
		t.Errorf("no time in %v", l)
	}
	if _, ok := l["error"]; ok {
		t.Errorf("error attribute on a request without errors: %v", l)
	}

	// The path escaped: an encoded "/" stays encoded, and one form for all.
	for sent, want := range map[string]string{"/things/a%2Fb": "/things/a%2Fb", "/things/a%20b": "/things/a%20b", "/things/%C3%BC": "/things/%C3%BC", "/things/ü": "/things/ü"} {
		buf.Reset()
		serve(r, sent)
		if got := lines(t, buf); len(got) != 1 || got[0]["path"] != want {
			t.Fatalf("path of %s = %v, want %s", sent, got, want)
		}
	}

	buf.Reset()
	serve(r, "/broken")
	if got := lines(t, buf); len(got) != 1 || got[0]["level"] != "ERROR" || got[0]["status"] != float64(503) || got[0]["error"] != "backend down" {
		t.Fatalf("5xx line = %v", got)
	}

	// A 4xx line carries the contract code it answered; a 500 its code and
	// its cause, without gin's "Error #01:" numbering.
	buf.Reset()
	serve(r, "/refused")
	if got := lines(t, buf); len(got) != 1 || got[0]["status"] != float64(429) || got[0]["error_code"] != "rate_limited" {
		t.Fatalf("4xx line = %v, want error_code rate_limited", got)
	}
	buf.Reset()
	serve(r, "/failed")
	if got := lines(t, buf); len(got) != 1 || got[0]["error_code"] != "internal" || got[0]["error"] != "disk on fire\nand more" {
		t.Fatalf("500 line = %v", got)
	}

	// At warn only the 5xx is written.
	r, buf = newRouter(slog.LevelWarn)
	serve(r, "/things/1")
	if buf.Len() != 0 {
		t.Fatalf("a 2xx logged at warn level: %s", buf)
	}
	serve(r, "/broken")
	if got := lines(t, buf); len(got) != 1 || got[0]["level"] != "ERROR" {
		t.Fatalf("5xx at warn level = %v", got)
	}
}
