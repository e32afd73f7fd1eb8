package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestPathParam: the parameter's segment as sent, decoded once, whatever
// the engine's raw-path settings; Gin's value for a catch-all.
func TestPathParam(t *testing.T) {
	gin.SetMode(gin.TestMode)
	for _, raw := range []bool{true, false} {
		r := gin.New()
		r.UseRawPath = raw
		var got string
		r.GET("/u/:id/points", func(c *gin.Context) { got = PathParam(c, "id") })
		r.GET("/files/*rest", func(c *gin.Context) { got = PathParam(c, "rest") })
		for path, want := range map[string]string{
			"/u/a+b/points":           "a+b",
			"/u/a%20b/points":         "a b",
			"/u/a%25b/points":         "a%b",
			"/u/%C3%BCn%C3%AF/points": "ünï",
			"/files/x/y":              "/x/y",
		} {
			got = "(not called)"
			r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
			if got != want {
				t.Errorf("UseRawPath=%v %s: %q, want %q", raw, path, got, want)
			}
		}
		if !raw {
			continue
		}
		// Only a router on the raw path keeps %2F in its segment; "|" and
		// UTF-8 sent unescaped make EscapedPath rebuild the path.
		for path, want := range map[string]string{
			"/u/a+b%2Fc/points":  "a+b/c",
			"/u/a+b%2Fc|/points": "a+b/c|",
			"/u/ü+b%2Fc/points":  "ü+b/c",
			"/u/{x}%2F^/points":  "{x}/^",
		} {
			got = "(not called)"
			r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
			if got != want {
				t.Errorf("%s: %q, want %q", path, got, want)
			}
		}
	}
}
