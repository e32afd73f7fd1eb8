package users

import "gorm.io/gorm"

// Kinds of Change, named as the partner webhook event types they become.
const (
	ChangeCreated = "user.created"   // a partner login registered the user
	ChangeUpdated = "user.updated"   // username, language, email, email_verified, wallets or referrer
	ChangeDeleted = "user.deleted"   // told before the rows go, so the user's identities can still be read
	ChangePoints  = "points.changed" // a points ledger entry was applied
)

// Change is one change of a user, told to the TxHook inside the
// transaction that makes it.
type Change struct {
	Kind   string
	UserID string
	Points *PointsChange // ChangePoints only
	// Removed are partner identities of the user that this transaction
	// deleted before the change (a partner removing its users): their
	// partners are told too, although the identity is gone.
	Removed []RemovedIdentity
}

// RemovedIdentity is a partner identity deleted in the change's transaction.
type RemovedIdentity struct {
	PartnerID, ExternalID string
}

// PointsChange is what a points change did.
type PointsChange struct {
	Balance int64 // the balance after the change
	Amount  int64
	Reason  string
	EntryID string
}

// TxHook is told of every change of a user inside the change's
// transaction, before it commits: what it writes commits or rolls back with
// the change, and an error it returns rolls the change back. cmd wires the
// partner webhooks' outbox here (webhooks.Outbox.Enqueue); the users
// package does not know it.
type TxHook func(tx *gorm.DB, c Change) error

// SetTxHook installs the hook (at wiring, before serving). Tx.Changed
// calls it.
func (s *Store) SetTxHook(h TxHook) { s.txHook = h }
