package activity

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/users"
)

// MeRoutes registers GET /activity on me, a group already behind the auth
// middleware (/v1/users/me).
func (l *Log) MeRoutes(me *gin.RouterGroup) {
	me.GET("/activity", api.Handle(func(c *gin.Context) error {
		id, err := users.CurrentUserID(c)
		if err != nil {
			return err
		}
		return l.serve(c, id)
	}))
}

// PartnerUsers finds the user of a partner request's :external_id path
// parameter, among the requesting partner's users only (partners.Service
// does): users.ErrNotFound for an unknown ID or another partner's user.
type PartnerUsers interface {
	PathUserID(c *gin.Context) (string, error)
}

// PartnerRoutes returns the registrar of GET /users/:external_id/activity
// on the authenticated /partner group (partners.Service.Routes' extra).
func (l *Log) PartnerRoutes(pu PartnerUsers) func(*gin.RouterGroup) {
	return func(pg *gin.RouterGroup) {
		pg.GET("/users/:external_id/activity", api.Handle(func(c *gin.Context) error {
			id, err := pu.PathUserID(c)
			if err != nil {
				return err
			}
			return l.serve(c, id)
		}))
	}
}

func (l *Log) serve(c *gin.Context, userID string) error {
	limit := DefaultLimit
	s, ok, err := api.GetQuery(c, "limit", api.ErrInvalidParam)
	if err != nil {
		return err
	}
	if ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return api.ErrInvalidParam.WithMessage("limit must be an integer from 1 to %d", MaxLimit)
		}
		limit = n
	}
	cursor, err := api.Query(c, "cursor", api.ErrInvalidCursor)
	if err != nil {
		return err
	}
	p, err := l.List(c.Request.Context(), userID, limit, cursor)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, p)
	return nil
}
