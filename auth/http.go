package auth

import (
	"fmt"
	"net/http"
	"strings"

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

// writeLogin answers a successful login: the JSON of LoginResponse, byte
// for byte, with the user's view JSON made once for a cached record
// (users.User.ViewJSON) instead of encoded on every login.
func writeLogin(c *gin.Context, status int, token string, u *users.User, created bool) error {
	if !plainToken(token) {
		c.JSON(status, LoginResponse{AuthToken: token, User: u.View(), Created: created})
		return nil
	}
	view, err := u.ViewJSON()
	if err != nil {
		return fmt.Errorf("auth: encode user: %w", err)
	}
	b := make([]byte, 0, len(`{"auth_token":"","user":,"created":false}`)+len(token)+len(view))
	b = append(b, `{"auth_token":"`...)
	b = append(b, token...)
	b = append(b, `","user":`...)
	b = append(b, view...)
	if created {
		b = append(b, `,"created":true}`...)
	} else {
		b = append(b, `,"created":false}`...)
	}
	c.Data(status, "application/json; charset=utf-8", b)
	return nil
}

// plainToken reports whether token is written in JSON as it is: TokenPrefix
// and base64url, as newSession makes them.
func plainToken(token string) bool {
	if !strings.HasPrefix(token, TokenPrefix) {
		return false
	}
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
