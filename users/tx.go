package users

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/storage"
)

// Tx is a transaction of the user record, the one way other packages change
// users and wallets. Its operations tell the TxHook (the partner webhooks'
// outbox) and the EventHook (the activity log) inside the transaction, and
// remember which users changed; InTx drops them from every cache after the
// commit, and only then. A feature package writes its own tables through
// DB, in the same transaction.
type Tx struct {
	s       *Store
	db      *gorm.DB
	ctx     context.Context
	changed []string
}

// InTx runs fn in one database transaction. When fn returns nil the
// transaction commits and every user it changed is invalidated in the
// caches (this instance's and, through the bus, the others'); otherwise
// it rolls back and fn's error is returned unchanged.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	_, err := s.inTx(ctx, fn)
	return err
}

// inTx is InTx that also returns the IDs it invalidated.
func (s *Store) inTx(ctx context.Context, fn func(tx *Tx) error) ([]string, error) {
	var t *Tx
	err := s.db.WithContext(ctx).Transaction(func(db *gorm.DB) error {
		t = &Tx{s: s, db: db, ctx: ctx}
		return fn(t)
	})
	if err != nil {
		return nil, err
	}
	ids := slices.Compact(t.changed)
	if len(ids) > 0 {
		s.onChange(ctx, ids...)
	}
	return ids, nil
}

// DB is the transaction, for the caller's own tables. Writing users or
// wallets through it bypasses the hooks and the caches: use Tx's
// operations for those.
func (t *Tx) DB() *gorm.DB { return t.db }

// Context is the context InTx was given.
func (t *Tx) Context() context.Context { return t.ctx }

// Now is the store's clock at database resolution.
func (t *Tx) Now() time.Time { return t.s.Now() }

// Get reads user id as this transaction sees it: ErrNotFound.
func (t *Tx) Get(id string) (*User, error) { return t.s.GetTx(t.ctx, t.db, id) }

// invalidate marks users to drop from the caches after the commit.
func (t *Tx) invalidate(ids ...string) { t.changed = append(t.changed, ids...) }

// Changed tells the TxHook of change c inside the transaction and drops
// c.UserID from the caches after the commit.
func (t *Tx) Changed(c Change) error {
	if c.Kind != ChangeCreated { // a user created here is in no cache yet
		t.invalidate(c.UserID)
	}
	if t.s.txHook == nil {
		return nil
	}
	return t.s.txHook(t.db, c)
}

// updated is Changed(ChangeUpdated) for each of ids.
func (t *Tx) updated(ids ...string) error {
	for _, id := range ids {
		if err := t.Changed(Change{Kind: ChangeUpdated, UserID: id}); err != nil {
			return err
		}
	}
	return nil
}

// Event records security event typ of user userID in the activity log
// (the EventHook), inside the transaction.
func (t *Tx) Event(userID, typ string, detail map[string]any) error {
	if t.s.events == nil {
		return nil
	}
	return t.s.events(t.ctx, t.db, userID, typ, detail)
}

// Touch moves users' updated_at to now, for a change of what a partner
// knows of them (GET /v1/partner/users?updated_since= lists them again),
// and drops them from the caches after the commit. No webhook event: the
// record a user sees did not change.
func (t *Tx) Touch(ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := t.db.Model(&User{}).Where("id IN ?", ids).Update("updated_at", t.Now()).Error; err != nil {
		return fmt.Errorf("users: touch: %w", err)
	}
	t.invalidate(ids...)
	return nil
}

// touchUpdated is Touch and ChangeUpdated for each of ids: what a change
// of a user's own record (its wallets, its email) does.
func (t *Tx) touchUpdated(ids ...string) error {
	if err := t.Touch(ids...); err != nil {
		return err
	}
	return t.updated(ids...)
}

// Lock locks user id's row until the transaction ends (see lockUser):
// ErrNotFound.
func (t *Tx) Lock(id string) error { return lockUser(t.db, id) }

// LoginMethods counts the ways user id can log in: its wallets, its email
// (with a password, or a mailed code: any email will do for that) and the
// login methods other packages own, which they count themselves (the
// LoginMethodCounter: a partner's identities). It first
// locks the user (Lock) until the transaction ends, so that a caller
// removing a login method (an unlink, a partner removing its identity)
// counts what every concurrent removal has left, and two of them cannot
// together leave none. A user that does not exist has none.
func (t *Tx) LoginMethods(id string) (int64, error) {
	if err := t.Lock(id); err != nil {
		if errors.Is(err, ErrNotFound) {
			return 0, nil
		}
		return 0, err
	}
	n, err := ownLoginMethods(t.db, id)
	if err != nil || t.s.otherLogins == nil {
		return n, err
	}
	others, err := t.s.otherLogins(t.db, id)
	if err != nil {
		return 0, fmt.Errorf("users: count login methods: %w", err)
	}
	return n + others, nil
}

// Delete removes user id and everything it owns (see Store.Delete),
// telling the TxHook first (ChangeDeleted, while the user's identities
// still exist; removed names identities this transaction already deleted)
// and then that its referees lost their referrer (ChangeUpdated); the
// user, its referrer and its referees are dropped from the caches after
// the commit. Errors: ErrNotFound.
func (t *Tx) Delete(id string, removed ...RemovedIdentity) error {
	var referees []string
	if err := t.db.Model(&User{}).Where("referrer_id = ?", id).Pluck("id", &referees).Error; err != nil {
		return fmt.Errorf("users: delete: %w", err)
	}
	if err := t.Changed(Change{Kind: ChangeDeleted, UserID: id, Removed: removed}); err != nil {
		return err
	}
	changed, err := deleteUser(t.db, id, referees, t.Now())
	if err != nil {
		return err
	}
	t.invalidate(changed...)
	return t.updated(referees...)
}

// InsertFirstWallet links the first wallet of a user created in this
// transaction (inside Create's attach): it is primary, and a unique
// violation means another user has it (ErrWalletTaken, for the caller to
// read the winner). It saves the owner lookup and the count of a link on
// every first login.
func (t *Tx) InsertFirstWallet(w *Wallet) error { return insertFirstWallet(t.db, w) }

// VerifyEmail marks user id's email verified; with setPassword it also
// sets the password hash to passwordHash in the same statement: nil
// removes the password (a sign-in by mailed code to an account whose
// unverified password someone else may have set), a hash is a reset's. It
// tells the TxHook when the user was not verified before (wasVerified
// false). Errors: ErrNotFound.
func (t *Tx) VerifyEmail(id string, wasVerified, setPassword bool, passwordHash *string) error {
	set := map[string]any{"email_verified": true, "updated_at": t.Now()}
	if setPassword {
		set["password_hash"] = passwordHash
	}
	res := t.db.Model(&User{}).Where("id = ?", id).Updates(set)
	if res.Error != nil {
		return fmt.Errorf("users: verify email: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	t.invalidate(id)
	if wasVerified {
		return nil
	}
	return t.updated(id)
}

// ConfirmEmail sets user id's email to the verified address email and
// returns the address it had before (nil for none). Errors: ErrEmailTaken
// when another account has it, ErrNotFound.
func (t *Tx) ConfirmEmail(id, email string) (before *string, err error) {
	var u User
	if err := t.db.Select("id", "email").Where("id = ?", id).Limit(1).Find(&u).Error; err != nil {
		return nil, fmt.Errorf("users: confirm email: %w", err)
	}
	if u.ID == "" {
		return nil, ErrNotFound
	}
	res := t.db.Model(&User{}).Where("id = ?", id).
		Updates(map[string]any{"email": email, "email_key": EmailKey(email), "email_verified": true, "updated_at": t.Now()})
	if res.Error != nil {
		if uniqueEmail.Violates(res.Error) {
			return nil, ErrEmailTaken
		}
		return nil, fmt.Errorf("users: confirm email: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, ErrNotFound
	}
	t.invalidate(id)
	return u.Email, t.updated(id)
}

// SetPasswordHash replaces user id's password hash (nil removes the
// password). Errors: ErrNotFound.
func (t *Tx) SetPasswordHash(id string, hash *string) error {
	res := t.db.Model(&User{}).Where("id = ?", id).Updates(map[string]any{"password_hash": hash, "updated_at": t.Now()})
	if res.Error != nil {
		return fmt.Errorf("users: set password: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	t.invalidate(id)
	return nil
}

// AddPoints moves user userID's points balance by amount, unless the
// balance would leave [0, max]: it returns the new balance, or ok false
// when the balance is left as it was for that reason. Errors: ErrNotFound.
// The caller (the points ledger) tells the change with Changed.
func (t *Tx) AddPoints(userID string, amount, max int64) (balance int64, ok bool, err error) {
	err = t.db.Raw(`UPDATE users SET points = points + ?, updated_at = ?
		WHERE id = ? AND points + ? BETWEEN 0 AND ?
		RETURNING points`, amount, t.Now(), userID, amount, max).Row().Scan(&balance)
	switch {
	case err == nil:
		return balance, true, nil
	case errors.Is(err, sql.ErrNoRows):
		// Out of range, or no such user: tell which.
		var n int64
		if err := t.db.Model(&User{}).Where("id = ?", userID).Count(&n).Error; err != nil {
			return 0, false, fmt.Errorf("users: add points: %w", err)
		}
		if n == 0 {
			return 0, false, ErrNotFound
		}
		return 0, false, nil
	case storage.CheckViolation(err):
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("users: add points: %w", err)
}
