package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/api/apitest"
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

// TestMetricsLabelsAreBounded: made-up methods and paths add no series to
// /metrics — an unknown method counts as OTHER, a path that matched no
// route as "unmatched" — so a client cannot grow it without bound.
func TestMetricsLabelsAreBounded(t *testing.T) {
	a := newTestApp(t)
	series := func() (map[string]bool, int) {
		rec := a.do(t, http.MethodGet, "/metrics", nil)
		apitest.WantStatus(t, rec, http.StatusOK)
		set := map[string]bool{}
		for _, line := range strings.Split(rec.Body.String(), "\n") {
			if strings.HasPrefix(line, "walletauth_http_") {
				name, _, _ := strings.Cut(line, " ")
				set[name] = true
			}
		}
		return set, rec.Body.Len()
	}
	flood := func(n int) {
		for i := 0; i < n; i++ {
			method := "X" + strings.ToUpper(randomHex(t, 4)) // a valid token, as a server accepts it
			for _, r := range []struct{ method, path string }{
				{method, "/" + randomHex(t, 8)},
				{method, "/healthz"},
				{method, "/v1/auth/email/login"},
				{strings.ToLower(http.MethodGet), "/healthz"},
				{http.MethodGet, "/v1/" + randomHex(t, 8) + "/" + randomHex(t, 4)},
				{http.MethodPost, "/v1/partner/users/" + randomHex(t, 8) + "/x"},
			} {
				a.do(t, r.method, r.path, nil)
			}
		}
	}
	flood(5)
	series() // so that the scrape itself is counted before the baseline
	before, sizeBefore := series()
	flood(1000)
	after, sizeAfter := series()
	t.Logf("/metrics: %d bytes and %d request series after 30 made-up requests; %d bytes and %d series after 6,000 more", sizeBefore, len(before), sizeAfter, len(after))
	for s := range after {
		if !before[s] {
			t.Errorf("new series after made-up requests: %s", s)
		}
	}
	if len(after) != len(before) {
		t.Fatalf("%d series before the flood, %d after", len(before), len(after))
	}
	for _, want := range []string{
		`walletauth_http_requests_total{method="OTHER",route="unmatched",status="404"}`,
		`walletauth_http_requests_total{method="OTHER",route="unmatched",status="405"}`,
		`walletauth_http_requests_total{method="GET",route="unmatched",status="404"}`,
	} {
		if !after[want] {
			t.Errorf("/metrics lacks %s; has %v", want, after)
		}
	}
}
