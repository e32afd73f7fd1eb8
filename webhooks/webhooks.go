// Package webhooks tells partners' servers about changes to their users
// (users with an identity of the partner): endpoints registered through the
// partner API, an outbox written in the transaction of each change
// (Outbox.Enqueue, wired as the users.TxHook), and a Worker delivering the
// events signed as Standard Webhooks, retried on a schedule across
// restarts, one attempt at a time per event and endpoint on any number of
// instances.
package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/errs"
	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/users"
)

// Errors of the partner webhook API.
var (
	ErrInvalidURL      = errs.New("invalid_url", "url must be a public http:// or https:// URL")
	ErrInvalidEvents   = errs.New("invalid_events", "events must be a non-empty list of user.created, user.updated, user.deleted, points.changed")
	ErrWebhookNotFound = errs.New("webhook_not_found", "no such webhook")
)

// EventTypes are the events a webhook may subscribe to.
var EventTypes = []string{users.ChangeCreated, users.ChangeUpdated, users.ChangeDeleted, users.ChangePoints}

// MaxEndpoints bounds a partner's webhooks: every event is stored once per
// subscribed endpoint.
const MaxEndpoints = 20

const (
	secretPrefix = "whsec_"
	secretBytes  = 32
	sealPurpose  = "webhook secret"
)

// Statuses of a delivery row.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusDropped   = "dropped"
)

// Endpoint is a row of webhook_endpoints.
type Endpoint struct {
	ID        string `gorm:"primaryKey"`
	PartnerID string
	URL       string
	Events    string // comma-separated event types
	Secret    []byte // sealed (partners.Keyring.SealFor)
	CreatedAt time.Time
}

// TableName is the endpoints' table.
func (Endpoint) TableName() string { return "webhook_endpoints" }

// EventList is the endpoint's events.
func (e Endpoint) EventList() []string { return strings.Split(e.Events, ",") }

// Delivery is a row of webhook_deliveries: one event for one endpoint.
type Delivery struct {
	ID            string `gorm:"primaryKey"` // the webhook-id of every attempt
	EndpointID    string
	EventType     string
	Payload       string
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	ClaimedUntil  *time.Time
	ClaimToken    *string
	LastStatus    *int
	LastError     *string
	CreatedAt     time.Time
	FinishedAt    *time.Time
}

// TableName is the deliveries' table.
func (Delivery) TableName() string { return "webhook_deliveries" }

// Outbox owns the webhook tables: endpoints and the events waiting for
// delivery.
type Outbox struct {
	db           *storage.DB
	users        *users.Store
	keys         *partners.Keyring
	now          func() time.Time
	allowPrivate bool
}

// NewOutbox returns the outbox over db. allowPrivate lets endpoints point
// at loopback and private addresses (WALLETAUTH_WEBHOOK_ALLOW_PRIVATE).
func NewOutbox(db *storage.DB, us *users.Store, keys *partners.Keyring, now func() time.Time, allowPrivate bool) *Outbox {
	if now == nil {
		now = time.Now
	}
	return &Outbox{db: db, users: us, keys: keys, now: now, allowPrivate: allowPrivate}
}

// Created is a registered endpoint with its secret, shown once.
type Created struct {
	Endpoint
	PlainSecret string
}

// Create registers an endpoint of partner partnerID. Errors: ErrInvalidURL,
// ErrInvalidEvents, api.ErrInvalidParam (MaxEndpoints reached).
func (o *Outbox) Create(ctx context.Context, partnerID, rawURL string, events []string) (*Created, error) {
	u, err := checkURL(rawURL, o.allowPrivate)
	if err != nil {
		return nil, err
	}
	evs, err := checkEvents(events)
	if err != nil {
		return nil, err
	}
	var key [secretBytes]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("webhooks: secret: %w", err)
	}
	secret := secretPrefix + base64.StdEncoding.EncodeToString(key[:])
	e := Endpoint{
		ID: "wh_" + uuid.Must(uuid.NewV7()).String(), PartnerID: partnerID, URL: u,
		Events: strings.Join(evs, ","), CreatedAt: storage.Now(o.now()),
	}
	if e.Secret, err = o.keys.SealFor(sealPurpose, e.ID, secret); err != nil {
		return nil, fmt.Errorf("webhooks: seal secret: %w", err)
	}
	err = o.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The partner's row is locked so concurrent creates count each other.
		if err := partners.Lock(tx, o.db.Dialect, partnerID); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&Endpoint{}).Where("partner_id = ?", partnerID).Count(&n).Error; err != nil {
			return err
		}
		if n >= MaxEndpoints {
			return api.ErrInvalidParam.WithMessage("a partner has at most %d webhooks: delete one first", MaxEndpoints)
		}
		return tx.Create(&e).Error
	})
	if err != nil {
		var ae *errs.Error
		if errors.As(err, &ae) {
			return nil, err
		}
		return nil, fmt.Errorf("webhooks: create: %w", err)
	}
	return &Created{Endpoint: e, PlainSecret: secret}, nil
}

func checkEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, ErrInvalidEvents
	}
	var out []string
	for _, e := range events {
		if !slices.Contains(EventTypes, e) {
			return nil, ErrInvalidEvents.WithMessage("unknown event type %q: want user.created, user.updated, user.deleted or points.changed", e)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// List returns partner partnerID's endpoints, oldest first.
func (o *Outbox) List(ctx context.Context, partnerID string) ([]Endpoint, error) {
	var es []Endpoint
	if err := o.db.WithContext(ctx).Where("partner_id = ?", partnerID).Order("created_at, id").Find(&es).Error; err != nil {
		return nil, fmt.Errorf("webhooks: list: %w", err)
	}
	return es, nil
}

// Delete removes partner partnerID's endpoint id and its undelivered
// events: ErrWebhookNotFound (also for another partner's endpoint).
func (o *Outbox) Delete(ctx context.Context, partnerID, id string) error {
	res := o.db.WithContext(ctx).Where("id = ? AND partner_id = ?", id, partnerID).Delete(&Endpoint{})
	if res.Error != nil {
		return fmt.Errorf("webhooks: delete: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrWebhookNotFound
	}
	return nil
}

// Event is the body of a webhook.
type Event struct {
	Type      string    `json:"type"`
	Timestamp string    `json:"timestamp"`
	Data      EventData `json:"data"`
}

// EventData is an event's data.
type EventData struct {
	ExternalID string      `json:"external_id"`
	User       *users.View `json:"user,omitempty"` // absent for user.deleted
	Points     *int64      `json:"points,omitempty"`
	Amount     *int64      `json:"amount,omitempty"`
	Reason     *string     `json:"reason,omitempty"`
	EntryID    *string     `json:"entry_id,omitempty"`
}

type target struct {
	ID         string
	Events     string
	ExternalID string
}

// endpointsOf returns the endpoints of the identities' partners, one
// target per identity and endpoint, in endpoint order.
func endpointsOf(tx *gorm.DB, ids []partners.IdentityRef) ([]target, error) {
	partnerIDs := make([]string, 0, len(ids))
	for _, id := range ids {
		if !slices.Contains(partnerIDs, id.PartnerID) {
			partnerIDs = append(partnerIDs, id.PartnerID)
		}
	}
	var eps []struct{ ID, PartnerID, Events string }
	if err := tx.Model(&Endpoint{}).Select("id", "partner_id", "events").
		Where("partner_id IN ?", partnerIDs).Order("id").Scan(&eps).Error; err != nil {
		return nil, fmt.Errorf("webhooks: find endpoints: %w", err)
	}
	var targets []target
	for _, e := range eps {
		for _, id := range ids {
			if id.PartnerID == e.PartnerID {
				targets = append(targets, target{ID: e.ID, Events: e.Events, ExternalID: id.ExternalID})
			}
		}
	}
	return targets, nil
}

// Enqueue stores, inside tx (the transaction of the change), the event of
// change c for every endpoint subscribed to it of every partner the user
// has an identity of. It is the users.TxHook: the events commit or roll
// back with the change. A user.deleted must be told before the user's
// identities are deleted (users.Tx.Delete does).
func (o *Outbox) Enqueue(tx *gorm.DB, c users.Change) error {
	ids, err := partners.ActiveIdentities(tx, c.UserID)
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	if len(c.Removed) > 0 { // identities the change's transaction already deleted
		partnerIDs := make([]string, len(c.Removed))
		for i, r := range c.Removed {
			partnerIDs[i] = r.PartnerID
		}
		enabled, err := partners.Enabled(tx, partnerIDs)
		if err != nil {
			return fmt.Errorf("webhooks: %w", err)
		}
		for _, r := range c.Removed {
			if enabled[r.PartnerID] {
				ids = append(ids, partners.IdentityRef{PartnerID: r.PartnerID, ExternalID: r.ExternalID})
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	targets, err := endpointsOf(tx, ids)
	if err != nil {
		return err
	}
	targets = slices.DeleteFunc(targets, func(t target) bool {
		return !slices.Contains(strings.Split(t.Events, ","), c.Kind)
	})
	if len(targets) == 0 {
		return nil
	}
	now := storage.Now(o.now())
	data := EventData{}
	if c.Kind != users.ChangeDeleted {
		ctx := tx.Statement.Context
		if ctx == nil {
			ctx = context.Background()
		}
		u, err := o.users.GetTx(ctx, tx, c.UserID)
		if err != nil {
			return fmt.Errorf("webhooks: read user: %w", err)
		}
		v := u.View()
		data.User = &v
	}
	if p := c.Points; p != nil {
		data.Points, data.Amount, data.Reason, data.EntryID = &p.Balance, &p.Amount, &p.Reason, &p.EntryID
	}
	rows := make([]Delivery, 0, len(targets))
	for _, t := range targets {
		d := data
		d.ExternalID = t.ExternalID
		body, err := json.Marshal(Event{Type: c.Kind, Timestamp: now.Format(time.RFC3339Nano), Data: d})
		if err != nil {
			return fmt.Errorf("webhooks: encode event: %w", err)
		}
		rows = append(rows, Delivery{
			ID: "msg_" + uuid.Must(uuid.NewV7()).String(), EndpointID: t.ID, EventType: c.Kind, Payload: string(body),
			Status: StatusPending, NextAttemptAt: now, CreatedAt: now,
		})
	}
	if err := tx.Create(&rows).Error; err != nil {
		return fmt.Errorf("webhooks: store events: %w", err)
	}
	return nil
}
