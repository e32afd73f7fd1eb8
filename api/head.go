package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// HEAD (contract v1.1: every GET endpoint answers HEAD too). Gin finds a
// route by method, so a HEAD on a GET route would be 405. HeadAsGet, around
// the router, routes a HEAD request as the GET of the same path: the GET's
// whole chain runs (authentication included), so the status and the headers
// are the GET's. HeadMethod, the router's first middleware, puts the method
// back to HEAD for the handlers, the access log and the metrics.
//
// The body is written as for the GET and net/http drops it, since the
// request it serves is a HEAD (it still counts a short body for
// Content-Length, as for the GET). A HEAD on a path without a GET route is
// what the GET would be: 404 not_found or 405 method_not_allowed, bodiless.

type headKey struct{}

// HeadAsGet routes HEAD requests to h as GET requests; other requests pass
// unchanged.
func HeadAsGet(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		g := r.WithContext(context.WithValue(r.Context(), headKey{}, true))
		g.Method = http.MethodGet
		h.ServeHTTP(w, g)
	})
}

// HeadMethod restores the method of a request HeadAsGet routed as a GET.
func HeadMethod() gin.HandlerFunc {
	return func(c *gin.Context) {
		if head, _ := c.Request.Context().Value(headKey{}).(bool); head {
			c.Request.Method = http.MethodHead
		}
		c.Next()
	}
}

// allowHead adds HEAD to a 405's Allow header (set by Gin from the
// registered routes) when it names GET: HeadAsGet answers HEAD there.
func allowHead(c *gin.Context) {
	allow := c.Writer.Header().Get("Allow")
	for _, m := range strings.Split(allow, ", ") {
		if m == http.MethodGet {
			c.Header("Allow", allow+", "+http.MethodHead)
			return
		}
	}
}
