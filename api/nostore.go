package api

import "github.com/gin-gonic/gin"

// NoStore marks every response of the routes it guards Cache-Control:
// no-store, errors included. It guards all of /v1/: logins answer tokens,
// login codes and secrets, and the rest is one user's or one partner's
// data, which no shared or browser cache should keep either. The operational
// endpoints outside /v1/ (/healthz, /metrics, …) are not marked.
func NoStore() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Cache-Control", "no-store")
		c.Next()
	}
}
