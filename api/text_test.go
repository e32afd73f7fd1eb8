package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
)

// PathParam and the query helpers refuse a value that is not text with the
// error the caller names, and return every other value decoded.
func TestParamsMustBeText(t *testing.T) {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.UseRawPath = true
	var (
		got string
		err error
	)
	r.GET("/u/:id", func(c *gin.Context) { got, err = PathParam(c, "id", ErrInvalidCursor) })
	r.GET("/q", func(c *gin.Context) { got, err = Query(c, "x", ErrInvalidCursor) })
	for _, tc := range []struct{ path, want string }{
		{"/u/%C3%84rger%20%F0%9F%98%80", "Ärger 😀"},
		{"/u/a%2Fb", "a/b"},
		{"/q?x=%C3%84rger+%F0%9F%98%80", "Ärger 😀"},
		{"/q", ""},
		{"/u/%00", "!"}, {"/u/a%00b", "!"}, {"/u/%FF", "!"}, {"/u/%C3%28", "!"}, {"/u/%ED%A0%80", "!"},
		{"/q?x=%00", "!"}, {"/q?x=%FF", "!"}, {"/q?x=a%C3%28", "!"}, {"/q?x=%E2%82", "!"},
	} {
		got, err = "(not called)", nil
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, tc.path, nil))
		if tc.want == "!" {
			if !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("%s: %q, %v; want invalid_cursor", tc.path, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
}

func TestDecodeCursor(t *testing.T) {
	for _, raw := range []string{"", "1.abc", "Ärger"} {
		if got, err := DecodeCursor(EncodeCursor([]byte(raw))); err != nil || string(got) != raw {
			t.Errorf("round trip %q: %q, %v", raw, got, err)
		}
	}
	for _, s := range []string{"%%%", "YQ==", EncodeCursor([]byte("1.a\x00")), EncodeCursor([]byte("1.\xff")), EncodeCursor([]byte("\xc3\x28"))} {
		if _, err := DecodeCursor(s); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("DecodeCursor(%q) = %v, want invalid_cursor", s, err)
		}
	}
}
