// Package activity keeps each user's security activity log (table
// activity_events): logins, failed logins, logouts, password, email and
// wallet changes. An event is written in the transaction of the change it
// records (Record), or alone when nothing else is written (RecordAlone: a
// failed login). Entries go with their user (ON DELETE CASCADE) and are
// swept after the retention (DeleteBefore).
package activity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/internal/every"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/users"
)

// Event types (API.md "Security activity").
const (
	LoginSucceeded       = "login.succeeded"
	LoginFailed          = "login.failed"
	Logout               = "logout"
	LogoutAll            = "logout_all"
	SessionRevoked       = "session.revoked"
	PasswordChanged      = "password.changed"
	PasswordReset        = "password.reset"
	EmailVerified        = "email.verified"
	EmailChanged         = "email.changed"
	WalletLinked         = "wallet.linked"
	WalletUnlinked       = "wallet.unlinked"
	WalletPrimaryChanged = "wallet.primary_changed"
	ReferrerSet          = "referrer.set"
)

// Event is one entry to record. At zero means now (the Log's clock).
type Event struct {
	UserID    string
	Type      string
	At        time.Time
	Method    string         // empty: none
	IP        string         // empty: none
	UserAgent string         // cleaned before it is stored
	Detail    map[string]any // nil: none
}

// Row is a row of activity_events (Prepare makes one). ID is the hex of
// the nanoseconds of At (fixed width) then 8 random bytes: ids sort as
// their times do, so a page is a range of the (user_id, id) index.
type Row struct {
	ID        string `gorm:"primaryKey"`
	UserID    string
	Type      string
	At        time.Time
	Method    *string
	IP        *string
	UserAgent *string
	Detail    *string
}

// TableName is the table of events.
func (Row) TableName() string { return "activity_events" }

// Log writes and reads activity events.
type Log struct {
	db  *storage.DB
	now func() time.Time
}

// New returns the log over db; now nil means time.Now.
func New(db *storage.DB, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{db: db, now: now}
}

// Record writes e in tx, the caller's transaction (so the event commits or
// rolls back with the change it records).
func (l *Log) Record(tx *gorm.DB, e Event) error {
	r, err := l.Prepare(e)
	if err != nil {
		return err
	}
	if err := tx.Create(&r).Error; err != nil {
		return fmt.Errorf("activity: record %s: %w", e.Type, err)
	}
	return nil
}

// Insert writes rows (made by Prepare) in tx with one INSERT; none, nothing.
func Insert(tx *gorm.DB, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	if err := tx.Create(&rows).Error; err != nil {
		return fmt.Errorf("activity: record %d events: %w", len(rows), err)
	}
	return nil
}

// InsertSelect is the SQL that inserts the events the query sel returns,
// whose columns are, in this order, the ID, UserID, Type, At, Method, IP and
// UserAgent of a Row (Detail NULL): for a statement of another package
// writing events with rows of its own (auth's session writer, in a
// data-modifying WITH on PostgreSQL).
func InsertSelect(sel string) string {
	return "INSERT INTO activity_events (id, user_id, type, at, method, ip, user_agent) " + sel
}

// RecordAlone writes e on its own (an event that changes nothing else).
func (l *Log) RecordAlone(ctx context.Context, e Event) error {
	return l.Record(l.db.WithContext(ctx), e)
}

// Prepare returns the row that records e, for a writer inserting it in a
// statement of its own (auth's session writer writes a login's event in the
// statement that writes its session); Record writes it.
func (l *Log) Prepare(e Event) (Row, error) {
	at := e.At
	if at.IsZero() {
		at = l.now()
	}
	at = storage.Now(at)
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return Row{}, fmt.Errorf("activity: id entropy: %w", err)
	}
	r := Row{
		ID:        fmt.Sprintf("%016x", uint64(at.UnixNano())) + hex.EncodeToString(rnd[:]),
		UserID:    e.UserID,
		Type:      e.Type,
		At:        at,
		Method:    optional(e.Method),
		IP:        optional(e.IP),
		UserAgent: CleanText(e.UserAgent),
	}
	if e.Detail != nil {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return Row{}, fmt.Errorf("activity: detail: %w", err)
		}
		s := string(b)
		r.Detail = &s
	}
	return r, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// maxText bounds a stored User-Agent (bytes).
const maxText = 512

// CleanText is what is stored of a client-given string (a User-Agent):
// valid UTF-8 without control characters (PostgreSQL text holds no NUL),
// at most 512 bytes; nil when nothing is left.
func CleanText(s string) *string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	s = strings.TrimSpace(s)
	for len(s) > maxText {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	if s == "" {
		return nil
	}
	return &s
}

// View is one event of a page (GET …/activity).
type View struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	At        string          `json:"at"`
	Method    *string         `json:"method"`
	IP        *string         `json:"ip"`
	UserAgent *string         `json:"user_agent"`
	Detail    json.RawMessage `json:"detail"`
}

// Page is the body of GET …/activity.
type Page struct {
	Events     []View  `json:"events"`
	NextCursor *string `json:"next_cursor"`
}

// Limits of a page.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// List returns userID's events newest first, limit of them, after cursor
// (an earlier page's next_cursor; empty for the first page).
func (l *Log) List(ctx context.Context, userID string, limit int, cursor string) (Page, error) {
	q := l.db.WithContext(ctx).Where("user_id = ?", userID)
	if cursor != "" {
		raw, err := api.DecodeCursor(cursor)
		if err != nil {
			return Page{}, err
		}
		if !validID(string(raw)) {
			return Page{}, api.ErrInvalidCursor
		}
		q = q.Where("id < ?", string(raw))
	}
	var rows []Row
	if err := q.Order("id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return Page{}, fmt.Errorf("activity: list: %w", err)
	}
	p := Page{Events: make([]View, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			c := api.EncodeCursor([]byte(rows[i-1].ID))
			p.NextCursor = &c
			break
		}
		v := View{ID: r.ID, Type: r.Type, At: r.At.UTC().Format(time.RFC3339Nano), Method: r.Method, IP: r.IP, UserAgent: r.UserAgent, Detail: json.RawMessage("null")}
		if r.Detail != nil {
			v.Detail = json.RawMessage(*r.Detail)
		}
		p.Events = append(p.Events, v)
	}
	return p, nil
}

// validID reports whether id has the form of an event id (32 hex digits).
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// DeleteBefore deletes the events older than cutoff (the retention sweep)
// and returns how many.
func (l *Log) DeleteBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	res := l.db.WithContext(ctx).Where("at < ?", storage.Now(cutoff)).Delete(&Row{})
	if res.Error != nil {
		return 0, fmt.Errorf("activity: sweep: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// Sweep deletes the events older than retention every period until ctx
// ends; failures go to warn.
func (l *Log) Sweep(ctx context.Context, retention, period time.Duration, warn func(msg string, args ...any)) {
	every.Period(ctx, period, func(ctx context.Context) {
		if _, err := l.DeleteBefore(ctx, l.now().Add(-retention)); err != nil && !errors.Is(err, context.Canceled) {
			warn("deleting old activity events", "error", err)
		}
	})
}

type clientKey struct{}

type client struct{ ip, userAgent string }

// WithClient returns ctx carrying the request's client (its IP and
// User-Agent), for events recorded deeper down (UsersHook).
func WithClient(ctx context.Context, ip, userAgent string) context.Context {
	return context.WithValue(ctx, clientKey{}, client{ip, userAgent})
}

// UsersHook is the users.EventHook that records the users package's events
// (wallet changes) in their transaction, with the client of ctx
// (WithClient).
func (l *Log) UsersHook() users.EventHook {
	return func(ctx context.Context, tx *gorm.DB, userID, typ string, detail map[string]any) error {
		cl, _ := ctx.Value(clientKey{}).(client)
		return l.Record(tx, Event{UserID: userID, Type: typ, IP: cl.ip, UserAgent: cl.userAgent, Detail: detail})
	}
}
