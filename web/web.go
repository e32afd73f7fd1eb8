// Package web serves the browser SDK (GET /sdk/walletauth.js), the OpenAPI
// document's JSON (GET /openapi.json) and, when enabled, the demo sign-in
// page (GET /demo): static files, each with a strong ETag so a browser
// revalidates with If-None-Match and gets 304 when nothing changed.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

//go:embed demo
var demoFiles embed.FS

// demoCSP lets the demo page run only its own script and styles and talk
// only to this origin; wallet icons from EIP-6963 are data: URLs.
const demoCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one file served as it is.
type asset struct {
	body        []byte
	contentType string
	etag        string
	headers     map[string]string
}

func newAsset(body []byte, contentType string, headers map[string]string) *asset {
	sum := sha256.Sum256(body)
	return &asset{body: body, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, headers: headers}
}

// Site holds the files; build it with New.
type Site struct {
	sdk     *asset
	openapi *asset
	demo    map[string]*asset // path → file; nil when the demo page is off
}

// Options says what the site serves.
type Options struct {
	SDK      []byte // walletauth.js
	OpenAPI  []byte // the OpenAPI document as JSON
	DemoPage bool   // serve /demo (WALLETAUTH_DEMO_PAGE)
}

// New builds the site. It fails only if an embedded file is missing.
func New(opt Options) (*Site, error) {
	s := &Site{
		sdk:     newAsset(opt.SDK, "text/javascript; charset=utf-8", nil),
		openapi: newAsset(opt.OpenAPI, "application/json; charset=utf-8", nil),
	}
	if !opt.DemoPage {
		return s, nil
	}
	s.demo = map[string]*asset{}
	for path, f := range map[string]struct{ name, ctype string }{
		"/demo":          {"demo/index.html", "text/html; charset=utf-8"},
		"/demo/demo.js":  {"demo/demo.js", "text/javascript; charset=utf-8"},
		"/demo/demo.css": {"demo/demo.css", "text/css; charset=utf-8"},
	} {
		b, err := demoFiles.ReadFile(f.name)
		if err != nil {
			return nil, fmt.Errorf("web: demo page: %w", err)
		}
		s.demo[path] = newAsset(b, f.ctype, map[string]string{
			"Content-Security-Policy": demoCSP,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
		})
	}
	return s, nil
}

// Routes registers the site's paths on r.
func (s *Site) Routes(r gin.IRoutes) {
	r.GET("/sdk/walletauth.js", s.sdk.serve)
	r.GET("/openapi.json", s.openapi.serve)
	for _, path := range []string{"/demo", "/demo/demo.js", "/demo/demo.css"} {
		if a := s.demo[path]; a != nil {
			r.GET(path, a.serve)
		}
	}
}

func (a *asset) serve(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("ETag", a.etag)
	// Revalidate every time: a new release must reach pages at once, and the
	// ETag makes an unchanged file a 304 without its body.
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	for k, v := range a.headers {
		h.Set(k, v)
	}
	if etagMatches(c.GetHeader("If-None-Match"), a.etag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, a.contentType, a.body)
}

// etagMatches reports whether an If-None-Match header names etag (RFC 9110
// §13.1.2: weak comparison, a list, or "*").
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
