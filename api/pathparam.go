package api

import (
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/errs"
)

// PathParam returns the path parameter name as the client meant it: its
// segment of the path as sent, percent-escapes decoded once and "+" kept.
// A value that is not text (ValidText: "%00", "%FF", "%C3%28") is refused
// with bad, the parameter's own error (a feature's "invalid id" code, or
// ErrInvalidParam).
//
// Gin's own value differs when the router matches the raw path
// (Engine.UseRawPath, so that %2F stays inside a segment): it decodes with
// query rules, turning "+" into a space, so "a+b%2Fc" would name "a b/c".
// The segment is taken from the path exactly as sent (URL.RawPath, which
// the router matched), not from EscapedPath, which rebuilds it from the
// decoded path when the client left characters such as "|" or UTF-8
// unescaped, and so turns %2F back into "/". It falls back to Gin's value
// for a route whose segments do not line up with the path's (a catch-all
// parameter).
func PathParam(c *gin.Context, name string, bad *errs.Error) (string, error) {
	v := pathParam(c, name)
	if !ValidText(v) {
		return "", bad.WithMessage("path parameter %s holds %s", name, textProblem(v))
	}
	return v, nil
}

func pathParam(c *gin.Context, name string) string {
	sent := c.Request.URL.RawPath
	if sent == "" {
		sent = c.Request.URL.EscapedPath()
	}
	route := strings.Split(c.FullPath(), "/")
	path := strings.Split(sent, "/")
	if len(route) == len(path) {
		for i, seg := range route {
			if seg == ":"+name {
				if v, err := url.PathUnescape(path[i]); err == nil {
					return v
				}
				break
			}
		}
	}
	return c.Param(name)
}
