package main

// The HTTP frame through the real router: unknown routes and methods,
// body limits, invalid JSON, request IDs, CORS, health and readiness.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/api/apitest"
)

func TestUnknownRouteAndMethod(t *testing.T) {
	a := newTestApp(t)
	apitest.WantError(t, a.do(t, http.MethodGet, "/nope", nil), http.StatusNotFound, "not_found")
	apitest.WantError(t, a.do(t, http.MethodGet, "/v1/users/me/nope", nil), http.StatusNotFound, "not_found")
	apitest.WantError(t, a.do(t, http.MethodGet, "/v1/auth/email/signup", nil), http.StatusMethodNotAllowed, "method_not_allowed")
	apitest.WantError(t, a.do(t, http.MethodDelete, "/healthz", nil), http.StatusMethodNotAllowed, "method_not_allowed")
}

func TestBodyTooLarge(t *testing.T) {
	a := newTestApp(t)
	big := `{"email":"` + strings.Repeat("a", 65<<10) + `@example.com","password":"x"}`
	for _, path := range []string{"/v1/auth/email/signup", "/v1/auth/email/login"} {
		t.Run(path+"/content-length", func(t *testing.T) {
			apitest.WantError(t, a.do(t, http.MethodPost, path, big), http.StatusRequestEntityTooLarge, "body_too_large")
		})
		t.Run(path+"/chunked", func(t *testing.T) {
			rec := a.do(t, http.MethodPost, path, strings.NewReader(big))
			apitest.WantError(t, rec, http.StatusRequestEntityTooLarge, "body_too_large")
		})
	}
	t.Run("authenticated", func(t *testing.T) {
		tok := a.Signup(t, apitest.UniqueEmail(t)).AuthToken
		rec := a.do(t, http.MethodPatch, "/v1/users/me", strings.NewReader(big), apitest.Bearer(tok)...)
		apitest.WantError(t, rec, http.StatusRequestEntityTooLarge, "body_too_large")
	})
}

// A body of exactly 64 KiB is accepted, with and without a declared length.
func TestBodyOfExactly64KiB(t *testing.T) {
	a := newTestApp(t)
	for _, chunked := range []bool{false, true} {
		j, _ := json.Marshal(map[string]string{"email": apitest.UniqueEmail(t), "password": apitest.Password})
		body := append(j, bytes.Repeat([]byte(" "), 64<<10-len(j))...)
		if len(body) != 64<<10 {
			t.Fatalf("body is %d bytes", len(body))
		}
		var b any = body
		if chunked {
			b = bytes.NewReader(body)
		}
		apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/auth/email/signup", b), http.StatusCreated)
	}
}

func TestInvalidJSON(t *testing.T) {
	a := newTestApp(t)
	tok := a.Signup(t, apitest.UniqueEmail(t)).AuthToken
	cases := map[string]string{
		"malformed":        `{"email":`,
		"not json":         `email=a@example.com`,
		"wrong field type": `{"email": 5, "password": "` + apitest.Password + `"}`,
		"array":            `[]`,
		"empty":            ``,
		"blank":            "  \n",
		"two values":       `{"email":"a@example.com"} {"email":"b@example.com"}`,
		"trailing garbage": `{"email":"a@example.com"} x`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/v1/auth/email/signup", "/v1/auth/email/login"} {
				apitest.WantError(t, a.do(t, http.MethodPost, path, body), http.StatusBadRequest, "invalid_json")
			}
		})
	}
	t.Run("no body", func(t *testing.T) {
		apitest.WantError(t, a.do(t, http.MethodPost, "/v1/auth/email/signup", nil), http.StatusBadRequest, "invalid_json")
	})
	t.Run("patch wrong type", func(t *testing.T) {
		rec := a.do(t, http.MethodPatch, "/v1/users/me", `{"username": 5}`, apitest.Bearer(tok)...)
		apitest.WantError(t, rec, http.StatusBadRequest, "invalid_json")
		rec = a.do(t, http.MethodPatch, "/v1/users/me", `{"language": ["en"]}`, apitest.Bearer(tok)...)
		apitest.WantError(t, rec, http.StatusBadRequest, "invalid_json")
	})
	t.Run("add email malformed", func(t *testing.T) {
		rec := a.do(t, http.MethodPost, "/v1/users/me/email", `{"email"`, apitest.Bearer(tok)...)
		apitest.WantError(t, rec, http.StatusBadRequest, "invalid_json")
	})
}

func TestRequestID(t *testing.T) {
	a := newTestApp(t)
	rec := a.do(t, http.MethodGet, "/healthz", nil, "X-Request-Id", "req-abc-123")
	if got := rec.Header().Get("X-Request-Id"); got != "req-abc-123" {
		t.Errorf("echoed X-Request-Id = %q, want req-abc-123", got)
	}
	// Echoed on errors too.
	rec = a.do(t, http.MethodGet, "/nope", nil, "X-Request-Id", "req-404")
	if got := rec.Header().Get("X-Request-Id"); got != "req-404" {
		t.Errorf("X-Request-Id on a 404 = %q, want req-404", got)
	}
	first := a.do(t, http.MethodGet, "/healthz", nil).Header().Get("X-Request-Id")
	second := a.do(t, http.MethodGet, "/healthz", nil).Header().Get("X-Request-Id")
	if first == "" || second == "" || first == second {
		t.Errorf("generated X-Request-Ids = %q, %q; want two different non-empty ones", first, second)
	}
	// An unusable incoming ID (a control character, absurd length) is replaced.
	for _, bad := range []string{strings.Repeat("x", 500), "a\x01b"} {
		got := a.do(t, http.MethodGet, "/healthz", nil, "X-Request-Id", bad).Header().Get("X-Request-Id")
		if got == "" || got == bad {
			t.Errorf("X-Request-Id for incoming %q = %q, want a generated one", bad, got)
		}
	}
}

func TestCORS(t *testing.T) {
	const allowed = "https://app.example.com"
	a := newTestApp(t, withEnv("CORS_ORIGINS", allowed+", https://other.example.org"))

	rec := a.do(t, http.MethodGet, "/healthz", nil, "Origin", allowed)
	apitest.WantStatus(t, rec, http.StatusOK)
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != allowed {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, allowed)
	}

	rec = a.do(t, http.MethodOptions, "/v1/auth/email/login", nil,
		"Origin", allowed, "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type")
	apitest.WantStatus(t, rec, http.StatusNoContent)
	h := rec.Header()
	if got := h.Get("Access-Control-Allow-Origin"); got != allowed {
		t.Errorf("preflight Access-Control-Allow-Origin = %q, want %q", got, allowed)
	}
	if m := h.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") || !strings.Contains(m, "PATCH") || !strings.Contains(m, "DELETE") {
		t.Errorf("preflight Access-Control-Allow-Methods = %q", m)
	}
	if hs := strings.ToLower(h.Get("Access-Control-Allow-Headers")); !strings.Contains(hs, "authorization") || !strings.Contains(hs, "content-type") {
		t.Errorf("preflight Access-Control-Allow-Headers = %q", hs)
	}

	for _, other := range []string{"https://evil.example.com", "http://app.example.com", "https://app.example.com:8443", "null"} {
		rec := a.do(t, http.MethodGet, "/healthz", nil, "Origin", other)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("origin %q: Access-Control-Allow-Origin = %q, want none", other, got)
		}
		rec = a.do(t, http.MethodOptions, "/v1/auth/email/login", nil, "Origin", other, "Access-Control-Request-Method", "POST")
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" || rec.Code == http.StatusNoContent {
			t.Errorf("origin %q: preflight answered %d with Access-Control-Allow-Origin %q, want no CORS approval", other, rec.Code, got)
		}
	}

	// With no CORS_ORIGINS configured, nobody is approved.
	b := newTestApp(t)
	if got := b.do(t, http.MethodGet, "/healthz", nil, "Origin", allowed).Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("no CORS_ORIGINS: Access-Control-Allow-Origin = %q, want none", got)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		apitest.WantStatus(t, a.do(t, http.MethodGet, "/healthz", nil), http.StatusOK)
		apitest.WantStatus(t, a.do(t, http.MethodGet, "/readyz", nil), http.StatusOK)

		if err := a.db.Close(); err != nil {
			t.Fatal(err)
		}
		apitest.WantError(t, a.do(t, http.MethodGet, "/readyz", nil), http.StatusServiceUnavailable, "unavailable")
		apitest.WantStatus(t, a.do(t, http.MethodGet, "/healthz", nil), http.StatusOK)
	})
}
