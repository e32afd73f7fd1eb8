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
	cases := []struct {
		path, want string
		rawOnly    bool // only a router on the raw path keeps %2F in its segment
	}{
		{path: "/u/a+b/points", want: "a+b"},
		{path: "/u/a%20b/points", want: "a b"},
		{path: "/u/a%25b/points", want: "a%b"},
		{path: "/u/%C3%BCn%C3%AF/points", want: "ünï"},
		{path: "/files/x/y", want: "/x/y"},
		{path: "/u/a+b%2Fc/points", want: "a+b/c", rawOnly: true},
		// "|", "{", "^" and UTF-8 sent unescaped make EscapedPath rebuild
		// the path from the decoded one.
		{path: "/u/a+b%2Fc|/points", want: "a+b/c|", rawOnly: true},
		{path: "/u/ü+b%2Fc/points", want: "ü+b/c", rawOnly: true},
		{path: "/u/{x}%2F^/points", want: "{x}/^", rawOnly: true},
	}
	for _, raw := range []bool{true, false} {
		r := gin.New()
		r.UseRawPath = raw
		var got string
		r.GET("/u/:id/points", func(c *gin.Context) { got, _ = PathParam(c, "id", ErrInvalidParam) })
		r.GET("/files/*rest", func(c *gin.Context) { got, _ = PathParam(c, "rest", ErrInvalidParam) })
		for _, tc := range cases {
			if tc.rawOnly && !raw {
				continue
			}
			got = "(not called)"
			r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, tc.path, nil))
			if got != tc.want {
				t.Errorf("UseRawPath=%v %s: %q, want %q", raw, tc.path, got, tc.want)
			}
		}
	}
}
