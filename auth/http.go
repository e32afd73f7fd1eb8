package auth

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/users"
)

const tokenKey = "walletauth.token"

// RequireUser is the middleware of authenticated routes: 401 unauthorized
// for a missing, malformed, unknown, expired or revoked token; otherwise the
// user's ID is put in the request context (users.UserID).
func (s *Sessions) RequireUser() gin.HandlerFunc {
	return func(c *gin.Context) {
		tok, ok := BearerToken(c.GetHeader("Authorization"))
		if !ok {
			api.Abort(c, api.ErrUnauthorized)
			return
		}
		sess, err := s.Check(c.Request.Context(), tok)
		if err != nil {
			api.Abort(c, err)
			return
		}
		c.Set(tokenKey, tok)
		c.Request = c.Request.WithContext(users.WithUserID(c.Request.Context(), sess.UserID))
		c.Next()
	}
}

// SessionRoutes registers logout and logout-all on authed (a group behind
// RequireUser).
func (s *Sessions) SessionRoutes(authed *gin.RouterGroup) {
	authed.POST("/logout", api.Handle(s.logout))
	authed.POST("/logout-all", api.Handle(s.logoutAll))
}

func (s *Sessions) logout(c *gin.Context) error {
	if err := s.Revoke(c.Request.Context(), c.GetString(tokenKey)); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

func (s *Sessions) logoutAll(c *gin.Context) error {
	id, err := users.CurrentUserID(c)
	if err != nil {
		return err
	}
	if err := s.RevokeAll(c.Request.Context(), id); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// LoginResponse is what every successful login answers.
type LoginResponse struct {
	AuthToken string     `json:"auth_token"`
	User      users.View `json:"user"`
	Created   bool       `json:"created"`
}
