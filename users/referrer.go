package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/storage"
)

// The referral graph lives in users.referrer_id, with users.referee_count
// kept in the same transaction as every change of a link. The referrals
// package decides which links are allowed (no cycles, once); these are the
// reads and the write it decides with.

// Referrer returns user id's referrer (nil for none) as this transaction
// sees it: ErrNotFound.
func (t *Tx) Referrer(id string) (*string, error) {
	var u User
	err := t.db.Select("id", "referrer_id").Where("id = ?", id).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("users: find user: %w", err)
	}
	return u.ReferrerID, nil
}

// ReferralCodeOwner returns the ID of the user whose referral code is code
// (normalised): ErrInvalidReferralCode when there is none.
func (t *Tx) ReferralCodeOwner(code string) (string, error) {
	var u User
	err := t.db.Select("id").Where("referral_code = ?", NormalizeReferralCode(code)).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", ErrInvalidReferralCode
	}
	if err != nil {
		return "", fmt.Errorf("users: find referrer: %w", err)
	}
	return u.ID, nil
}

// ReferrerChain returns the referrer chain of startID (startID, its
// referrer, that one's referrer, …). On PostgreSQL it first locks userID's
// row and every row of the chain (FOR NO KEY UPDATE, in id order), and
// walks again until the walk finds no row it has not locked: only an
// unlocked root could have gained a referrer meanwhile. Two transactions
// that would together close a cycle then contend for a common row. SQLite
// runs one transaction at a time, so the walk alone is enough there.
func (t *Tx) ReferrerChain(userID, startID string) ([]string, error) {
	chain, err := walkChain(t.db, startID)
	if err != nil || t.s.db.Dialect != storage.Postgres {
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
		if err := t.db.Raw(`SELECT id FROM users WHERE id IN ? ORDER BY id FOR NO KEY UPDATE`, want).
			Scan(&got).Error; err != nil {
			return nil, fmt.Errorf("users: lock referrer chain: %w", err)
		}
		for _, id := range want {
			locked[id] = true
		}
		if chain, err = walkChain(t.db, startID); err != nil {
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
		return nil, fmt.Errorf("users: walk referrer chain: %w", err)
	}
	return ids, nil
}

// SetReferrer makes referrerID the referrer of userID when it has none,
// adds one to the referrer's referee_count, and records the event
// (EventReferrerSet) and the change (ChangeUpdated). linked is false when
// userID already has a referrer (a concurrent call set it first). Errors:
// ErrNotFound (no such user), ErrInvalidReferralCode (the referrer is
// gone).
func (t *Tx) SetReferrer(userID, referrerID string) (linked bool, err error) {
	now := t.Now()
	res := t.db.Model(&User{}).Where("id = ? AND referrer_id IS NULL", userID).
		Updates(map[string]any{"referrer_id": referrerID, "updated_at": now})
	if res.Error != nil {
		if storage.ForeignKeyViolation(res.Error) { // the referrer was deleted meanwhile
			return false, ErrInvalidReferralCode
		}
		return false, fmt.Errorf("users: link referrer: %w", res.Error)
	}
	if res.RowsAffected == 0 { // set first, or the user is gone
		var n int64
		if err := t.db.Model(&User{}).Where("id = ?", userID).Count(&n).Error; err != nil {
			return false, fmt.Errorf("users: recheck user: %w", err)
		}
		if n == 0 {
			return false, ErrNotFound
		}
		return false, nil
	}
	res = t.db.Model(&User{}).Where("id = ?", referrerID).
		Updates(map[string]any{"referee_count": gorm.Expr("referee_count + 1"), "updated_at": now})
	if res.Error != nil {
		return false, fmt.Errorf("users: count referee: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return false, ErrInvalidReferralCode // deleted meanwhile
	}
	t.invalidate(referrerID)
	if err := t.Event(userID, EventReferrerSet, nil); err != nil {
		return false, err
	}
	return true, t.Changed(Change{Kind: ChangeUpdated, UserID: userID})
}

// Referee is one user referred by another.
type Referee struct {
	ID       string
	Username string
	JoinedAt time.Time
}

// RefereePage is one page of a user's referees, oldest first.
type RefereePage struct {
	ReferralCode string
	RefereeCount int64
	Referees     []Referee
	More         bool // a next page exists
}

// Referees returns up to limit of the users userID referred, ordered by
// joined_at then id, after the referee (afterJoined, afterID) when afterID
// is not empty, with userID's referral code and count, in one snapshot.
// Errors: ErrNotFound.
func (s *Store) Referees(ctx context.Context, userID string, limit int, afterJoined time.Time, afterID string) (RefereePage, error) {
	var out RefereePage
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var me User
		err := tx.Select("id", "referral_code", "referee_count").Where("id = ?", userID).Take(&me).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		out.ReferralCode, out.RefereeCount = me.ReferralCode, me.RefereeCount
		q := tx.Model(&User{}).Select("id", "username", "joined_at").Where("referrer_id = ?", userID)
		if afterID != "" {
			q = q.Where("joined_at > ? OR (joined_at = ? AND id > ?)", afterJoined, afterJoined, afterID)
		}
		var rows []User
		if err := q.Order("joined_at, id").Limit(limit + 1).Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) > limit {
			rows, out.More = rows[:limit], true
		}
		out.Referees = make([]Referee, len(rows))
		for i, r := range rows {
			out.Referees[i] = Referee{ID: r.ID, Username: r.Username, JoinedAt: r.JoinedAt}
		}
		return nil
	}, s.db.SnapshotRead())
	if errors.Is(err, ErrNotFound) {
		return RefereePage{}, err
	}
	if err != nil {
		return RefereePage{}, wrap("list referees", err)
	}
	return out, nil
}
