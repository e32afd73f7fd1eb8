package web_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	jsclient "github.com/walletauth/walletauth/clients/js"
	"github.com/walletauth/walletauth/web"
)

func router(t *testing.T, demo bool) *gin.Engine {
	t.Helper()
	gin.SetMode(gin.TestMode)
	site, err := web.New(web.Options{SDK: jsclient.Source(), OpenAPI: []byte(`{"openapi":"3.1.0"}`), DemoPage: demo})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	site.Routes(r)
	return r
}

func get(r http.Handler, path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// The SDK is served byte for byte as clients/js/walletauth.js, as a
// JavaScript module, with an ETag that turns a revalidation into a 304.
func TestSDKServedWithETag(t *testing.T) {
	r := router(t, false)
	w := get(r, "/sdk/walletauth.js")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("Content-Type %q, want text/javascript", ct)
	}
	if !bytes.Equal(w.Body.Bytes(), jsclient.Source()) || !bytes.Contains(w.Body.Bytes(), []byte("export class WalletAuth ")) {
		t.Error("the body is not clients/js/walletauth.js")
	}
	etag := w.Header().Get("ETag")
	if !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("ETag %q, want a strong entity tag", etag)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		w := get(r, "/sdk/walletauth.js", "If-None-Match", inm)
		if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Errorf("If-None-Match %s: status %d with %d bytes, want 304 and no body", inm, w.Code, w.Body.Len())
		}
		if w.Header().Get("ETag") != etag {
			t.Errorf("If-None-Match %s: the 304 carries ETag %q", inm, w.Header().Get("ETag"))
		}
	}
	if w := get(r, "/sdk/walletauth.js", "If-None-Match", `"stale"`); w.Code != http.StatusOK || w.Body.Len() == 0 {
		t.Errorf("a stale If-None-Match: status %d, want 200 with the file", w.Code)
	}
	if w := get(r, "/openapi.json"); w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Errorf("/openapi.json: status %d Content-Type %q", w.Code, w.Header().Get("Content-Type"))
	}
}

// The demo page exists only when enabled, and carries a CSP that allows
// only its own scripts.
func TestDemoPage(t *testing.T) {
	if w := get(router(t, false), "/demo"); w.Code != http.StatusNotFound {
		t.Errorf("demo off: /demo status %d, want 404", w.Code)
	}
	r := router(t, true)
	w := get(r, "/demo")
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("/demo: status %d Content-Type %q", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	for _, want := range []string{"Sign in with Ethereum", "Sign out", `src="/demo/demo.js"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/demo lacks %q", want)
		}
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(body, "<script>") {
		t.Error("the demo page must not need inline script")
	}
	js := get(r, "/demo/demo.js")
	if js.Code != http.StatusOK || !strings.Contains(js.Body.String(), `from "/sdk/walletauth.js"`) {
		t.Errorf("/demo/demo.js: status %d, or it does not import the SDK", js.Code)
	}
	if css := get(r, "/demo/demo.css"); css.Code != http.StatusOK || !strings.HasPrefix(css.Header().Get("Content-Type"), "text/css") {
		t.Errorf("/demo/demo.css: status %d", css.Code)
	}
}
