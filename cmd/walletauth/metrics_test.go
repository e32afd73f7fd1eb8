package main

import (
	"net/http"
	"strings"
	"testing"
)

// GET /metrics speaks the Prometheus text format and counts requests by
// route pattern and status, and logins by method and outcome.
func TestMetrics(t *testing.T) {
	a := newTestApp(t)
	a.do(t, http.MethodGet, "/healthz", nil)
	a.do(t, http.MethodGet, "/no/such/path", nil)
	a.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": "nobody@example.com", "password": "whatever-1234"})

	rec := a.do(t, http.MethodGet, "/metrics", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q, want the Prometheus text format", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`walletauth_http_requests_total{method="GET",route="/healthz",status="200"} 1`,
		`walletauth_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`walletauth_http_request_duration_seconds_bucket{method="POST",route="/v1/auth/email/login",le="+Inf"} 1`,
		`walletauth_logins_total{method="email",outcome="invalid_credentials"} 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
