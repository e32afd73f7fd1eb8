package partners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/points"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/users"
)

// userID returns the user behind partner p's external ID: users.ErrNotFound.
// Every lookup of the management API goes through the partner's own
// identities, so a partner never reaches another partner's users.
func (s *Service) userID(ctx context.Context, p Partner, externalID string) (string, error) {
	var id Identity
	err := s.reg.db.WithContext(ctx).Select("user_id").
		Where("partner_id = ? AND external_id = ?", p.ID, externalID).Take(&id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", users.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("partners: find identity: %w", err)
	}
	return id.UserID, nil
}

// User returns partner p's user externalID: users.ErrNotFound.
func (s *Service) User(ctx context.Context, p Partner, externalID string) (*users.User, error) {
	uid, err := s.userID(ctx, p, externalID)
	if err != nil {
		return nil, err
	}
	return s.users.Get(ctx, uid)
}

// TokenInfo is what token verification tells a partner.
type TokenInfo struct {
	Active     bool
	User       *users.User
	ExpiresAt  *time.Time
	ExternalID *string // the user's external ID at this partner, if it has one
	SessionID  string  // the session of the token
}

// VerifyToken checks a user's auth token or access token for partner p:
// active when the token and its session are live (ExpiresAt is an access
// token's exp), whichever way its user logged in — a partner's own web app
// may sign its users in with a wallet or an email and verify their tokens
// on its server. The token is a bearer credential: whoever holds it can
// read the same user record at /v1/users/me, so this reveals nothing more.
// ExternalID tells whether the user is also one of p's identities.
func (s *Service) VerifyToken(ctx context.Context, p Partner, token string) (TokenInfo, error) {
	if token == "" {
		return TokenInfo{}, nil
	}
	sess, exp, err := s.sessions.Authenticate(ctx, token)
	if errors.Is(err, api.ErrUnauthorized) {
		return TokenInfo{}, nil
	}
	if err != nil {
		return TokenInfo{}, err
	}
	u, err := s.users.GetCached(ctx, sess.UserID)
	if errors.Is(err, users.ErrNotFound) {
		return TokenInfo{}, nil
	}
	if err != nil {
		return TokenInfo{}, err
	}
	var ids []string
	if err := s.reg.db.WithContext(ctx).Model(&Identity{}).
		Where("partner_id = ? AND user_id = ?", p.ID, sess.UserID).Limit(1).Pluck("external_id", &ids).Error; err != nil {
		return TokenInfo{}, fmt.Errorf("partners: verify token: %w", err)
	}
	info := TokenInfo{Active: true, User: u, ExpiresAt: exp, SessionID: sess.ID()}
	if len(ids) == 1 {
		info.ExternalID = &ids[0]
	}
	return info, nil
}

// Page sizes of ListUsers.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// ListQuery selects a page of a partner's users.
type ListQuery struct {
	UpdatedSince *time.Time // users changed at or after this
	Limit        int        // 1..MaxListLimit; 0 means DefaultListLimit
	Cursor       string     // from the previous page; empty for the first
}

// PartnerUser is one entry of a page.
type PartnerUser struct {
	ExternalID string
	User       *users.User
}

// ListUsers returns partner p's users ordered by the time of their last
// change (users.updated_at), then user id, then external id: a user that
// changes moves to the end, so a partner syncs incrementally by remembering
// the last page's cursor or the last updated_at it saw. next is empty on
// the last page. Errors: api.ErrInvalidParam, api.ErrInvalidCursor.
func (s *Service) ListUsers(ctx context.Context, p Partner, q ListQuery) (page []PartnerUser, next string, err error) {
	if q.Limit == 0 {
		q.Limit = DefaultListLimit
	}
	if q.Limit < 1 || q.Limit > MaxListLimit {
		return nil, "", api.ErrInvalidParam.WithMessage("limit must be an integer from 1 to %d", MaxListLimit)
	}
	db := s.reg.db.WithContext(ctx).Table("partner_identities AS pi").
		Select("pi.external_id, u.id AS user_id, u.updated_at").
		Joins(users.JoinUpdated("pi.user_id")).
		Where("pi.partner_id = ?", p.ID)
	if q.UpdatedSince != nil {
		db = db.Where("u.updated_at >= ?", storage.Now(*q.UpdatedSince))
	}
	if q.Cursor != "" {
		c, err := decodeListCursor(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		db = db.Where("u.updated_at > ? OR (u.updated_at = ? AND (u.id > ? OR (u.id = ? AND pi.external_id > ?)))",
			c.At, c.At, c.UserID, c.UserID, c.ExternalID)
	}
	var rows []struct {
		ExternalID string
		UserID     string
		UpdatedAt  time.Time
	}
	if err := db.Order("u.updated_at, u.id, pi.external_id").Limit(q.Limit + 1).Scan(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("partners: list users: %w", err)
	}
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		last := rows[len(rows)-1]
		next = encodeListCursor(listCursor{At: storage.Now(last.UpdatedAt), UserID: last.UserID, ExternalID: last.ExternalID})
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.UserID
	}
	byID, err := s.users.GetMany(ctx, ids)
	if err != nil {
		return nil, "", err
	}
	page = make([]PartnerUser, 0, len(rows))
	for _, r := range rows {
		if u, ok := byID[r.UserID]; ok { // else deleted since the page was read
			page = append(page, PartnerUser{ExternalID: r.ExternalID, User: u})
		}
	}
	return page, next, nil
}

type listCursor struct {
	At         time.Time `json:"t"`
	UserID     string    `json:"u"`
	ExternalID string    `json:"e"`
}

func encodeListCursor(c listCursor) string {
	b, _ := json.Marshal(c) // a struct of a time and strings always marshals
	return api.EncodeCursor(b)
}

// decodeListCursor reads a cursor of encodeListCursor. api.Decode keeps a
// made-up one from carrying a \u0000 or a lone surrogate to the database.
func decodeListCursor(s string) (listCursor, error) {
	var c listCursor
	b, err := api.DecodeCursor(s)
	if err != nil || len(b) > 1024 || api.Decode(b, &c) != nil || c.UserID == "" || c.At.IsZero() {
		return listCursor{}, api.ErrInvalidCursor
	}
	c.At = storage.Now(c.At)
	return c, nil
}

// MaxDeleteIDs bounds the external IDs of one DeleteUsers call.
const MaxDeleteIDs = 1000

// DeleteUsers removes partner p's identities of externalIDs (unknown ones
// are skipped) and deletes each user left with no way to log in, in one
// transaction. It returns how many identities it removed.
func (s *Service) DeleteUsers(ctx context.Context, p Partner, externalIDs []string) (int, error) {
	if len(externalIDs) > MaxDeleteIDs {
		return 0, api.ErrInvalidParam.WithMessage("at most %d external_ids per call", MaxDeleteIDs)
	}
	var deleted int
	err := s.users.InTx(ctx, func(t *users.Tx) error {
		tx := t.DB()
		deleted = 0
		seen := map[string]bool{}
		for _, ext := range externalIDs {
			if seen[ext] {
				continue
			}
			seen[ext] = true
			var id Identity
			err := tx.Where("partner_id = ? AND external_id = ?", p.ID, ext).Take(&id).Error
			if errors.Is(err, gorm.ErrRecordNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("find identity: %w", err)
			}
			res := tx.Where("partner_id = ? AND external_id = ?", p.ID, ext).Delete(&Identity{})
			if res.Error != nil {
				return fmt.Errorf("delete identity: %w", res.Error)
			}
			if res.RowsAffected == 0 {
				continue
			}
			deleted++
			n, err := t.LoginMethods(id.UserID)
			if err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			err = t.Delete(id.UserID, users.RemovedIdentity{PartnerID: p.ID, ExternalID: ext})
			if errors.Is(err, users.ErrNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("delete user: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, wrap("delete users", err)
	}
	return deleted, nil
}

// AddPoints changes the points of partner p's user externalID (see
// points.Ledger.Apply for idempotency) and returns the entry, whose
// BalanceAfter is the new balance. Errors: users.ErrNotFound and the
// ledger's (points.ErrInsufficientPoints, …).
func (s *Service) AddPoints(ctx context.Context, p Partner, externalID string, amount int64, reason, key string) (points.Entry, error) {
	uid, err := s.userID(ctx, p, externalID)
	if err != nil {
		return points.Entry{}, err
	}
	return s.ledger.Apply(ctx, uid, amount, reason, key)
}

// Ranking ranks partner p's user externalID among p's users, with up to n
// neighbours each side. Errors: users.ErrNotFound, api.ErrInvalidParam.
func (s *Service) Ranking(ctx context.Context, p Partner, externalID string, n int) (points.Ranking, error) {
	uid, err := s.userID(ctx, p, externalID)
	if err != nil {
		return points.Ranking{}, err
	}
	return s.ledger.RankInPartner(ctx, RankScope(p.ID), uid, n)
}

// PathUserID is the user of the request's :external_id path parameter,
// among the requesting partner's users only: users.ErrNotFound otherwise
// (routes registered through Routes' extra, e.g. the activity log's).
func (s *Service) PathUserID(c *gin.Context) (string, error) {
	p, err := current(c)
	if err != nil {
		return "", err
	}
	ext, err := api.PathParam(c, "external_id", ErrInvalidExternalID)
	if err != nil {
		return "", err
	}
	return s.userID(c.Request.Context(), p, ext)
}
