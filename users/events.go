package users

import (
	"context"

	"gorm.io/gorm"
)

// Security events of wallet changes (the activity log's types).
const (
	EventWalletLinked         = "wallet.linked"
	EventWalletUnlinked       = "wallet.unlinked"
	EventWalletPrimaryChanged = "wallet.primary_changed"
	EventReferrerSet          = "referrer.set"
)

// EventHook records a security event of user userID inside tx, the
// transaction of the change: an error rolls the change back. ctx is the
// request's (the hook may read the client from it). cmd wires the activity
// log here; the users package does not know it.
type EventHook func(ctx context.Context, tx *gorm.DB, userID, typ string, detail map[string]any) error

// SetEventHook installs the hook (at wiring, before serving).
func (s *Store) SetEventHook(h EventHook) { s.events = h }
