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

// SetTxHook installs the hook (at wiring, before serving).
func (s *Store) SetTxHook(h TxHook) { s.txHook = h }

// ChangedTx tells the TxHook, inside tx, of a change of user c.UserID. Every
// transaction that changes what a user looks like calls it (the store's own,
// and those of feature packages writing users: partners, points,
// referrals).
func (s *Store) ChangedTx(tx *gorm.DB, c Change) error {
	if s.txHook == nil {
		return nil
	}
	return s.txHook(tx, c)
}

// updatedTx tells the hook that users ids were updated.
func (s *Store) updatedTx(tx *gorm.DB, ids ...string) error {
	for _, id := range ids {
		if err := s.ChangedTx(tx, Change{Kind: ChangeUpdated, UserID: id}); err != nil {
			return err
		}
	}
	return nil
}

// DeleteInTx deletes user id inside tx as DeleteTx does, telling the hook
// first (ChangeDeleted, while the user's identities still exist; removed
// names identities tx already deleted) and then that its referees lost
// their referrer (ChangeUpdated).
func (s *Store) DeleteInTx(tx *gorm.DB, id string, removed ...RemovedIdentity) ([]string, error) {
	var referees []string
	if err := tx.Model(&User{}).Where("referrer_id = ?", id).Pluck("id", &referees).Error; err != nil {
		return nil, err
	}
	if err := s.ChangedTx(tx, Change{Kind: ChangeDeleted, UserID: id, Removed: removed}); err != nil {
		return nil, err
	}
	changed, err := DeleteTx(tx, id, s.Now())
	if err != nil {
		return nil, err
	}
	if err := s.updatedTx(tx, referees...); err != nil {
		return nil, err
	}
	return changed, nil
}
