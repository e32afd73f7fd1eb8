package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/activity"
	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/tokens"
	"github.com/walletauth/walletauth/users"
)

const currentKey = "walletauth.session"

// current is the session of the request's credential (an auth token or
// an access token).
type current struct {
	hash [32]byte
	id   string
}

// RequireUser is the middleware of authenticated routes: 401 unauthorized
// for a missing, malformed, unknown, expired or revoked token; otherwise the
// user's ID is put in the request context (users.UserID). It takes an auth
// token or an access token (a JWT: three dot-separated parts), whose
// session must be live too.
func (s *Sessions) RequireUser() gin.HandlerFunc {
	return func(c *gin.Context) {
		tok, ok := BearerToken(c.GetHeader("Authorization"))
		if !ok {
			api.Abort(c, api.ErrUnauthorized)
			return
		}
		sess, _, err := s.Authenticate(c.Request.Context(), tok)
		if err != nil {
			api.Abort(c, err)
			return
		}
		cur := current{id: sess.ID()}
		copy(cur.hash[:], sess.TokenHash)
		c.Set(currentKey, cur)
		c.Request = c.Request.WithContext(users.WithUserID(c.Request.Context(), sess.UserID))
		c.Next()
	}
}

// currentSession is the session RequireUser found.
func currentSession(c *gin.Context) (current, error) {
	v, ok := c.Get(currentKey)
	cur, ok2 := v.(current)
	if !ok || !ok2 {
		return current{}, api.ErrUnauthorized
	}
	return cur, nil
}

// SessionRoutes registers logout and logout-all on authed (a group behind
// RequireUser).
func (s *Sessions) SessionRoutes(authed *gin.RouterGroup) {
	authed.POST("/logout", api.Handle(s.logout))
	authed.POST("/logout-all", api.Handle(s.logoutAll))
}

// logout ends the request's session: with an access token, the session
// it belongs to.
func (s *Sessions) logout(c *gin.Context) error {
	cur, err := currentSession(c)
	if err != nil {
		return err
	}
	uid, err := users.CurrentUserID(c)
	if err != nil {
		return err
	}
	ev := OriginOf(c, "").event(uid, activity.Logout)
	if err := s.revokeHash(c.Request.Context(), cur.hash, &ev); err != nil {
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
	ev := OriginOf(c, "").event(id, activity.LogoutAll)
	if err := s.revokeAll(c.Request.Context(), id, &ev); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// TokenType is the token_type of every answer with an access token.
const TokenType = "Bearer"

// LoginTokens are the credentials of every login answer.
type LoginTokens struct {
	AuthToken   string `json:"auth_token"`
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// LoginResponse is what every successful login answers.
type LoginResponse struct {
	LoginTokens
	User    users.View `json:"user"`
	Created bool       `json:"created"`
}

// errNoAccessTokens is a wiring bug: UseAccessTokens was not called.
var errNoAccessTokens = errors.New("auth: access tokens are not configured (Sessions.UseAccessTokens)")

// NewLoginTokens returns the credentials of a login answer: authToken, the
// token of the session just issued (Issue, IssueForWallet, TxIssue) for u
// by method (Method…), and a fresh access token of that session. A login
// answer that is not written by WriteLogin (one with more fields) embeds
// these.
func (s *Sessions) NewLoginTokens(authToken, method string, u *users.User) (LoginTokens, error) {
	if s.access == nil {
		return LoginTokens{}, errNoAccessTokens
	}
	var notAfter *time.Time
	if s.ttl > 0 {
		// The session was created a moment ago with this lifetime.
		exp := s.now().Add(s.ttl)
		notAfter = &exp
	}
	at, expiresIn, err := s.access.Mint(subject(u, SessionID(HashToken(authToken)), method, notAfter))
	if err != nil {
		return LoginTokens{}, fmt.Errorf("auth: access token: %w", err)
	}
	return LoginTokens{AuthToken: authToken, AccessToken: at, TokenType: TokenType, ExpiresIn: expiresIn}, nil
}

// subject is who an access token of session sid of u is for.
func subject(u *users.User, sid, method string, notAfter *time.Time) tokens.Subject {
	sub := tokens.Subject{UserID: u.ID, SessionID: sid, Method: method, Email: u.Email, EmailVerified: u.EmailVerified, NotAfter: notAfter}
	for _, w := range u.Wallets {
		if w.IsPrimary {
			sub.Wallet = w.Hex()
		}
	}
	return sub
}

// WriteLogin answers a successful login: the one builder of login
// answers. token is the auth token of the session just issued for u by
// method (Method…); the answer is LoginResponse with a fresh access token,
// status 200 (201 for a sign-up), Cache-Control: no-store. The user's view
// JSON is made once for a cached record (users.User.ViewJSON) instead of
// encoded on every login.
func (s *Sessions) WriteLogin(c *gin.Context, status int, method, token string, u *users.User, created bool) error {
	lt, err := s.NewLoginTokens(token, method, u)
	if err != nil {
		return err
	}
	c.Header("Cache-Control", "no-store")
	if !plainToken(token) || !plainJWT(lt.AccessToken) {
		c.JSON(status, LoginResponse{LoginTokens: lt, User: u.View(), Created: created})
		return nil
	}
	view, err := u.ViewJSON()
	if err != nil {
		return fmt.Errorf("auth: encode user: %w", err)
	}
	b := make([]byte, 0, 128+len(token)+len(lt.AccessToken)+len(view))
	b = append(b, `{"auth_token":"`...)
	b = append(b, token...)
	b = append(b, `","access_token":"`...)
	b = append(b, lt.AccessToken...)
	b = append(b, `","token_type":"Bearer","expires_in":`...)
	b = strconv.AppendInt(b, lt.ExpiresIn, 10)
	b = append(b, `,"user":`...)
	b = append(b, view...)
	if created {
		b = append(b, `,"created":true}`...)
	} else {
		b = append(b, `,"created":false}`...)
	}
	c.Data(status, "application/json; charset=utf-8", b)
	return nil
}

// plainJWT reports whether a compact JWS is written in JSON as it is
// (base64url and dots).
func plainJWT(t string) bool {
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
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
