package main

// Tests of the HTTP frame seen from outside (issue 13, "Operations"): the
// partner login's created, HEAD, CORS preflights, Cache-Control and the
// server-level errors.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/wallet"
)

// newClientPartner registers a partner with client-side login from origins
// and returns its ID and secret.
func (a *testApp) newClientPartner(t *testing.T, origins ...string) (id, secret string) {
	t.Helper()
	keys, err := loadKeyring(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, secret, err := partners.NewRegistry(a.db, keys, a.now).Create(context.Background(),
		partners.NewPartner{Name: "browser", ClientLogin: true, Origins: origins})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID, secret
}

// partnerLoginJSON is the answer of both partner logins.
type partnerLoginJSON struct {
	Registered *bool  `json:"registered"`
	Created    *bool  `json:"created"`
	AuthToken  string `json:"auth_token"`
	LoginCode  string `json:"login_code"`
	User       apitest.User
}

func TestPartnerLoginAnswersCreated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		a := newTestApp(t, withEnv(b.env(t)...))
		const origin = "https://shop.example.com"
		id, secret := a.newClientPartner(t, origin)
		server := func(ext string) partnerLoginJSON {
			t.Helper()
			rec := a.do(t, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": ext}, apitest.Bearer(secret)...)
			apitest.WantStatus(t, rec, http.StatusOK)
			var out partnerLoginJSON
			apitest.DecodeJSON(t, rec, &out)
			return out
		}
		client := func(ext string) partnerLoginJSON {
			t.Helper()
			rec := a.do(t, http.MethodPost, "/v1/js/partners/"+id+"/users/login", map[string]any{"external_id": ext}, "Origin", origin)
			apitest.WantStatus(t, rec, http.StatusOK)
			var out partnerLoginJSON
			apitest.DecodeJSON(t, rec, &out)
			return out
		}
		for _, c := range []struct {
			name  string
			login func(string) partnerLoginJSON
		}{{"server", server}, {"client", client}} {
			ext := c.name + "-" + randomHex(t, 4)
			first, again := c.login(ext), c.login(ext)
			if first.Created == nil || again.Created == nil {
				t.Fatalf("%s: the answer has no created field: %+v / %+v", c.name, first, again)
			}
			if !*first.Created || !*first.Registered || first.AuthToken == "" {
				t.Errorf("%s: first login: created %v registered %v, want both true", c.name, *first.Created, *first.Registered)
			}
			if *again.Created || *again.Registered || again.User.ID != first.User.ID {
				t.Errorf("%s: second login: created %v registered %v user %s (first %s), want false, false, the same user",
					c.name, *again.Created, *again.Registered, again.User.ID, first.User.ID)
			}
		}
	})
}

// rawHTTPResponse is an HTTP/1.1 answer as read off the connection.
type rawHTTPResponse struct {
	status int
	header http.Header
	body   []byte // everything after the header block, as sent (chunked stays chunked)
}

// rawHTTP writes req (a whole HTTP/1.1 request without the final blank
// line; "Host" and "Connection: close" are added) to addr and reads the
// answer until the server closes the connection.
func rawHTTP(t *testing.T, addr, req string) rawHTTPResponse {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, req+"Host: "+addr+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", rawFirstLine(req), err)
	}
	head, body, ok := bytes.Cut(all, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("answer to %q has no header block: %q", rawFirstLine(req), all)
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(head, "\r\n\r\n"...))))
	line, err := tp.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if err != nil {
		t.Fatalf("status line %q: %v", line, err)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("answer to %q: headers: %v", rawFirstLine(req), err)
	}
	return rawHTTPResponse{status: status, header: http.Header(h), body: body}
}

func rawFirstLine(s string) string { l, _, _ := strings.Cut(s, "\r\n"); return l }

// errorCode returns the code of a JSON error body in the contract's shape,
// or "" when the body is not one.
func (r rawHTTPResponse) errorCode() string {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") ||
		json.Unmarshal(r.body, &e) != nil || e.Error.Message == "" {
		return ""
	}
	return e.Error.Code
}

// httpFixture is a test app with one of each kind of caller: a user, a partner
// with client-side login from origin and one of its users.
type httpFixture struct {
	*testApp
	userToken     string
	partnerID     string
	partnerSecret string
	externalID    string
	origin        string
}

func newHTTPFixture(t *testing.T, opts ...testOption) *httpFixture {
	t.Helper()
	f := &httpFixture{testApp: newTestApp(t, opts...), origin: "https://shop.example.com", externalID: "ext-42"}
	f.userToken = f.Signup(t, apitest.UniqueEmail(t)).AuthToken
	f.partnerID, f.partnerSecret = f.newClientPartner(t, f.origin)
	apitest.WantStatus(t, f.do(t, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": f.externalID}, apitest.Bearer(f.partnerSecret)...), http.StatusOK)
	return f
}

// samplePath fills a route's parameters with values that exist in f, and
// adds the query a route needs to answer 200.
func (f *httpFixture) samplePath(route string) string {
	parts := strings.Split(route, "/")
	for i, p := range parts {
		if p == "" || (p[0] != ':' && p[0] != '*') {
			continue
		}
		switch p[1:] {
		case "external_id":
			parts[i] = f.externalID
		case "partner_id":
			parts[i] = f.partnerID
		default:
			parts[i] = "x"
		}
	}
	path := strings.Join(parts, "/")
	if path == "/v1/auth/wallet/challenge" {
		path += "?address=0x" + strings.Repeat("ab", 20)
	}
	return path
}

// credentials are the Authorization header for a route: the partner's
// secret under /v1/partner/, else the user's token.
func (f *httpFixture) credentials(path string) string {
	if strings.HasPrefix(path, "/v1/partner/") {
		return "Bearer " + f.partnerSecret
	}
	return "Bearer " + f.userToken
}

// Every GET route answers HEAD with the GET's status and headers and no
// body, through the real server and its whole middleware chain.
func TestHeadOnEveryGetRoute(t *testing.T) {
	f := newHTTPFixture(t)
	srv := httptest.NewServer(f.handler)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	n := 0
	for _, r := range f.router.Routes() {
		if r.Method != http.MethodGet {
			continue
		}
		n++
		path := f.samplePath(r.Path)
		t.Run(r.Path, func(t *testing.T) {
			auth := "Authorization: " + f.credentials(path) + "\r\n"
			get := rawHTTP(t, addr, "GET "+path+" HTTP/1.1\r\n"+auth)
			head := rawHTTP(t, addr, "HEAD "+path+" HTTP/1.1\r\n"+auth)
			if get.status < 200 || get.status > 299 {
				t.Fatalf("GET %s = %d %s: want 2xx (give the route a sample in samplePath/credentials)", path, get.status, get.body)
			}
			if head.status != get.status {
				t.Fatalf("HEAD %s = %d %s, GET = %d", path, head.status, head.body, get.status)
			}
			if len(head.body) != 0 {
				t.Errorf("HEAD %s sent a body: %q", path, head.body)
			}
			keys := []string{"Content-Type", "Cache-Control"}
			if r.Path != "/metrics" { // its body changes with every request
				keys = append(keys, "Content-Length")
			}
			for _, k := range keys {
				if g, h := get.header.Get(k), head.header.Get(k); g != h {
					t.Errorf("HEAD %s: %s = %q, GET's = %q", path, k, h, g)
				}
			}
			if head.header.Get(api.RequestIDHeader) == "" {
				t.Errorf("HEAD %s: no %s", path, api.RequestIDHeader)
			}
		})
	}
	if n < 5 {
		t.Fatalf("only %d GET routes: the walk did not see the router", n)
	}

	// HEAD goes through the GET's chain: authentication still decides.
	noAuth := rawHTTP(t, addr, "HEAD /v1/users/me HTTP/1.1\r\n")
	if noAuth.status != http.StatusUnauthorized || len(noAuth.body) != 0 {
		t.Errorf("HEAD /v1/users/me without a token = %d %q, want 401 without a body", noAuth.status, noAuth.body)
	}
	// A path with no GET: as the GET would be, 404 or 405, bodiless.
	if r := rawHTTP(t, addr, "HEAD /nope HTTP/1.1\r\n"); r.status != http.StatusNotFound || len(r.body) != 0 {
		t.Errorf("HEAD /nope = %d %q, want 404 without a body", r.status, r.body)
	}
	if r := rawHTTP(t, addr, "HEAD /v1/auth/email/login HTTP/1.1\r\n"); r.status != http.StatusMethodNotAllowed || len(r.body) != 0 {
		t.Errorf("HEAD on a POST route = %d %q, want 405 without a body", r.status, r.body)
	}
	// The handlers and the access log see the request's own method.
	if rec := f.do(t, http.MethodHead, "/healthz", nil); rec.Code != http.StatusOK {
		t.Errorf("HEAD /healthz through the handler = %d", rec.Code)
	}
	rec := f.do(t, http.MethodDelete, "/healthz", nil)
	apitest.WantError(t, rec, http.StatusMethodNotAllowed, "method_not_allowed")
	if got := rec.Header().Get("Allow"); got != "GET, HEAD" {
		t.Errorf("405 Allow = %q, want \"GET, HEAD\"", got)
	}
}

// A CORS preflight from an origin that is not allowed gets 403
// origin_not_allowed in the error shape with no Access-Control-* header
// (before: 405 from the routing); allowed origins keep their 204.
func TestCORSPreflightFromDisallowedOrigin(t *testing.T) {
	const allowed, evil = "https://app.example.com", "https://evil.example.com"
	f := newHTTPFixture(t, withEnv("CORS_ORIGINS", allowed))
	preflight := func(path, origin string) *httptest.ResponseRecorder {
		return f.do(t, http.MethodOptions, path, nil, "Origin", origin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")
	}
	noCORS := func(rec *httptest.ResponseRecorder, what string) {
		t.Helper()
		for k := range rec.Header() {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: carries %s: %q", what, k, rec.Header().Get(k))
			}
		}
	}
	for _, path := range []string{"/v1/auth/email/login", "/v1/users/me", "/v1/partner/users/login", "/healthz", "/nope"} {
		rec := preflight(path, evil)
		apitest.WantError(t, rec, http.StatusForbidden, "origin_not_allowed")
		noCORS(rec, "disallowed preflight "+path)
		rec = preflight(path, allowed)
		apitest.WantStatus(t, rec, http.StatusNoContent)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != allowed {
			t.Errorf("allowed preflight %s: Access-Control-Allow-Origin = %q", path, got)
		}
	}
	// An OPTIONS that is not a preflight is routed as before.
	apitest.WantError(t, f.do(t, http.MethodOptions, "/v1/auth/email/login", nil, "Origin", evil), http.StatusMethodNotAllowed, "method_not_allowed")

	// Client-side login: the partner's origins, not WALLETAUTH_CORS_ORIGINS.
	js := "/v1/js/partners/" + f.partnerID + "/users/login"
	rec := preflight(js, f.origin)
	apitest.WantStatus(t, rec, http.StatusNoContent)
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != f.origin {
		t.Errorf("partner preflight: Access-Control-Allow-Origin = %q, want %q", got, f.origin)
	}
	for _, o := range []string{evil, allowed} {
		rec := preflight(js, o)
		apitest.WantError(t, rec, http.StatusForbidden, "origin_not_allowed")
		noCORS(rec, "partner preflight from "+o)
	}
	rec = f.do(t, http.MethodPost, js, map[string]any{"external_id": "browser-1"}, "Origin", f.origin)
	apitest.WantStatus(t, rec, http.StatusOK)
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != f.origin {
		t.Errorf("client login: Access-Control-Allow-Origin = %q, want %q", got, f.origin)
	}

	// Without WALLETAUTH_CORS_ORIGINS nobody is allowed, cleanly.
	b := newTestApp(t)
	rec = b.do(t, http.MethodOptions, "/v1/auth/email/login", nil, "Origin", allowed, "Access-Control-Request-Method", "POST")
	apitest.WantError(t, rec, http.StatusForbidden, "origin_not_allowed")
	noCORS(rec, "preflight without CORS_ORIGINS")
}

// Every answer that carries a token, a login code or a secret is
// Cache-Control: no-store: each login endpoint's success, and every
// /v1/ route's answer whatever it is.
func TestCredentialAnswersAreNoStore(t *testing.T) {
	f := newHTTPFixture(t)
	noStore := func(t *testing.T, rec *httptest.ResponseRecorder, what string) {
		t.Helper()
		if got := rec.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control = %q, want no-store (status %d)", what, got, rec.Code)
		}
	}
	carries := func(t *testing.T, rec *httptest.ResponseRecorder, status int, field, what string) {
		t.Helper()
		apitest.WantStatus(t, rec, status)
		var m map[string]any
		apitest.DecodeJSON(t, rec, &m)
		if v, _ := m[field].(string); v == "" && m[field] != true {
			t.Fatalf("%s: no %s in %s", what, field, rec.Body)
		}
		noStore(t, rec, what)
	}

	email := apitest.UniqueEmail(t)
	carries(t, f.do(t, http.MethodPost, "/v1/auth/email/signup", map[string]string{"email": email, "password": apitest.Password}),
		http.StatusCreated, "auth_token", "email signup")
	carries(t, f.do(t, http.MethodPost, "/v1/auth/email/login", map[string]string{"email": email, "password": apitest.Password}),
		http.StatusOK, "auth_token", "email login")

	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	rec := f.do(t, http.MethodGet, "/v1/auth/wallet/challenge?address="+crypto.PubkeyToAddress(key.PublicKey).Hex(), nil)
	apitest.WantStatus(t, rec, http.StatusOK)
	noStore(t, rec, "wallet challenge")
	var ch struct{ Message string }
	apitest.DecodeJSON(t, rec, &ch)
	sig, err := crypto.Sign(wallet.HashEIP191([]byte(ch.Message)).Bytes(), key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	carries(t, f.do(t, http.MethodPost, "/v1/auth/wallet/login", map[string]string{"message": ch.Message, "signature": "0x" + hex.EncodeToString(sig)}),
		http.StatusOK, "auth_token", "wallet login")

	rec = f.do(t, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": "no-store"}, apitest.Bearer(f.partnerSecret)...)
	carries(t, rec, http.StatusOK, "login_code", "partner login")
	var pl partnerLoginJSON
	apitest.DecodeJSON(t, rec, &pl)
	carries(t, f.do(t, http.MethodPost, "/v1/js/partners/"+f.partnerID+"/users/login", map[string]any{"external_id": "no-store-js"}, "Origin", f.origin),
		http.StatusOK, "login_code", "client-side partner login")
	carries(t, f.do(t, http.MethodPost, "/v1/auth/code", map[string]string{"login_code": pl.LoginCode}),
		http.StatusOK, "auth_token", "login code exchange")
	carries(t, f.do(t, http.MethodPost, "/v1/partner/tokens/verify", map[string]string{"token": pl.AuthToken}, apitest.Bearer(f.partnerSecret)...),
		http.StatusOK, "active", "token verification")

	// Whatever a /v1/ route answers (errors included) is no-store; the
	// operational endpoints are not marked; the published key set and
	// discovery document are public and cacheable; the SDK, the OpenAPI
	// document and the demo are revalidated by ETag.
	for _, r := range f.router.Routes() {
		rec := f.do(t, r.Method, f.samplePath(r.Path), "{}")
		switch got := rec.Header().Get("Cache-Control"); {
		case strings.HasPrefix(r.Path, "/v1/"):
			noStore(t, rec, r.Method+" "+r.Path)
		case r.Path == "/sdk/walletauth.js" || r.Path == "/openapi.json" || strings.HasPrefix(r.Path, "/demo"):
			if got != "no-cache" { // revalidated with their ETag
				t.Errorf("%s %s: Cache-Control = %q, want no-cache", r.Method, r.Path, got)
			}
		case strings.HasPrefix(r.Path, "/.well-known/"):
			if !strings.HasPrefix(got, "public, max-age=") {
				t.Errorf("%s %s: Cache-Control = %q, want public, max-age=…", r.Method, r.Path, got)
			}
		case got != "":
			t.Errorf("%s %s: Cache-Control = %q, want none", r.Method, r.Path, got)
		}
	}
}

// Server-level refusals through the real server (serve's http.Server):
// headers over api.MaxHeaderBytes get 431 headers_too_large in the error
// shape; unknown paths and methods the error shape too. What net/http
// refuses before any handler (headers over api.ServerMaxHeaderBytes, a bad
// percent escape in the path) keeps its plain-text answer: there is no
// hook for it (docs/errors.md).
func TestServerLevelErrors(t *testing.T) {
	s := startServer(t)
	big := func(n int) string { return "X-Big: " + strings.Repeat("a", n) + "\r\n" }

	if r := rawHTTP(t, s.addr, "GET /healthz HTTP/1.1\r\n"+big(api.MaxHeaderBytes-1024)); r.status != http.StatusOK {
		t.Errorf("headers just under the limit: %d %s, want 200", r.status, r.body)
	}
	for _, n := range []int{api.MaxHeaderBytes + 1, api.ServerMaxHeaderBytes - 8<<10} {
		r := rawHTTP(t, s.addr, "GET /healthz HTTP/1.1\r\n"+big(n))
		if r.status != http.StatusRequestHeaderFieldsTooLarge || r.errorCode() != "headers_too_large" {
			t.Errorf("a %d-byte header: %d %q %s, want 431 headers_too_large in the error shape", n, r.status, r.header.Get("Content-Type"), r.body)
		}
		if r.header.Get(api.RequestIDHeader) == "" {
			t.Errorf("a %d-byte header: the 431 has no %s", n, api.RequestIDHeader)
		}
	}
	// Past what the server reads: net/http's own 431.
	if r := rawHTTP(t, s.addr, "GET /healthz HTTP/1.1\r\n"+big(api.ServerMaxHeaderBytes+8<<10)); r.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a header over the server's limit: %d, want 431", r.status)
	}
	// A bad escape never reaches a handler: net/http's 400.
	if r := rawHTTP(t, s.addr, "GET /v1/partner/users/%zz HTTP/1.1\r\n"); r.status != http.StatusBadRequest {
		t.Errorf("GET /v1/partner/users/%%zz: %d %s, want 400", r.status, r.body)
	}
	if r := rawHTTP(t, s.addr, "GET /nope HTTP/1.1\r\n"); r.status != http.StatusNotFound || r.errorCode() != "not_found" {
		t.Errorf("GET /nope: %d %s, want 404 not_found in the error shape", r.status, r.body)
	}
	if r := rawHTTP(t, s.addr, "DELETE /healthz HTTP/1.1\r\n"); r.status != http.StatusMethodNotAllowed || r.errorCode() != "method_not_allowed" {
		t.Errorf("DELETE /healthz: %d %s, want 405 method_not_allowed in the error shape", r.status, r.body)
	}
}
