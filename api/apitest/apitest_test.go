package apitest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api/apitest"
)

// failTB records whether a check failed; Fatalf ends the goroutine of the
// check as testing's does.
type failTB struct {
	testing.TB
	failed bool
}

func (f *failTB) Helper()                        {}
func (f *failTB) Errorf(string, ...any)          { f.failed = true }
func (f *failTB) Fatalf(format string, a ...any) { f.failed = true; runtime.Goexit() }

// fails reports whether check fails on tb.
func fails(t *testing.T, check func(tb testing.TB)) bool {
	t.Helper()
	f := &failTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(f)
	}()
	<-done
	return f.failed
}

func answer(status int, contentType, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", contentType)
	rec.WriteHeader(status)
	_, _ = rec.WriteString(body)
	return rec
}

func TestWantError(t *testing.T) {
	const js = "application/json; charset=utf-8"
	ok := answer(401, js, `{"error":{"code":"nonce_invalid","message":"The nonce is unknown."}}`)
	if fails(t, func(tb testing.TB) { apitest.WantError(tb, ok, 401, "nonce_invalid") }) {
		t.Fatal("the contract's error shape failed the check")
	}
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"other status":        answer(400, js, `{"error":{"code":"nonce_invalid","message":"m"}}`),
		"other code":          answer(401, js, `{"error":{"code":"token_invalid","message":"m"}}`),
		"not JSON":            answer(401, "text/plain", `{"error":{"code":"nonce_invalid","message":"m"}}`),
		"empty message":       answer(401, js, `{"error":{"code":"nonce_invalid","message":""}}`),
		"no message":          answer(401, js, `{"error":{"code":"nonce_invalid"}}`),
		"a key beside error":  answer(401, js, `{"error":{"code":"nonce_invalid","message":"m"},"x":1}`),
		"a key inside error":  answer(401, js, `{"error":{"code":"nonce_invalid","message":"m","x":1}}`),
		"code not a string":   answer(401, js, `{"error":{"code":7,"message":"m"}}`),
		"error not an object": answer(401, js, `{"error":"nonce_invalid"}`),
		"not an object":       answer(401, js, `[]`),
	} {
		if !fails(t, func(tb testing.TB) { apitest.WantError(tb, rec, 401, "nonce_invalid") }) {
			t.Errorf("%s: %s passed the check", name, rec.Body)
		}
	}
}

func TestDecodeOK(t *testing.T) {
	var got struct{ A int }
	if fails(t, func(tb testing.TB) {
		got = apitest.DecodeOK[struct{ A int }](tb, answer(200, "application/json", `{"A":3}`))
	}) || got.A != 3 {
		t.Fatalf("DecodeOK of a 200 = %+v", got)
	}
	if !fails(t, func(tb testing.TB) { apitest.DecodeOK[struct{ A int }](tb, answer(201, "application/json", `{"A":3}`)) }) {
		t.Error("DecodeOK took a 201")
	}
	if !fails(t, func(tb testing.TB) { apitest.DecodeOK[struct{ A int }](tb, answer(200, "application/json", `{"A":`)) }) {
		t.Error("DecodeOK took cut-short JSON")
	}
}

// Do sends each kind of body as NewRequest says, from clientIP.
func TestDo(t *testing.T) {
	type seen struct {
		body, contentType, remote, auth string
		length                          int64
		chunked                         bool
	}
	var last seen
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		last = seen{string(b), r.Header.Get("Content-Type"), r.RemoteAddr, r.Header.Get("Authorization"), r.ContentLength,
			len(r.TransferEncoding) == 1 && r.TransferEncoding[0] == "chunked"}
	})
	for _, tc := range []struct {
		name string
		body any
		want seen
	}{
		{"none", nil, seen{"", "", "192.0.2.9:40000", "", 0, false}},
		{"string", `{"a":1}`, seen{`{"a":1}`, "application/json", "192.0.2.9:40000", "", 7, false}},
		{"bytes", []byte("x"), seen{"x", "application/json", "192.0.2.9:40000", "", 1, false}},
		{"reader", strings.NewReader("abc"), seen{"abc", "application/json", "192.0.2.9:40000", "", -1, true}},
		{"value", map[string]string{"email": "a@b"}, seen{`{"email":"a@b"}`, "application/json", "192.0.2.9:40000", "", 15, false}},
	} {
		apitest.Do(t, h, "192.0.2.9", http.MethodPost, "/p", tc.body)
		if last != tc.want {
			t.Errorf("%s: server saw %+v, want %+v", tc.name, last, tc.want)
		}
	}
	apitest.Do(t, h, "192.0.2.9", http.MethodGet, "/p", nil, apitest.Bearer("wat_x")...)
	if last.auth != "Bearer wat_x" {
		t.Errorf("Bearer: Authorization %q", last.auth)
	}
	if apitest.Bearer("") != nil {
		t.Error(`Bearer("") is a header`)
	}
}

func TestWantRetryAfter(t *testing.T) {
	with := func(v string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		if v != "" {
			rec.Header().Set("Retry-After", v)
		}
		return rec
	}
	for _, v := range []string{"1", "60", "900"} {
		if fails(t, func(tb testing.TB) { apitest.WantRetryAfter(tb, with(v), 15*time.Minute) }) {
			t.Errorf("Retry-After %q failed a 15-minute bound", v)
		}
	}
	for _, v := range []string{"", "0", "-1", "901", "1.5", "Wed, 21 Oct 2026 07:28:00 GMT"} {
		if !fails(t, func(tb testing.TB) { apitest.WantRetryAfter(tb, with(v), 15*time.Minute) }) {
			t.Errorf("Retry-After %q passed a 15-minute bound", v)
		}
	}
}

// NewRouter answers in the contract's shapes where no handler does, and
// answers a panicking handler 500 in them too.
func TestNewRouter(t *testing.T) {
	r := apitest.NewRouter(t)
	r.GET("/ok", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	r.GET("/panic", func(*gin.Context) { panic("boom") })
	apitest.WantStatus(t, apitest.Do(t, r, "192.0.2.9", http.MethodGet, "/ok", nil), http.StatusNoContent)
	apitest.WantError(t, apitest.Do(t, r, "192.0.2.9", http.MethodGet, "/nothing", nil), http.StatusNotFound, "not_found")
	apitest.WantError(t, apitest.Do(t, r, "192.0.2.9", http.MethodPost, "/ok", nil), http.StatusMethodNotAllowed, "method_not_allowed")
	apitest.WantError(t, apitest.Do(t, r, "192.0.2.9", http.MethodGet, "/panic", nil), http.StatusInternalServerError, "internal")
	if rec := apitest.Do(t, r, "192.0.2.9", http.MethodGet, "/ok", nil); rec.Header().Get("X-Request-Id") == "" {
		t.Error("no request ID")
	}
}
