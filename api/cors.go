package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/errs"
)

// ErrOriginNotAllowed answers a CORS preflight from an origin that is not
// allowed (WALLETAUTH_CORS_ORIGINS, or a partner's client-login origins).
// The answer carries no Access-Control-* header, so the browser refuses the
// cross-origin request; the code tells the page's developer why, in the
// network panel, where a bare 405 or 404 would mislead.
var ErrOriginNotAllowed = errs.New("origin_not_allowed", "this origin is not allowed to call the API from a browser")

// isPreflight reports whether the request is a CORS preflight.
func isPreflight(c *gin.Context) bool {
	return c.Request.Method == http.MethodOptions && c.GetHeader("Origin") != "" &&
		c.GetHeader("Access-Control-Request-Method") != ""
}
