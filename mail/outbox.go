// Package mail owns outgoing email: a durable outbox in the database, a
// sender that delivers it over SMTP with retries, and the templates mails
// are rendered from.
//
// A mail is a row of mail_outbox written in the transaction of the request
// that causes it (Outbox.Enqueue takes that transaction), so a 2xx answer
// means the mail is durably queued and a rolled-back request sends nothing.
// The row holds the rendered mail (which may contain a one-time code) until
// it is sent or given up and then pruned after the retention period.
package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/walletauth/walletauth/storage"
)

// Statuses of an outbox row.
const (
	StatusPending = "pending"
	StatusSent    = "sent"
	StatusFailed  = "failed" // given up: permanent refusal or too old
)

// Row is a row of mail_outbox.
type Row struct {
	ID            string `gorm:"primaryKey"`
	Kind          string
	ToAddr        string
	Subject       string
	TextBody      string
	HTMLBody      string `gorm:"column:html_body"`
	MessageID     string
	Status        string
	Attempts      int64
	NextAttemptAt time.Time
	LockedUntil   *time.Time
	GiveUpAt      time.Time
	LastError     *string
	CreatedAt     time.Time
	DoneAt        *time.Time
}

// TableName is the outbox table.
func (Row) TableName() string { return "mail_outbox" }

// Message is a rendered mail to queue.
type Message struct {
	Kind    string // what caused it (login_code, password_reset, verify_email); for operators
	To      string
	Subject string
	Text    string
	HTML    string
}

// Outbox is the mail_outbox table.
type Outbox struct {
	db     *storage.DB
	now    func() time.Time
	giveUp time.Duration
	domain string // of generated Message-IDs
}

// NewOutbox returns the outbox over db. A mail not delivered within giveUp
// of being queued is given up (recorded as failed). domain is the right
// side of the Message-IDs it generates.
func NewOutbox(db *storage.DB, now func() time.Time, giveUp time.Duration, domain string) *Outbox {
	if now == nil {
		now = time.Now
	}
	if domain == "" {
		domain = "walletauth.invalid"
	}
	return &Outbox{db: db, now: now, giveUp: giveUp, domain: domain}
}

// DB is the outbox's database, for callers that open the transaction an
// Enqueue joins.
func (o *Outbox) DB() *storage.DB { return o.db }

// Enqueue writes m into the outbox inside tx, the caller's transaction: the
// mail exists exactly when that transaction commits. It returns the row's ID.
func (o *Outbox) Enqueue(ctx context.Context, tx *gorm.DB, m Message) (string, error) {
	if m.To == "" || m.Subject == "" || m.Text == "" {
		return "", errors.New("mail: enqueue: a mail needs a recipient, a subject and a text")
	}
	now := storage.Now(o.now())
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mail: message id entropy: %w", err)
	}
	r := Row{
		ID:            uuid.Must(uuid.NewV7()).String(),
		Kind:          m.Kind,
		ToAddr:        m.To,
		Subject:       m.Subject,
		TextBody:      m.Text,
		HTMLBody:      m.HTML,
		MessageID:     hex.EncodeToString(b[:]) + "@" + o.domain,
		Status:        StatusPending,
		NextAttemptAt: now,
		GiveUpAt:      now.Add(o.giveUp),
		CreatedAt:     now,
	}
	if err := tx.WithContext(ctx).Create(&r).Error; err != nil {
		return "", fmt.Errorf("mail: enqueue: %w", err)
	}
	return r.ID, nil
}

// Discard deletes, inside tx, a mail Enqueue wrote in the same
// transaction: the database work of queuing a mail, with nothing left
// behind (an answer that must not tell whether a mail was queued).
func (o *Outbox) Discard(ctx context.Context, tx *gorm.DB, id string) error {
	if err := tx.WithContext(ctx).Where("id = ?", id).Delete(&Row{}).Error; err != nil {
		return fmt.Errorf("mail: discard: %w", err)
	}
	return nil
}

// List returns the newest mails first, at most limit (all when 0).
func (o *Outbox) List(ctx context.Context, limit int) ([]Row, error) {
	q := o.db.WithContext(ctx).Order("created_at DESC, id DESC")
	if limit > 0 {
		q = q.Limit(limit)
	}
	var rs []Row
	if err := q.Find(&rs).Error; err != nil {
		return nil, fmt.Errorf("mail: list: %w", err)
	}
	return rs, nil
}

// Get returns one row by ID: gorm.ErrRecordNotFound wrapped when absent.
func (o *Outbox) Get(ctx context.Context, id string) (Row, error) {
	var r Row
	if err := o.db.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return Row{}, fmt.Errorf("mail: get: %w", err)
	}
	return r, nil
}

// claim takes up to n due mails for one sending attempt, each leased for
// lease: no other sender (on any instance) takes them until the lease
// passes or the attempt is recorded. On PostgreSQL the rows are picked with
// FOR UPDATE SKIP LOCKED, so concurrent claimers never pick one row twice
// nor wait on each other; SQLite has one writer (one connection), so its
// transactions do not interleave.
func (o *Outbox) claim(ctx context.Context, n int, lease time.Duration) ([]Row, error) {
	now := storage.Now(o.now())
	var rows []Row
	err := o.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		q := tx.Where("status = ? AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until <= ?)", StatusPending, now, now).
			Order("next_attempt_at, id").Limit(n)
		if o.db.Dialect == storage.Postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
		}
		if err := q.Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		ids := make([]string, len(rows))
		for i := range rows {
			ids[i] = rows[i].ID
		}
		until := now.Add(lease)
		return tx.Model(&Row{}).Where("id IN ?", ids).
			Updates(map[string]any{"locked_until": until, "attempts": gorm.Expr("attempts + 1")}).Error
	})
	if err != nil {
		return nil, fmt.Errorf("mail: claim: %w", err)
	}
	for i := range rows {
		rows[i].Attempts++
	}
	return rows, nil
}

// markSent records a delivered mail.
func (o *Outbox) markSent(ctx context.Context, id string) error {
	now := storage.Now(o.now())
	err := o.db.WithContext(ctx).Model(&Row{}).Where("id = ?", id).
		Updates(map[string]any{"status": StatusSent, "locked_until": nil, "done_at": now, "last_error": nil}).Error
	if err != nil {
		return fmt.Errorf("mail: mark sent: %w", err)
	}
	return nil
}

// markRetry records a failed attempt to be retried at next.
func (o *Outbox) markRetry(ctx context.Context, id string, next time.Time, cause string) error {
	err := o.db.WithContext(ctx).Model(&Row{}).Where("id = ?", id).
		Updates(map[string]any{"locked_until": nil, "next_attempt_at": storage.Now(next), "last_error": truncate(cause)}).Error
	if err != nil {
		return fmt.Errorf("mail: mark retry: %w", err)
	}
	return nil
}

// markFailed records a mail given up.
func (o *Outbox) markFailed(ctx context.Context, id string, cause string) error {
	now := storage.Now(o.now())
	err := o.db.WithContext(ctx).Model(&Row{}).Where("id = ?", id).
		Updates(map[string]any{"status": StatusFailed, "locked_until": nil, "done_at": now, "last_error": truncate(cause)}).Error
	if err != nil {
		return fmt.Errorf("mail: mark failed: %w", err)
	}
	return nil
}

// Prune deletes mails sent or given up more than retention ago; it returns
// how many. Such a row still holds the mail as sent, code included.
func (o *Outbox) Prune(ctx context.Context, retention time.Duration) (int64, error) {
	cut := storage.Now(o.now()).Add(-retention)
	res := o.db.WithContext(ctx).Where("status IN ? AND done_at <= ?", []string{StatusSent, StatusFailed}, cut).Delete(&Row{})
	if res.Error != nil {
		return 0, fmt.Errorf("mail: prune: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// PruneQueuedBefore deletes every mail queued more than retention ago,
// sent or not; it returns how many. For a service with mail off, whose
// outbox is only read by developers (`walletauth mail list`): the rows,
// codes included, must not pile up for ever.
func (o *Outbox) PruneQueuedBefore(ctx context.Context, retention time.Duration) (int64, error) {
	cut := storage.Now(o.now()).Add(-retention)
	res := o.db.WithContext(ctx).Where("created_at <= ?", cut).Delete(&Row{})
	if res.Error != nil {
		return 0, fmt.Errorf("mail: prune: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// truncate keeps a recorded SMTP error short, on one line.
func truncate(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}
