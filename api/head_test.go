package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api"
)

// A HEAD is routed as the GET, and the handler (and every middleware after
// HeadMethod) sees the request's own method.
func TestHeadAsGet(t *testing.T) {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(api.HeadMethod())
	r.NoMethod(api.NoMethod)
	var seen string
	r.GET("/thing", func(c *gin.Context) {
		seen = c.Request.Method
		c.Header("X-Thing", "1")
		c.Status(http.StatusTeapot)
	})
	r.POST("/post", func(c *gin.Context) { c.Status(http.StatusOK) })
	h := api.HeadAsGet(r)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/thing", nil))
	if rec.Code != http.StatusTeapot || rec.Header().Get("X-Thing") != "1" || seen != http.MethodHead {
		t.Fatalf("HEAD /thing: %d, X-Thing %q, handler saw %q; want the GET's answer, seen as HEAD", rec.Code, rec.Header().Get("X-Thing"), seen)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/thing", nil))
	if seen != http.MethodGet {
		t.Fatalf("GET /thing: handler saw %q", seen)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/post", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
		t.Fatalf("HEAD /post: %d Allow %q, want 405 Allow POST", rec.Code, rec.Header().Get("Allow"))
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/thing", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("DELETE /thing: %d Allow %q, want 405 Allow \"GET, HEAD\"", rec.Code, rec.Header().Get("Allow"))
	}
}
