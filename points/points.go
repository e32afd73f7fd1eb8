// Package points keeps users' points: a ledger of idempotent changes
// (points_entries) whose running total is users.points, and rankings by
// points computed in the database.
package points

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/errs"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/users"
)

// Limits of one change and of a balance. Keeping every balance under
// MaxBalance and every amount under MaxAmount means points + amount never
// overflows a BIGINT (SQLite would silently turn it into a REAL).
const (
	MaxAmount       int64 = 1_000_000_000_000     // 10^12 per change
	MaxBalance      int64 = 1_000_000_000_000_000 // 10^18
	MaxReasonLength       = 256                   // bytes
	MaxKeyLength          = 128                   // bytes
)

// Errors of the ledger.
var (
	ErrInsufficientPoints    = errs.New("insufficient_points", "the balance is too low for this debit")
	ErrInvalidAmount         = errs.New("invalid_amount", fmt.Sprintf("amount must be a non-zero integer from -%d to %d", MaxAmount, MaxAmount))
	ErrBalanceTooLarge       = errs.New("balance_too_large", fmt.Sprintf("the balance would exceed %d", MaxBalance))
	ErrInvalidReason         = errs.New("invalid_reason", fmt.Sprintf("reason must be valid UTF-8 of at most %d bytes", MaxReasonLength))
	ErrIdempotencyKeyMissing = errs.New("idempotency_key_missing", "an idempotency_key is required")
	ErrIdempotencyKeyInvalid = errs.New("invalid_idempotency_key", fmt.Sprintf("idempotency_key must be valid UTF-8 of at most %d bytes", MaxKeyLength))
)

// Entry is one applied change: a row of points_entries.
type Entry struct {
	ID             string `gorm:"primaryKey"`
	UserID         string
	Amount         int64
	Reason         string
	IdempotencyKey string
	BalanceAfter   int64
	CreatedAt      time.Time
}

// TableName is the ledger's table.
func (Entry) TableName() string { return "points_entries" }

// Ledger applies changes of points and ranks users by points.
type Ledger struct {
	db    *storage.DB
	users *users.Store
	now   func() time.Time
}

// NewLedger returns the ledger over db; us hears of every balance change.
func NewLedger(db *storage.DB, us *users.Store, now func() time.Time) *Ledger {
	if now == nil {
		now = time.Now
	}
	return &Ledger{db: db, users: us, now: now}
}

// Apply adds amount (negative: a debit) to the user's balance and records
// the entry, in one transaction, and returns the entry.
//
// Idempotency: (userID, key) names one change. Applied again — also while
// the first call is still running — it changes nothing and returns the first
// entry, whatever amount and reason the repeat carries (the contract: "the
// same idempotency key returns the first result and changes nothing").
// The entry is inserted first, with ON CONFLICT DO
// NOTHING, so the unique constraint decides between racing duplicates before
// any balance is touched: on PostgreSQL the loser's insert waits for the
// winner to commit and then reads its entry; SQLite is serial. A call that
// fails (insufficient points) leaves no entry, so its key may be used again.
//
// A balance never goes below 0: the update is conditional
// (points + amount >= 0), and the CHECK on users.points backs it.
//
// Errors: ErrInvalidAmount, ErrInvalidReason, ErrIdempotencyKeyMissing,
// ErrIdempotencyKeyInvalid, ErrInsufficientPoints,
// ErrBalanceTooLarge, users.ErrNotFound.
func (l *Ledger) Apply(ctx context.Context, userID string, amount int64, reason, key string) (Entry, error) {
	if amount == 0 || amount > MaxAmount || amount < -MaxAmount {
		return Entry{}, ErrInvalidAmount
	}
	reason = strings.TrimSpace(reason)
	if len(reason) > MaxReasonLength || !utf8.ValidString(reason) {
		return Entry{}, ErrInvalidReason
	}
	if strings.TrimSpace(key) == "" {
		return Entry{}, ErrIdempotencyKeyMissing
	}
	if len(key) > MaxKeyLength || !utf8.ValidString(key) {
		return Entry{}, ErrIdempotencyKeyInvalid
	}
	e := Entry{
		ID:             uuid.Must(uuid.NewV7()).String(),
		UserID:         userID,
		Amount:         amount,
		Reason:         reason,
		IdempotencyKey: key,
		CreatedAt:      storage.Now(l.now()),
	}
	var (
		first  Entry
		replay bool
	)
	err := l.users.InTx(ctx, func(t *users.Tx) error {
		tx := t.DB()
		// 1. Claim the key. balance_after and created_at are set by step 3.
		res := tx.Exec(`INSERT INTO points_entries
			(id, user_id, amount, reason, idempotency_key, balance_after, created_at)
			VALUES (?, ?, ?, ?, ?, 0, ?)
			ON CONFLICT (user_id, idempotency_key) DO NOTHING`,
			e.ID, e.UserID, e.Amount, e.Reason, e.IdempotencyKey, e.CreatedAt)
		if res.Error != nil {
			if storage.ForeignKeyViolation(res.Error) {
				return users.ErrNotFound
			}
			return fmt.Errorf("insert entry: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			// The key is taken: in READ COMMITTED this statement sees the
			// committed winner.
			if err := tx.Where("user_id = ? AND idempotency_key = ?", userID, key).Take(&first).Error; err != nil {
				return fmt.Errorf("read first entry: %w", err)
			}
			replay = true
			return nil
		}
		// 2. Move the balance, refusing to cross 0 or MaxBalance.
		balance, ok, err := t.AddPoints(userID, amount, MaxBalance)
		switch {
		case err != nil:
			return err
		case !ok && amount > 0:
			return ErrBalanceTooLarge
		case !ok:
			return ErrInsufficientPoints
		}
		// 3. Record the balance this change left, and stamp the entry now
		// that it holds the user's row: one user's entries are then in the
		// same order by created_at as by balance.
		e.BalanceAfter = balance
		e.CreatedAt = storage.Now(l.now())
		if err := tx.Model(&Entry{}).Where("id = ?", e.ID).
			Updates(map[string]any{"balance_after": balance, "created_at": e.CreatedAt}).Error; err != nil {
			return fmt.Errorf("record balance: %w", err)
		}
		return t.Changed(users.Change{Kind: users.ChangePoints, UserID: userID,
			Points: &users.PointsChange{Balance: balance, Amount: amount, Reason: e.Reason, EntryID: e.ID}})
	})
	if err != nil {
		var ae *errs.Error
		if errors.As(err, &ae) {
			return Entry{}, err
		}
		return Entry{}, fmt.Errorf("points: apply: %w", err)
	}
	if replay {
		first.CreatedAt = first.CreatedAt.UTC()
		return first, nil
	}
	return e, nil
}

// Balance returns the user's points: users.ErrNotFound.
func (l *Ledger) Balance(ctx context.Context, userID string) (int64, error) {
	return l.users.Points(ctx, userID)
}

// Page sizes of Entries.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Entries returns up to limit (1..MaxLimit; 0 means DefaultLimit) of the
// user's entries, newest first, after cursor (empty: from the newest), and
// the cursor of the next page (empty on the last). Errors:
// api.ErrInvalidParam (limit), api.ErrInvalidCursor.
func (l *Ledger) Entries(ctx context.Context, userID string, limit int, cursor string) ([]Entry, string, error) {
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return nil, "", api.ErrInvalidParam.WithMessage("limit must be an integer from 1 to %d", MaxLimit)
	}
	q := l.db.WithContext(ctx).Where("user_id = ?", userID)
	if cursor != "" {
		at, id, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		q = q.Where("created_at < ? OR (created_at = ? AND id < ?)", at, at, id)
	}
	var es []Entry
	if err := q.Order("created_at DESC, id DESC").Limit(limit + 1).Find(&es).Error; err != nil {
		return nil, "", fmt.Errorf("points: entries: %w", err)
	}
	for i := range es {
		es[i].CreatedAt = es[i].CreatedAt.UTC()
	}
	next := ""
	if len(es) > limit {
		es = es[:limit]
		last := es[limit-1]
		next = encodeCursor(last.CreatedAt, last.ID)
	}
	return es, next, nil
}

// A cursor is base64url of "<created_at in Unix microseconds>.<id>".
func encodeCursor(at time.Time, id string) string {
	raw := strconv.FormatInt(storage.Now(at).UnixMicro(), 10) + "." + id
	return api.EncodeCursor([]byte(raw))
}

func decodeCursor(s string) (time.Time, string, error) {
	raw, err := api.DecodeCursor(s)
	if err != nil {
		return time.Time{}, "", api.ErrInvalidCursor
	}
	ts, id, ok := strings.Cut(string(raw), ".")
	us, perr := strconv.ParseInt(ts, 10, 64)
	if !ok || id == "" || len(id) > 64 || perr != nil || us < 0 {
		return time.Time{}, "", api.ErrInvalidCursor
	}
	return time.UnixMicro(us).UTC(), id, nil
}
