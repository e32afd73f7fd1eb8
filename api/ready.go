package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Check is one backing service /readyz asks: Ping answers whether it
// answers, and What names it in the 503's message.
type Check struct {
	What string // "the database", "the shared store"
	Ping func(ctx context.Context) error
}

// readyTimeout bounds the checks of one /readyz request.
const readyTimeout = 2 * time.Second

// Ready is GET /readyz: 200 {"status":"ready"} when every check answers
// within 2 s, else 503 unavailable naming the first that did not (load
// balancers take the instance out meanwhile; /healthz stays 200).
func Ready(checks ...Check) gin.HandlerFunc {
	return Handle(func(c *gin.Context) error {
		ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
		defer cancel()
		for _, ch := range checks {
			if err := ch.Ping(ctx); err != nil {
				return ErrUnavailable.WithMessage("%s does not answer", ch.What).Wrap(err)
			}
		}
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
		return nil
	})
}
