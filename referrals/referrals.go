// Package referrals owns the referral graph after sign-up: setting a user's
// referrer later (refusing cycles), and listing a user's referees.
//
// The graph lives in users.referrer_id; users.referee_count is a counter kept
// in the same transaction as every change of a link: users.Store.Create adds
// one, users.Store.Delete takes one away, and Service.SetReferrer adds one.
package referrals

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/users"
)

// Errors of the referral graph. An unknown code, one's own code and a code
// that would close a cycle are all users.ErrInvalidReferralCode (the
// contract's 400 invalid_referral_code), with a message saying which.
var (
	ErrReferrerAlreadySet = api.NewError(http.StatusConflict, "referrer_already_set", "this account already has a referrer")

	errOwnCode = users.ErrInvalidReferralCode.WithMessage("that is your own referral code")
	errCycle   = users.ErrInvalidReferralCode.WithMessage("that referral code would make a referral cycle")
)

// Page sizes of Referees.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// setAttempts bounds the retries of SetReferrer after a PostgreSQL deadlock
// or serialization failure.
const setAttempts = 10

// Service reads and changes the referral graph.
type Service struct {
	db    *storage.DB
	users *users.Store
	now   func() time.Time
}

// NewService returns the referral service over db; us reloads users and
// hears of the changes.
func NewService(db *storage.DB, us *users.Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, users: us, now: now}
}

// SetReferrer makes the owner of code the referrer of user userID, once, and
// adds one to the referrer's referee_count in the same transaction. It
// returns the user reloaded. Errors: users.ErrNotFound (no such user),
// ErrReferrerAlreadySet, users.ErrInvalidReferralCode (unknown code, the
// user's own code, or a code whose owner is the user itself or one of its
// referees at any depth).
//
// Concurrency: the link is written with "WHERE referrer_id IS NULL", so of two
// concurrent calls for one user exactly one wins. On PostgreSQL the user's
// row and every row of the referrer's chain are locked (FOR NO KEY UPDATE, in
// id order) before the cycle check, and the chain is walked again after
// locking until it is stable: two calls that would together close a cycle
// (A→B and B→A) contend for a common row and the later one sees the
// other's link. FOR NO KEY UPDATE leaves concurrent sign-ups with the same
// code (which take FOR KEY SHARE through the foreign key) unblocked. A
// deadlock (possible when a chain grew between the walk and the lock) rolls
// the transaction back, and it runs again after a short random pause.
// SQLite runs on one connection, so its transactions are serial anyway.
func (s *Service) SetReferrer(ctx context.Context, userID, code string) (*users.User, error) {
	code = users.NormalizeReferralCode(code)
	if code == "" {
		return nil, users.ErrInvalidReferralCode.WithMessage("a referral code is required")
	}
	var referrerID string
	var err error
	for attempt := 1; ; attempt++ {
		referrerID, err = s.setReferrerOnce(ctx, userID, code)
		if !retryable(err) || attempt == setAttempts {
			break
		}
		// Back off a random while so the calls that deadlocked do not meet
		// again in the same order.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("referrals: set referrer: %w", ctx.Err())
		case <-time.After(time.Duration(attempt) * time.Duration(1+rand.IntN(10)) * time.Millisecond): //nolint:gosec // G404: jitter, not a secret
		}
	}
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			return nil, err
		}
		if storage.ForeignKeyViolation(err) { // the referrer was deleted meanwhile
			return nil, users.ErrInvalidReferralCode
		}
		return nil, fmt.Errorf("referrals: set referrer: %w", err)
	}
	s.users.Changed(ctx, userID, referrerID)
	return s.users.Get(ctx, userID)
}

func (s *Service) setReferrerOnce(ctx context.Context, userID, code string) (string, error) {
	var referrerID string
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var me users.User
		err := tx.Select("id", "referrer_id").Where("id = ?", userID).Take(&me).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return users.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("find user: %w", err)
		}
		if me.ReferrerID != nil {
			return ErrReferrerAlreadySet
		}
		var ref users.User
		err = tx.Select("id").Where("referral_code = ?", code).Take(&ref).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return users.ErrInvalidReferralCode
		}
		if err != nil {
			return fmt.Errorf("find referrer: %w", err)
		}
		if ref.ID == userID {
			return errOwnCode
		}
		referrerID = ref.ID
		chain, err := s.lockedChain(tx, userID, ref.ID)
		if err != nil {
			return err
		}
		if slices.Contains(chain, userID) {
			return errCycle
		}
		now := storage.Now(s.now())
		res := tx.Model(&users.User{}).Where("id = ? AND referrer_id IS NULL", userID).
			Updates(map[string]any{"referrer_id": ref.ID, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("link: %w", res.Error)
		}
		if res.RowsAffected == 0 { // a concurrent call set it first (or the user is gone)
			return s.whyNotLinked(tx, userID)
		}
		res = tx.Model(&users.User{}).Where("id = ?", ref.ID).
			Updates(map[string]any{"referee_count": gorm.Expr("referee_count + 1"), "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("count referee: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return users.ErrInvalidReferralCode // deleted meanwhile
		}
		if err := s.users.EventTx(ctx, tx, userID, users.EventReferrerSet, nil); err != nil {
			return err
		}
		return s.users.ChangedTx(tx, users.Change{Kind: users.ChangeUpdated, UserID: userID})
	})
	return referrerID, err
}

func (s *Service) whyNotLinked(tx *gorm.DB, userID string) error {
	var n int64
	if err := tx.Model(&users.User{}).Where("id = ?", userID).Count(&n).Error; err != nil {
		return fmt.Errorf("recheck user: %w", err)
	}
	if n == 0 {
		return users.ErrNotFound
	}
	return ErrReferrerAlreadySet
}

// lockedChain returns the referrer chain of startID (startID, its referrer,
// that one's referrer, …). On PostgreSQL it first locks userID's row and
// every row of the chain, and walks again until the walk finds no row it has
// not locked: only an unlocked root could have gained a referrer meanwhile.
func (s *Service) lockedChain(tx *gorm.DB, userID, startID string) ([]string, error) {
	chain, err := walkChain(tx, startID)
	if err != nil || s.db.Dialect != storage.Postgres {
		return chain, err
	}
	locked := map[string]bool{}
	for {
		want := []string{userID}
		for _, id := range chain {
			if !locked[id] {
				want = append(want, id)
			}
		}
		if len(want) == 1 && locked[userID] {
			return chain, nil
		}
		var got []string
		if err := tx.Raw(`SELECT id FROM users WHERE id IN ? ORDER BY id FOR NO KEY UPDATE`, want).
			Scan(&got).Error; err != nil {
			return nil, fmt.Errorf("lock chain: %w", err)
		}
		for _, id := range want {
			locked[id] = true
		}
		if chain, err = walkChain(tx, startID); err != nil {
			return nil, err
		}
	}
}

// walkChain follows referrer_id upwards from startID with a recursive CTE.
// UNION (not UNION ALL) stops on a repeated row, so even a cycle that
// somehow exists cannot make the walk run forever.
func walkChain(tx *gorm.DB, startID string) ([]string, error) {
	var ids []string
	err := tx.Raw(`WITH RECURSIVE chain(id, referrer_id) AS (
			SELECT id, referrer_id FROM users WHERE id = ?
			UNION
			SELECT u.id, u.referrer_id FROM users u JOIN chain c ON u.id = c.referrer_id
		)
		SELECT id FROM chain`, startID).Scan(&ids).Error
	if err != nil {
		return nil, fmt.Errorf("walk referrer chain: %w", err)
	}
	return ids, nil
}

// retryable reports a PostgreSQL deadlock or serialization failure: the
// transaction was rolled back and may simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// Referee is one user referred by another.
type Referee struct {
	ID       string
	Username string
	JoinedAt time.Time
}

// Referrals is one page of a user's referees, oldest first.
type Referrals struct {
	ReferralCode string
	RefereeCount int64
	Referees     []Referee
	// NextCursor fetches the next page; empty on the last one.
	NextCursor string
}

// Referees returns up to limit (1..MaxLimit; 0 means DefaultLimit) of the
// users userID referred, ordered by joined_at then id, after cursor (empty:
// from the start). Errors: users.ErrNotFound, api.ErrInvalidParam (limit),
// api.ErrInvalidCursor.
func (s *Service) Referees(ctx context.Context, userID string, limit int, cursor string) (Referrals, error) {
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return Referrals{}, api.ErrInvalidParam.WithMessage("limit must be an integer from 1 to %d", MaxLimit)
	}
	var after *key
	if cursor != "" {
		k, err := decodeCursor(cursor)
		if err != nil {
			return Referrals{}, err
		}
		after = &k
	}
	var out Referrals
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var me users.User
		err := tx.Select("id", "referral_code", "referee_count").Where("id = ?", userID).Take(&me).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return users.ErrNotFound
		}
		if err != nil {
			return err
		}
		out.ReferralCode, out.RefereeCount = me.ReferralCode, me.RefereeCount
		q := tx.Model(&users.User{}).Select("id", "username", "joined_at").Where("referrer_id = ?", userID)
		if after != nil {
			q = q.Where("joined_at > ? OR (joined_at = ? AND id > ?)", after.joinedAt, after.joinedAt, after.id)
		}
		var rows []users.User
		if err := q.Order("joined_at, id").Limit(limit + 1).Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) > limit {
			rows = rows[:limit]
			last := rows[limit-1]
			out.NextCursor = encodeCursor(key{joinedAt: last.JoinedAt, id: last.ID})
		}
		out.Referees = make([]Referee, len(rows))
		for i, r := range rows {
			out.Referees[i] = Referee{ID: r.ID, Username: r.Username, JoinedAt: r.JoinedAt}
		}
		return nil
	}, readOptions(s.db))
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			return Referrals{}, err
		}
		return Referrals{}, fmt.Errorf("referrals: list referees: %w", err)
	}
	return out, nil
}

// key is a position in the (joined_at, id) order.
type key struct {
	joinedAt time.Time
	id       string
}

// A cursor is base64url of "<joined_at in Unix microseconds>.<id>":
// opaque to clients, exact at the database's resolution.
func encodeCursor(k key) string {
	raw := strconv.FormatInt(storage.Now(k.joinedAt).UnixMicro(), 10) + "." + k.id
	return api.EncodeCursor([]byte(raw))
}

func decodeCursor(s string) (key, error) {
	raw, err := api.DecodeCursor(s)
	if err != nil {
		return key{}, api.ErrInvalidCursor
	}
	ts, id, ok := strings.Cut(string(raw), ".")
	if !ok || id == "" || len(id) > 64 {
		return key{}, api.ErrInvalidCursor
	}
	us, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || us < 0 {
		return key{}, api.ErrInvalidCursor
	}
	return key{joinedAt: time.UnixMicro(us).UTC(), id: id}, nil
}

// readOptions makes a multi-statement read one snapshot on PostgreSQL
// (REPEATABLE READ, read only); SQLite transactions are serial already.
func readOptions(db *storage.DB) *sql.TxOptions {
	if db.Dialect != storage.Postgres {
		return nil
	}
	return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
}
