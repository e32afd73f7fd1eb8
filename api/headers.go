package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/errs"
)

// Request header limits. net/http refuses a request whose header exceeds
// http.Server.MaxHeaderBytes itself, before any handler, with a plain-text
// 431 and no hook to change it. So the server reads up to
// ServerMaxHeaderBytes and LimitHeaders refuses past MaxHeaderBytes in the
// contract's error shape; only a header over ServerMaxHeaderBytes gets
// net/http's own plain-text answer.
const (
	MaxHeaderBytes       = 32 << 10  // the request line and headers the service accepts
	ServerMaxHeaderBytes = 256 << 10 // what http.Server reads before refusing by itself
)

// ErrHeadersTooLarge answers a request whose request line and headers
// exceed MaxHeaderBytes.
var ErrHeadersTooLarge = errs.New("headers_too_large", "the request headers exceed 32 KiB")

// LimitHeaders refuses a request whose request line and headers, counted
// as sent on HTTP/1.1, exceed MaxHeaderBytes.
func LimitHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		if headerSize(c.Request) > MaxHeaderBytes {
			Abort(c, ErrHeadersTooLarge)
			return
		}
		c.Next()
	}
}

// headerSize is the size of r's request line and header block on the wire
// ("Name: value\r\n" per value, Host included, the blank line).
func headerSize(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	n += len("Host: ") + len(r.Host) + 2
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n + 2
}
