package apitest_test

import (
	"encoding/json"
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

// A fake of the contract's email endpoints and GET /v1/users/me: token
// "good" is a session of user u1; signup answers as created unless the email
// says "old".
func fakeAccounts() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
	mux.HandleFunc("POST /v1/auth/email/signup", func(w http.ResponseWriter, r *http.Request) {
		var b map[string]string
		_ = json.NewDecoder(r.Body).Decode(&b)
		if b["password"] != apitest.Password || b["language"] != "de" {
			reply(w, 400, `{"error":{"code":"weak_password","message":"m"}}`)
			return
		}
		if strings.HasPrefix(b["email"], "old") {
			reply(w, 201, `{"auth_token":"good","user":{"id":"u1"},"created":false}`)
			return
		}
		reply(w, 201, `{"auth_token":"good","user":{"id":"u1","email":"`+b["email"]+`"},"created":true}`)
	})
	mux.HandleFunc("POST /v1/auth/email/login", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, `{"auth_token":"good","user":{"id":"u1"},"created":false}`)
	})
	mux.HandleFunc("GET /v1/users/me", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			reply(w, 401, `{"error":{"code":"unauthorized","message":"m"}}`)
			return
		}
		reply(w, 200, `{"id":"u1","username":"alice"}`)
	})
	return mux
}

func TestAccountHelpers(t *testing.T) {
	c := apitest.Client{Handler: fakeAccounts(), IP: apitest.RandomIP(t)}
	email := apitest.UniqueEmail(t)
	if l := c.Signup(t, email, "language", "de"); !l.IsCreated() || l.User.Email == nil || *l.User.Email != email {
		t.Errorf("Signup = %+v", l)
	}
	if fails(t, func(tb testing.TB) { c.Signup(tb, "x@example.com", "language", "de") }) {
		t.Error("Signup failed on a 201 created:true")
	}
	if !fails(t, func(tb testing.TB) { c.Signup(tb, "old@example.com", "language", "de") }) {
		t.Error("Signup took created:false")
	}
	if !fails(t, func(tb testing.TB) { c.Signup(tb, "x@example.com") }) {
		t.Error("Signup took a 400")
	}
	if l := c.EmailLogin(t, email, apitest.Password); l.AuthToken != "good" || l.IsCreated() || l.Created == nil {
		t.Errorf("EmailLogin = %+v", l)
	}
	if u := c.Me(t, "good"); u.ID != "u1" || u.Username != "alice" {
		t.Errorf("Me = %+v", u)
	}
	if !fails(t, func(tb testing.TB) { c.Me(tb, "bad") }) {
		t.Error("Me took a 401")
	}
	if fails(t, func(tb testing.TB) { c.WantUnauthorized(tb, "bad") }) {
		t.Error("WantUnauthorized failed on a 401 unauthorized")
	}
	if !fails(t, func(tb testing.TB) { c.WantUnauthorized(tb, "good") }) {
		t.Error("WantUnauthorized took a 200")
	}
	if a, b := apitest.UniqueEmail(t), apitest.UniqueEmail(t); a == b || !strings.HasSuffix(a, "@example.com") {
		t.Errorf("UniqueEmail: %q, %q", a, b)
	}
	if ip := apitest.RandomIP(t); !strings.HasPrefix(ip, "198.18.") {
		t.Errorf("RandomIP %q", ip)
	}
}
