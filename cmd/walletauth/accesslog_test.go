package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Every refused request has an access log line with its error code and
// duration_ms, also when a middleware refused it before any handler ran:
// a body over 64 KiB (413), headers over 32 KiB (431), a CORS preflight
// from a disallowed origin (403), a HEAD that needs a token (401), a
// method the route lacks (405), an unknown path (404), a rate limit (429)
// and text that is not Unicode (400).
func TestAccessLogOfRefusedRequests(t *testing.T) {
	s := startServer(t, "LOG_FORMAT", "json", "CHALLENGE_PER_IP", "1/1m")
	send := func(method, path, body string, headers ...string) int {
		t.Helper()
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(t.Context(), method, s.base+path, r)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	want := map[int]string{
		send(http.MethodPost, "/v1/auth/email/signup", `{"email":"`+strings.Repeat("a", 70<<10)+`"}`, "Content-Type", "application/json"): "body_too_large",
		send(http.MethodGet, "/healthz", "", "X-Filler", strings.Repeat("x", 40<<10)):                                                     "headers_too_large",
		send(http.MethodOptions, "/v1/users/me", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "GET"):            "origin_not_allowed",
		send(http.MethodHead, "/v1/users/me", ""): "unauthorized",
		send(http.MethodPut, "/healthz", ""):      "method_not_allowed",
		send(http.MethodGet, "/no/such/path", ""): "not_found",
		send(http.MethodPost, "/v1/auth/email/signup", `{"email":"a\u0000@example.com","password":"x"}`, "Content-Type", "application/json"): "invalid_json",
	}
	send(http.MethodGet, "/v1/auth/wallet/nonce", "")
	want[send(http.MethodGet, "/v1/auth/wallet/nonce", "")] = "rate_limited"
	for _, st := range []int{413, 431, 403, 401, 405, 404, 400, 429} {
		if _, ok := want[st]; !ok {
			t.Fatalf("statuses %v: the requests did not get the refusals this test is about", want)
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("run = %v", err)
	}

	seen := map[int]bool{}
	for _, line := range strings.Split(strings.TrimSpace(s.stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("not a JSON line: %q", line)
			continue
		}
		st, _ := m["status"].(float64)
		if m["msg"] != "request" || st < 400 {
			continue
		}
		if _, ok := m["duration_ms"].(float64); !ok {
			t.Errorf("a %v line without duration_ms: %s", st, line)
		}
		if code, ok := want[int(st)]; ok {
			seen[int(st)] = true
			if m["error_code"] != code {
				t.Errorf("a %v line with error_code %v, want %s: %s", st, m["error_code"], code, line)
			}
		}
	}
	for st := range want {
		if !seen[st] {
			t.Errorf("no access log line for the %d request", st)
		}
	}
}
