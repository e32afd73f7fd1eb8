package auth

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/activity"
	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/errs"
	"github.com/walletauth/walletauth/tokens"
	"github.com/walletauth/walletauth/users"
)

// CheckAccess verifies an access token (signature, issuer, audience,
// expiry) and that its session is still live, and returns the session and
// the claims: api.ErrUnauthorized otherwise. The session is looked up by
// the token's sid in the session cache, which every revocation reaches
// (logout, logout-all, a deleted session or user) on every instance, so
// the hot path reads no database.
func (s *Sessions) CheckAccess(ctx context.Context, token string) (Session, *tokens.Claims, error) {
	if s.access == nil {
		return Session{}, nil, api.ErrUnauthorized
	}
	claims, err := s.access.Parse(token)
	if err != nil {
		return Session{}, nil, api.ErrUnauthorized
	}
	sess, err := s.byID(ctx, claims.SessionID)
	if err != nil {
		return Session{}, nil, err
	}
	if sess.UserID != claims.Subject {
		return Session{}, nil, api.ErrUnauthorized
	}
	return sess, claims, nil
}

// byID returns the live session whose id is id: api.ErrUnauthorized for an
// unknown or expired one.
func (s *Sessions) byID(ctx context.Context, id string) (Session, error) {
	if !validSessionID(id) {
		return Session{}, api.ErrUnauthorized
	}
	now := s.now()
	live := func(sess Session) bool { return sess.ExpiresAt == nil || now.Before(*sess.ExpiresAt) }
	key := sidKey(id)
	var version uint64
	if s.cache != nil {
		if sess, ok := s.cache.Get(key); ok {
			if !live(sess) {
				return Session{}, api.ErrUnauthorized
			}
			return sess, nil
		}
		version = s.cache.Version()
	}
	lo, hi := idRange(id)
	var sess Session
	err := s.db.WithContext(ctx).Where("token_hash BETWEEN ? AND ?", lo, hi).Take(&sess).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Session{}, api.ErrUnauthorized
	}
	if err != nil {
		return Session{}, fmt.Errorf("auth: check session: %w", err)
	}
	if !live(sess) {
		return Session{}, api.ErrUnauthorized
	}
	if s.cache != nil {
		s.cache.PutIf(key, sess, version)
	}
	return sess, nil
}

// idRange is the range of token hashes whose SessionID is id (a valid
// one): its 16 bytes followed by 16 zero bytes, then by 16 0xff bytes.
// Byte strings compare byte by byte on PostgreSQL (bytea) and SQLite
// (BLOB), so the primary key answers it.
func idRange(id string) (lo, hi []byte) {
	p, _ := hex.DecodeString(id)
	lo = append(append(make([]byte, 0, 32), p...), make([]byte, 16)...)
	hi = append(append(make([]byte, 0, 32), p...), bytes.Repeat([]byte{0xff}, 16)...)
	return lo, hi
}

// ErrSessionNotFound answers DELETE /v1/users/me/sessions/{id} for an
// unknown id or another user's session.
var ErrSessionNotFound = errs.New("session_not_found", "no such session")

// errAccessTokenNotAccepted answers POST /v1/auth/token given an access
// token: only the session's auth token renews it.
var errAccessTokenNotAccepted = api.ErrUnauthorized.WithMessage("an auth token is required: an access token cannot be exchanged for another")

// TokenRoutes registers POST /token on the /v1/auth group (not behind
// RequireUser: it takes an auth token only).
func (s *Sessions) TokenRoutes(g *gin.RouterGroup) {
	g.POST("/token", api.Handle(s.handleToken))
}

// handleToken mints a fresh access token for the session of an auth token.
func (s *Sessions) handleToken(c *gin.Context) error {
	tok, ok := BearerToken(c.GetHeader("Authorization"))
	if !ok {
		return api.ErrUnauthorized
	}
	if tokens.LooksLikeJWT(tok) {
		return errAccessTokenNotAccepted
	}
	if s.access == nil || s.users == nil {
		return errNoAccessTokens
	}
	ctx := c.Request.Context()
	sess, err := s.Check(ctx, tok)
	if err != nil {
		return err
	}
	u, err := s.users.Get(ctx, sess.UserID)
	if errors.Is(err, users.ErrNotFound) {
		return api.ErrUnauthorized
	}
	if err != nil {
		return err
	}
	var method string
	if sess.Method != nil {
		method = *sess.Method
	}
	at, expiresIn, err := s.access.Mint(subject(u, SessionID(HashToken(tok)), method, sess.ExpiresAt))
	if errors.Is(err, tokens.ErrSessionExpired) {
		return api.ErrUnauthorized
	}
	if err != nil {
		return fmt.Errorf("auth: access token: %w", err)
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"access_token": at, "token_type": TokenType, "expires_in": expiresIn})
	return nil
}

// MaxListedSessions bounds GET /v1/users/me/sessions: the newest ones.
const MaxListedSessions = 1000

// SessionView is one entry of GET /v1/users/me/sessions.
type SessionView struct {
	ID        string  `json:"id"`
	CreatedAt string  `json:"created_at"`
	ExpiresAt *string `json:"expires_at"`
	Method    *string `json:"method"`
	UserAgent *string `json:"user_agent"`
	Current   bool    `json:"current"`
}

// MeRoutes registers the session list on me (/v1/users/me, behind
// RequireUser).
func (s *Sessions) MeRoutes(me *gin.RouterGroup) {
	me.GET("/sessions", api.Handle(s.handleList))
	me.DELETE("/sessions/:id", api.Handle(s.handleDelete))
}

// List returns userID's live sessions, newest first (at most
// MaxListedSessions).
func (s *Sessions) List(ctx context.Context, userID string) ([]Session, error) {
	var out []Session
	err := s.db.WithContext(ctx).
		Where("user_id = ? AND (expires_at IS NULL OR expires_at > ?)", userID, s.now().UTC()).
		Order("created_at DESC, token_hash DESC").Limit(MaxListedSessions).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("auth: list sessions: %w", err)
	}
	return out, nil
}

// RevokeByID ends userID's session id and its access tokens:
// ErrSessionNotFound for an unknown id or another user's session.
func (s *Sessions) RevokeByID(ctx context.Context, userID, id string) error {
	return s.revokeByID(ctx, userID, id, nil)
}

// revokeByID is RevokeByID recording ev, when set, with the revocation.
func (s *Sessions) revokeByID(ctx context.Context, userID, id string, ev *activity.Event) error {
	if !validSessionID(id) {
		return ErrSessionNotFound
	}
	lo, hi := idRange(id)
	var sess Session
	err := s.db.WithContext(ctx).Select("token_hash").Where("token_hash BETWEEN ? AND ? AND user_id = ?", lo, hi, userID).Take(&sess).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrSessionNotFound
	}
	if err != nil {
		return fmt.Errorf("auth: find session: %w", err)
	}
	if len(sess.TokenHash) != 32 {
		return fmt.Errorf("auth: session %s has a malformed token hash", id)
	}
	return s.revokeHash(ctx, [32]byte(sess.TokenHash), ev)
}

func (s *Sessions) handleList(c *gin.Context) error {
	cur, err := currentSession(c)
	if err != nil {
		return err
	}
	id, err := users.CurrentUserID(c)
	if err != nil {
		return err
	}
	list, err := s.List(c.Request.Context(), id)
	if err != nil {
		return err
	}
	out := make([]SessionView, len(list))
	for i, sess := range list {
		v := SessionView{ID: sess.ID(), CreatedAt: sess.CreatedAt.UTC().Format(users.TimeFormat), Method: sess.Method, UserAgent: sess.UserAgent}
		v.Current = v.ID == cur.id
		if sess.ExpiresAt != nil {
			e := sess.ExpiresAt.UTC().Format(users.TimeFormat)
			v.ExpiresAt = &e
		}
		out[i] = v
	}
	c.JSON(http.StatusOK, gin.H{"sessions": out})
	return nil
}

func (s *Sessions) handleDelete(c *gin.Context) error {
	id, err := users.CurrentUserID(c)
	if err != nil {
		return err
	}
	sid, err := api.PathParam(c, "id", ErrSessionNotFound)
	if err != nil {
		return err
	}
	ev := OriginOf(c, "").event(id, activity.SessionRevoked)
	ev.Detail = map[string]any{"session_id": sid}
	if err := s.revokeByID(c.Request.Context(), id, sid, &ev); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// Authenticate checks a credential of either kind, an auth token or an
// access token (told apart by form), and returns its live session and when
// the credential expires (nil: never; an access token's exp): the check of
// RequireUser and of partner token verification. api.ErrUnauthorized for
// anything not live.
func (s *Sessions) Authenticate(ctx context.Context, token string) (Session, *time.Time, error) {
	if tokens.LooksLikeJWT(token) {
		sess, claims, err := s.CheckAccess(ctx, token)
		if err != nil {
			return Session{}, nil, err
		}
		exp := time.Unix(claims.ExpiresAt, 0).UTC()
		return sess, &exp, nil
	}
	sess, err := s.Check(ctx, token)
	if err != nil {
		return Session{}, nil, err
	}
	return sess, sess.ExpiresAt, nil
}

// ID is the session's public id.
func (sess Session) ID() string {
	if len(sess.TokenHash) != 32 {
		return ""
	}
	return SessionID([32]byte(sess.TokenHash))
}
