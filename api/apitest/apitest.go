// Package apitest holds the HTTP helpers of walletauth's handler tests:
// a router with the service's middleware, building a request, sending it
// through a router, and checking an answer against the contract's shapes
// ({"error": {"code", "message"}} for errors). It is imported by tests only.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api"
)

// NewRouter is a gin engine in test mode with the middleware every handler
// runs behind in the service (panics answered, request IDs, the body limit,
// a deadline; the contract's 404 and 405), for a package's tests to mount
// its own handlers on.
func NewRouter(tb testing.TB) *gin.Engine {
	tb.Helper()
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	if err := r.SetTrustedProxies(nil); err != nil {
		tb.Fatalf("trusted proxies: %v", err)
	}
	r.Use(api.Recover(slog.New(slog.DiscardHandler)), api.RequestID(), api.LimitBody(), api.Deadline(10*time.Second))
	r.NoRoute(api.NoRoute)
	r.NoMethod(api.NoMethod)
	return r
}

// NewRequest builds a request from clientIP (port 40000). body is nil
// (none), a string or []byte (sent as is), an io.Reader (sent without a
// declared length, as a chunked request would be) or anything else (sent as
// JSON); a request with a body says Content-Type: application/json.
// headers are name, value pairs.
func NewRequest(tb testing.TB, clientIP, method, path string, body any, headers ...string) *http.Request {
	tb.Helper()
	if len(headers)%2 != 0 {
		tb.Fatalf("do: headers must be name, value pairs: %q", headers)
	}
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	case io.Reader:
		r = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatalf("do: marshal body: %v", err)
		}
		r = bytes.NewReader(j)
	}
	req := httptest.NewRequestWithContext(context.Background(), method, path, r)
	if _, ok := body.(io.Reader); ok {
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.RemoteAddr = clientIP + ":40000"
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// Do sends NewRequest's request through h and returns the answer.
func Do(tb testing.TB, h http.Handler, clientIP, method, path string, body any, headers ...string) *httptest.ResponseRecorder {
	tb.Helper()
	req := NewRequest(tb, clientIP, method, path, body, headers...)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Bearer is the Authorization header pair for token; none for "".
func Bearer(token string) []string {
	if token == "" {
		return nil
	}
	return []string{"Authorization", "Bearer " + token}
}

// ErrorCode checks that rec holds exactly the contract's error shape — a
// JSON object with the one key "error", itself an object of exactly a
// non-empty string code and message — and returns the code.
func ErrorCode(tb testing.TB, rec *httptest.ResponseRecorder) string {
	tb.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("error response Content-Type = %q, want application/json", ct)
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &outer); err != nil {
		tb.Fatalf("status %d: error response is not a JSON object: %v: %s", rec.Code, err, rec.Body)
	}
	if len(outer) != 1 || outer["error"] == nil {
		tb.Fatalf(`status %d: error response: want only the key "error", got %s`, rec.Code, rec.Body)
	}
	var inner struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(outer["error"]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&inner); err != nil {
		tb.Fatalf("status %d: error response: error is not {code, message}: %v: %s", rec.Code, err, rec.Body)
	}
	if inner.Code == "" || inner.Message == "" {
		tb.Fatalf("status %d: error response: want non-empty string code and message, got %s", rec.Code, rec.Body)
	}
	return inner.Code
}

// ErrorMessage returns the message of an error response.
func ErrorMessage(tb testing.TB, rec *httptest.ResponseRecorder) string {
	tb.Helper()
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	DecodeJSON(tb, rec, &e)
	return e.Error.Message
}

// WantError checks the status, the error shape and the contract code of an
// error response.
func WantError(tb testing.TB, rec *httptest.ResponseRecorder, status int, code string) {
	tb.Helper()
	if rec.Code != status {
		tb.Fatalf("status = %d, want %d (%s); body: %s", rec.Code, status, code, rec.Body)
	}
	if got := ErrorCode(tb, rec); got != code {
		tb.Fatalf("error code = %q, want %q; body: %s", got, code, rec.Body)
	}
}

// WantStatus checks the status of a response.
func WantStatus(tb testing.TB, rec *httptest.ResponseRecorder, status int) {
	tb.Helper()
	if rec.Code != status {
		tb.Fatalf("status = %d, want %d; body: %s", rec.Code, status, rec.Body)
	}
}

// WantRetryAfter checks that a 429 carries Retry-After: whole seconds,
// positive, at most maxWait.
func WantRetryAfter(tb testing.TB, rec *httptest.ResponseRecorder, maxWait time.Duration) {
	tb.Helper()
	ra := rec.Header().Get("Retry-After")
	n, err := strconv.Atoi(ra)
	if err != nil || n < 1 || time.Duration(n)*time.Second > maxWait {
		tb.Errorf("Retry-After = %q, want whole seconds in [1, %d]", ra, int(maxWait.Seconds()))
	}
}

// DecodeJSON unmarshals the response body into v.
func DecodeJSON(tb testing.TB, rec *httptest.ResponseRecorder, v any) {
	tb.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		tb.Fatalf("response is not the expected JSON: %v: %s", err, rec.Body)
	}
}

// DecodeOK checks that rec is a 200 and decodes its body as a T.
func DecodeOK[T any](tb testing.TB, rec *httptest.ResponseRecorder) T {
	tb.Helper()
	WantStatus(tb, rec, http.StatusOK)
	var v T
	DecodeJSON(tb, rec, &v)
	return v
}
