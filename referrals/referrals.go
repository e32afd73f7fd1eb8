// Package referrals owns the referral graph after sign-up: setting a user's
// referrer later (refusing cycles), and listing a user's referees.
//
// The graph lives in users.referrer_id; users.referee_count is a counter kept
// in the same transaction as every change of a link: users.Store.Create adds
// one, users.Store.Delete takes one away, and Service.SetReferrer adds one.
package referrals

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/errs"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/users"
)

// Errors of the referral graph. An unknown code, one's own code and a code
// that would close a cycle are all users.ErrInvalidReferralCode (the
// contract's 400 invalid_referral_code), with a message saying which.
var (
	ErrReferrerAlreadySet = errs.New("referrer_already_set", "this account already has a referrer")

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
	users *users.Store
}

// NewService returns the referral service over the users store, which
// holds the graph and hears of its changes.
func NewService(us *users.Store) *Service { return &Service{users: us} }

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
	var err error
	for attempt := 1; ; attempt++ {
		err = s.setReferrerOnce(ctx, userID, code)
		if !storage.Retryable(err) || attempt == setAttempts {
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
		var ae *errs.Error
		if errors.As(err, &ae) {
			return nil, err
		}
		return nil, fmt.Errorf("referrals: set referrer: %w", err)
	}
	return s.users.Get(ctx, userID)
}

// setReferrerOnce is one attempt of SetReferrer: it refuses what would
// break the graph's rules (a second referrer, one's own code, a cycle) and
// links through the users store, which counts the referee and records the
// change.
func (s *Service) setReferrerOnce(ctx context.Context, userID, code string) error {
	return s.users.InTx(ctx, func(t *users.Tx) error {
		referrer, err := t.Referrer(userID)
		if err != nil {
			return err
		}
		if referrer != nil {
			return ErrReferrerAlreadySet
		}
		refID, err := t.ReferralCodeOwner(code)
		if err != nil {
			return err
		}
		if refID == userID {
			return errOwnCode
		}
		chain, err := t.ReferrerChain(userID, refID)
		if err != nil {
			return err
		}
		if slices.Contains(chain, userID) {
			return errCycle
		}
		linked, err := t.SetReferrer(userID, refID)
		if err != nil {
			return err
		}
		if !linked { // a concurrent call set it first
			return ErrReferrerAlreadySet
		}
		return nil
	})
}

// Referee is one user referred by another.
type Referee = users.Referee

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
	var afterJoined time.Time
	var afterID string
	if after != nil {
		afterJoined, afterID = after.joinedAt, after.id
	}
	page, err := s.users.Referees(ctx, userID, limit, afterJoined, afterID)
	if err != nil {
		if errors.Is(err, users.ErrNotFound) {
			return Referrals{}, err
		}
		return Referrals{}, fmt.Errorf("referrals: list referees: %w", err)
	}
	out := Referrals{ReferralCode: page.ReferralCode, RefereeCount: page.RefereeCount, Referees: page.Referees}
	if page.More {
		last := page.Referees[len(page.Referees)-1]
		out.NextCursor = encodeCursor(key{joinedAt: last.JoinedAt, id: last.ID})
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
