package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/errs"
)

// MaxNeighbours bounds n of Rank.
const MaxNeighbours = 100

// Ranked is one user's place in a ranking.
type Ranked struct {
	UserID     string
	ExternalID string // the partner's id of the user; empty in the global ranking
	Username   string
	Points     int64
	Rank       int64
	JoinedAt   time.Time
}

// Ranking is a user's rank with its neighbours.
type Ranking struct {
	Rank  int64
	Above []Ranked // up to n users ranked just above, in rank order (best first)
	User  Ranked
	Below []Ranked // up to n users ranked just below, in rank order
}

// ErrInvalidNeighbours is the contract's invalid_parameter for a negative
// n of Rank.
var ErrInvalidNeighbours = errs.New("invalid_parameter", "n must be a non-negative integer")

// Scope restricts a ranking to some users, in SQL another package owns
// (the partners package: the users with an identity of one partner). Where
// is a condition on u, the users row; ExternalID an expression on u naming
// the user's id in the scope, or empty. Each takes Args, once per use.
type Scope struct {
	Where      string
	ExternalID string
	Args       []any
}

// Rank ranks userID by points among the users of scope (the zero Scope:
// all users), with up to n neighbours on each side (n ≥ 0; above
// MaxNeighbours it is clamped to it).
//
// The order is total, so ranks are unique and consecutive: more points
// first; among equal points the earlier joined_at first; among equal
// joined_at the smaller user id first. Rank 1 has the most points.
//
// The database computes it: the rank is 1 + the number of the scope's
// users ahead of the user under that order (one COUNT), and the neighbours
// are two ORDER BY … LIMIT n queries, all in one snapshot. Users are never
// loaded wholesale.
//
// Errors: ErrNotFound when the user is not in the scope;
// ErrInvalidNeighbours for n out of range.
func (s *Store) Rank(ctx context.Context, userID string, n int, scope Scope) (Ranking, error) {
	return s.rank(ctx, scope, userID, n)
}

// rankedRow is what the ranking queries select.
type rankedRow struct {
	ID         string
	ExternalID *string
	Username   string
	Points     int64
	JoinedAt   time.Time
}

func (r rankedRow) ranked(rank int64) Ranked {
	out := Ranked{UserID: r.ID, Username: r.Username, Points: r.Points, Rank: rank, JoinedAt: r.JoinedAt.UTC()}
	if r.ExternalID != nil {
		out.ExternalID = *r.ExternalID
	}
	return out
}

// ahead is "u ranks before me": more points, or as many and an earlier
// joined_at, or both equal and a smaller id. It compares columns with
// columns (me is the user's own row), so no time value crosses the driver.
// The redundant bound on points lets the neighbour queries start their walk
// of users_rank_idx at the user instead of at one end.
const ahead = `u.points >= me.points AND (u.points > me.points
	OR (u.points = me.points AND u.joined_at < me.joined_at)
	OR (u.points = me.points AND u.joined_at = me.joined_at AND u.id < me.id))`

// behind is "u ranks after me".
const behind = `u.points <= me.points AND (u.points < me.points
	OR (u.points = me.points AND u.joined_at > me.joined_at)
	OR (u.points = me.points AND u.joined_at = me.joined_at AND u.id > me.id))`

func (s *Store) rank(ctx context.Context, sc Scope, userID string, n int) (Ranking, error) {
	if n < 0 {
		return Ranking{}, ErrInvalidNeighbours
	}
	n = min(n, MaxNeighbours) // the contract sets no maximum: clamp rather than refuse
	scope, extID := "1 = 1", "NULL"
	var scopeArgs, extArgs []any
	if sc.Where != "" {
		scope, scopeArgs = sc.Where, sc.Args
	}
	if sc.ExternalID != "" {
		extID, extArgs = sc.ExternalID, sc.Args
	}
	cols := `u.id, ` + extID + ` AS external_id, u.username, u.points, u.joined_at`
	meJoin := `JOIN (SELECT id, points, joined_at FROM users WHERE id = ?) me ON 1 = 1`

	var out Ranking
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var me []rankedRow
		args := append(append([]any{}, extArgs...), userID)
		args = append(args, scopeArgs...)
		if err := tx.Raw(`SELECT `+cols+` FROM users u WHERE u.id = ? AND `+scope, args...).
			Scan(&me).Error; err != nil {
			return fmt.Errorf("read user: %w", err)
		}
		if len(me) == 0 {
			return ErrNotFound
		}
		var before int64
		args = append([]any{userID}, scopeArgs...)
		if err := tx.Raw(`SELECT COUNT(*) FROM users u `+meJoin+` WHERE `+scope+` AND `+ahead, args...).
			Row().Scan(&before); err != nil {
			return fmt.Errorf("count ahead: %w", err)
		}
		out.Rank = before + 1
		out.User = me[0].ranked(out.Rank)
		if n == 0 {
			out.Above, out.Below = []Ranked{}, []Ranked{}
			return nil
		}
		var above, below []rankedRow
		args = append(append(append([]any{}, extArgs...), userID), scopeArgs...)
		args = append(args, n)
		if err := tx.Raw(`SELECT `+cols+` FROM users u `+meJoin+` WHERE `+scope+` AND `+ahead+`
			ORDER BY u.points ASC, u.joined_at DESC, u.id DESC LIMIT ?`, args...).Scan(&above).Error; err != nil {
			return fmt.Errorf("read above: %w", err)
		}
		if err := tx.Raw(`SELECT `+cols+` FROM users u `+meJoin+` WHERE `+scope+` AND `+behind+`
			ORDER BY u.points DESC, u.joined_at ASC, u.id ASC LIMIT ?`, args...).Scan(&below).Error; err != nil {
			return fmt.Errorf("read below: %w", err)
		}
		// above came nearest first: reverse it into rank order.
		out.Above = make([]Ranked, len(above))
		for i, r := range above {
			j := len(above) - 1 - i
			out.Above[j] = r.ranked(out.Rank - int64(i) - 1)
		}
		out.Below = make([]Ranked, len(below))
		for i, r := range below {
			out.Below[i] = r.ranked(out.Rank + int64(i) + 1)
		}
		return nil
	}, s.db.SnapshotRead())
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Ranking{}, ErrNotFound
		}
		return Ranking{}, fmt.Errorf("users: rank: %w", err)
	}
	return out, nil
}
