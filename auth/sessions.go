// Package auth issues and checks sessions (opaque auth tokens), and serves
// the login endpoints: email, wallet (EIP-4361), login codes, logout.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/activity"
	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/internal/every"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/tokens"
	"github.com/walletauth/walletauth/users"
)

// TokenPrefix starts every auth token, so leaked tokens are easy to spot
// (secret scanners) and never confused with partner secrets.
const TokenPrefix = "wat_"

// tokenBytes is the token's entropy: 256 bits from the OS CSPRNG.
const tokenBytes = 32

// Session is a row of sessions. Only the SHA-256 of the token is stored: a
// database leak gives no usable token (the token has 256 bits of entropy,
// so an unsalted fast hash is enough; a slow hash would only slow every
// request).
type Session struct {
	TokenHash []byte `gorm:"primaryKey"`
	UserID    string
	CreatedAt time.Time
	ExpiresAt *time.Time
	Method    *string // how it was opened (Method…); nil for sessions older than the column
	UserAgent *string
}

// Methods a session is opened by (its method, the amr claim of its access
// tokens).
const (
	MethodWallet        = "wallet"
	MethodEmail         = "email"
	MethodEmailCode     = "email_code"
	MethodPasswordReset = "password_reset"
	MethodPartner       = "partner"
	MethodLoginCode     = "login_code"
)

// Origin is how a session is opened: its method, the client's User-Agent
// and IP (either may be empty).
type Origin struct {
	Method    string
	UserAgent string
	IP        string
}

// OriginOf is the Origin of a login request by method.
func OriginOf(c *gin.Context, method string) Origin {
	return Origin{Method: method, UserAgent: c.Request.UserAgent(), IP: c.ClientIP()}
}

// event is the activity event of type typ by the client of o.
func (o Origin) event(userID, typ string) activity.Event {
	return activity.Event{UserID: userID, Type: typ, Method: o.Method, IP: o.IP, UserAgent: o.UserAgent}
}

// maxUserAgent bounds the stored User-Agent (bytes): activity.CleanText's bound.
const maxUserAgent = 512

// cleanUserAgent is what is stored of a User-Agent, the same as the
// activity log stores (activity.CleanText): valid UTF-8 without control
// characters, at most 512 bytes; nil when nothing is left.
func cleanUserAgent(ua string) *string { return activity.CleanText(ua) }

// SessionID is the public id of the session whose token hash is h: the hex
// of its first 16 bytes (the sid claim; the id of the session list). It
// reveals nothing usable (a prefix of a hash of 256 random bits) and cannot
// be guessed; an instance told that h was revoked knows the id too; and it
// needs no column or index of its own: a session is found by its id as
// the range of token hashes with that prefix (idRange), on the primary key.
func SessionID(h [32]byte) string { return hex.EncodeToString(h[:16]) }

// validSessionID reports whether id has SessionID's form.
func validSessionID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// sidKey is the session cache's key of a session looked up by its id (an
// access token's sid), beside the token-hash key of auth tokens.
func sidKey(id string) [32]byte { return sha256.Sum256([]byte("walletauth sid\x00" + id)) }

// Sessions issues, checks and revokes auth tokens.
type Sessions struct {
	db     *storage.DB
	now    func() time.Time
	ttl    time.Duration
	cache  SessionCache
	writer *sessionWriter
	access AccessTokens // nil until UseAccessTokens
	users  UserGetter
	log    *activity.Log // nil until UseActivity: no events recorded
}

// UseActivity records every login (login.succeeded), logout, logout-all
// and session revocation in l. Called once while wiring, before serving.
func (s *Sessions) UseActivity(l *activity.Log) { s.log = l }

// record writes e in tx when an activity log is in use.
func (s *Sessions) record(tx *gorm.DB, e activity.Event) error {
	if s.log == nil {
		return nil
	}
	return s.log.Record(tx, e)
}

// AccessTokens mints and parses access tokens (tokens.Issuer does).
type AccessTokens interface {
	Mint(s tokens.Subject) (token string, expiresIn int64, err error)
	Parse(token string) (*tokens.Claims, error)
}

// UserGetter reads a user (users.Store does): POST /v1/auth/token needs
// the claims of a session's user.
type UserGetter interface {
	Get(ctx context.Context, id string) (*users.User, error)
}

// UseAccessTokens makes every login answer carry an access token minted by
// a, accepts access tokens wherever an auth token is accepted, and serves
// POST /v1/auth/token. Called once while wiring, before serving.
func (s *Sessions) UseAccessTokens(a AccessTokens, us UserGetter) {
	s.access, s.users = a, us
}

// SessionCache keeps checked sessions off the database on the hot path; the
// implementation guarantees revocations reach every instance.
type SessionCache interface {
	Get(hash [32]byte) (Session, bool)
	// Version is read before a database read, and PutIf stores the result
	// only if nothing was invalidated in between (a revocation racing with
	// the read must win).
	Version() uint64
	PutIf(hash [32]byte, s Session, version uint64)
	// Forget drops one session everywhere (logout).
	Forget(ctx context.Context, hash [32]byte) error
	// ForgetUser drops every session of a user everywhere (logout-all, delete).
	ForgetUser(ctx context.Context, userID string) error
}

// NewSessions returns the session service. ttl 0 means tokens do not
// expire. cache may be nil (every check reads the database).
func NewSessions(db *storage.DB, now func() time.Time, ttl time.Duration, cache SessionCache) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{db: db, now: now, ttl: ttl, cache: cache, writer: newSessionWriter(db)}
}

// HashToken is the stored form of a token.
func HashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// Issue creates a session for userID and returns its token (shown once) and
// expiry (nil: none). The committed session is cached at once, so the
// client's first request with it needs no database read.
func (s *Sessions) Issue(ctx context.Context, userID string, o Origin) (string, *time.Time, error) {
	return s.issue(ctx, userID, nil, o)
}

// ErrNotOwner is IssueForWallet's answer when the user does not own the
// wallet (nothing was written).
var ErrNotOwner = errors.New("auth: the wallet is not the user's")

// IssueForWallet is Issue for a wallet sign-in: the session is written
// only if userID owns the 20-byte address wallet as of the INSERT's
// snapshot, checked by the database in the INSERT itself (no read before
// it). ErrNotOwner otherwise, also when the user was deleted meanwhile: the
// caller then looks the owner up in the database. An unlink committing
// while the INSERT runs is not seen by it (no lock is taken), as with any
// read-then-write; it is ordered before the unlink's answer at worst.
func (s *Sessions) IssueForWallet(ctx context.Context, userID string, wallet []byte, o Origin) (string, *time.Time, error) {
	if wallet == nil {
		return "", nil, ErrNotOwner
	}
	return s.issue(ctx, userID, wallet, o)
}

func (s *Sessions) issue(ctx context.Context, userID string, wallet []byte, o Origin) (string, *time.Time, error) {
	var version uint64
	if s.cache != nil {
		version = s.cache.Version()
	}
	token, sess, err := s.newSession(userID, o)
	if err != nil {
		return "", nil, err
	}
	// The login.succeeded event is written by the session writer with the
	// session (in the group-committed statement or its transaction).
	var event *activity.Row
	if s.log != nil {
		e := o.event(userID, activity.LoginSucceeded)
		e.At = sess.CreatedAt
		r, err := s.log.Prepare(e)
		if err != nil {
			return "", nil, fmt.Errorf("auth: %w", err)
		}
		event = &r
	}
	if err := s.writer.insert(ctx, sess, wallet, event); err != nil {
		return "", nil, err
	}
	exp := sess.ExpiresAt
	if s.cache != nil {
		// Skipped if anything was revoked meanwhile (a logout-all of this
		// user racing the login): the database then decides.
		s.putIf(sess, version)
	}
	return token, exp, nil
}

// putIf caches a committed session under its token hash and its id (for
// its access tokens), unless anything was invalidated since version.
func (s *Sessions) putIf(sess Session, version uint64) {
	s.cache.PutIf([32]byte(sess.TokenHash), sess, version)
	if s.access != nil {
		s.cache.PutIf(sidKey(sess.ID()), sess, version)
	}
}

// createTx writes a new session in tx.
func (s *Sessions) createTx(ctx context.Context, tx *gorm.DB, userID string, o Origin) (string, Session, error) {
	token, sess, err := s.newSession(userID, o)
	if err != nil {
		return "", Session{}, err
	}
	if err := tx.WithContext(ctx).Create(&sess).Error; err != nil {
		return "", Session{}, fmt.Errorf("auth: create session: %w", err)
	}
	if err := s.record(tx.WithContext(ctx), o.event(userID, activity.LoginSucceeded)); err != nil {
		return "", Session{}, fmt.Errorf("auth: %w", err)
	}
	return token, sess, nil
}

// TxIssue is Issue inside a caller's transaction: it writes the session in
// the transaction and caches it once the transaction has committed, so the
// client's first request with the token needs no database read.
// NewTxIssue before the transaction begins, Issue inside it, Committed
// after the commit (not at all when it rolled back).
type TxIssue struct {
	s       *Sessions
	origin  Origin
	version uint64
	sess    *Session // the last issued: a retried transaction's earlier attempt rolled back
}

// NewTxIssue starts a TxIssue. Anything revoked from now on keeps the
// session out of the cache (the database then decides).
func (s *Sessions) NewTxIssue(o Origin) *TxIssue {
	t := &TxIssue{s: s, origin: o}
	if s.cache != nil {
		t.version = s.cache.Version()
	}
	return t
}

// Issue writes a new session for userID in tx and returns its token (shown
// once) and expiry (nil: none).
func (t *TxIssue) Issue(ctx context.Context, tx *gorm.DB, userID string) (string, *time.Time, error) {
	token, sess, err := t.s.createTx(ctx, tx, userID, t.origin)
	if err != nil {
		return "", nil, err
	}
	t.sess = &sess
	return token, sess.ExpiresAt, nil
}

// Committed caches the session issued, to be called only after the
// transaction committed; once (a second call does nothing). Anything
// invalidated since NewTxIssue, on any instance, keeps it out: a sign-up
// with a referral code (the referrer's change) is never cached here.
func (t *TxIssue) Committed() {
	sess := t.sess
	t.sess = nil
	if t.s.cache == nil || sess == nil {
		return
	}
	t.s.putIf(*sess, t.version)
}

// newSession makes a fresh token and its row.
func (s *Sessions) newSession(userID string, o Origin) (string, Session, error) {
	var raw [tokenBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Session{}, fmt.Errorf("auth: token entropy: %w", err)
	}
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	h := HashToken(token)
	now := storage.Now(s.now())
	sess := Session{TokenHash: h[:], UserID: userID, CreatedAt: now, UserAgent: cleanUserAgent(o.UserAgent)}
	if o.Method != "" {
		m := o.Method
		sess.Method = &m
	}
	if s.ttl > 0 {
		exp := now.Add(s.ttl)
		sess.ExpiresAt = &exp
	}
	return token, sess, nil
}

// Check returns the live session of token: api.ErrUnauthorized for an
// unknown, expired or revoked token.
func (s *Sessions) Check(ctx context.Context, token string) (Session, error) {
	if !strings.HasPrefix(token, TokenPrefix) || len(token) != len(TokenPrefix)+43 {
		return Session{}, api.ErrUnauthorized
	}
	h := HashToken(token)
	now := s.now()
	if s.cache != nil {
		if sess, ok := s.cache.Get(h); ok {
			if sess.ExpiresAt != nil && !now.Before(*sess.ExpiresAt) {
				return Session{}, api.ErrUnauthorized
			}
			return sess, nil
		}
	}
	var version uint64
	if s.cache != nil {
		version = s.cache.Version()
	}
	var sess Session
	err := s.db.WithContext(ctx).Where("token_hash = ?", h[:]).Take(&sess).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Session{}, api.ErrUnauthorized
	}
	if err != nil {
		return Session{}, fmt.Errorf("auth: check session: %w", err)
	}
	if sess.ExpiresAt != nil && !now.Before(*sess.ExpiresAt) {
		return Session{}, api.ErrUnauthorized
	}
	if s.cache != nil {
		s.cache.PutIf(h, sess, version)
	}
	return sess, nil
}

// Revoke ends the session of token.
func (s *Sessions) Revoke(ctx context.Context, token string) error {
	return s.revokeHash(ctx, HashToken(token), nil)
}

// revokeHash ends the session whose token hash is h, and its access
// tokens; ev, when set, is recorded in the same transaction.
func (s *Sessions) revokeHash(ctx context.Context, h [32]byte, ev *activity.Event) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("token_hash = ?", h[:]).Delete(&Session{}).Error; err != nil {
			return err
		}
		if ev != nil {
			return s.record(tx, *ev)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("auth: revoke: %w", err)
	}
	if s.cache != nil {
		if err := s.cache.Forget(ctx, h); err != nil {
			return fmt.Errorf("auth: revoke: %w", err)
		}
	}
	return nil
}

// RevokeAll ends every session of userID.
func (s *Sessions) RevokeAll(ctx context.Context, userID string) error {
	return s.revokeAll(ctx, userID, nil)
}

// revokeAll is RevokeAll recording ev, when set, in the same transaction.
func (s *Sessions) revokeAll(ctx context.Context, userID string, ev *activity.Event) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("user_id = ?", userID).Delete(&Session{}).Error; err != nil {
			return err
		}
		if ev != nil {
			return s.record(tx, *ev)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("auth: revoke all: %w", err)
	}
	if s.cache != nil {
		if err := s.cache.ForgetUser(ctx, userID); err != nil {
			return fmt.Errorf("auth: revoke all: %w", err)
		}
	}
	return nil
}

// DeleteExpired removes sessions past their expiry (housekeeping).
func (s *Sessions) DeleteExpired(ctx context.Context) (int64, error) {
	res := s.db.WithContext(ctx).Where("expires_at IS NOT NULL AND expires_at <= ?", storage.Now(s.now())).Delete(&Session{})
	if res.Error != nil {
		return 0, fmt.Errorf("auth: delete expired sessions: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// BearerToken extracts the token of an Authorization header
// ("Bearer <t>" or "Token <t>", scheme case-insensitive).
func BearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "Token")) {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Sweep deletes expired sessions every period until ctx ends: they are
// refused anyway, but would otherwise pile up in the database.
func (s *Sessions) Sweep(ctx context.Context, period time.Duration, log *slog.Logger) {
	every.Period(ctx, period, func(ctx context.Context) {
		n, err := s.DeleteExpired(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("deleting expired sessions", "error", err)
		} else if n > 0 {
			log.Info("deleted expired sessions", "count", n)
		}
	})
}
