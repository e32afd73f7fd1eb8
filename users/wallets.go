package users

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// lockUser locks user id's row until tx ends, so that changes of one
// user's login methods and wallets (link, unlink, primary) run one after
// another: each then counts what the previous one left. On PostgreSQL it is
// SELECT … FOR NO KEY UPDATE, which does not block inserts that merely
// reference the user (sessions, points); SQLite runs one transaction at a
// time on its single connection, so a read is enough there. Errors:
// ErrNotFound.
func lockUser(tx *gorm.DB, id string) error {
	q := `SELECT id FROM users WHERE id = ?`
	if tx.Name() == "postgres" {
		q += ` FOR NO KEY UPDATE`
	}
	var got []string
	if err := tx.Raw(q, id).Scan(&got).Error; err != nil {
		return fmt.Errorf("users: lock user: %w", err)
	}
	if len(got) == 0 {
		return ErrNotFound
	}
	return nil
}

// insertWallet links w to user u inside tx; the user's first wallet
// becomes primary. A wallet already linked to u is left as it is. It locks
// the user (lockUser) so that two first links cannot both become primary.
// Errors: ErrWalletTaken when another user has the address, ErrNotFound.
func insertWallet(tx *gorm.DB, w *Wallet) error {
	if err := lockUser(tx, w.UserID); err != nil {
		return err
	}
	var owner Wallet
	err := tx.Select("user_id").Where("address = ?", w.Address).Take(&owner).Error
	switch {
	case err == nil && owner.UserID == w.UserID:
		return nil
	case err == nil:
		return ErrWalletTaken
	case !errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("users: find wallet: %w", err)
	}
	var n int64
	if err := tx.Model(&Wallet{}).Where("user_id = ?", w.UserID).Count(&n).Error; err != nil {
		return fmt.Errorf("users: count wallets: %w", err)
	}
	w.IsPrimary = n == 0
	if err := tx.Create(w).Error; err != nil {
		if uniqueWallet.Violates(err) {
			return ErrWalletTaken
		}
		return fmt.Errorf("users: insert wallet: %w", err)
	}
	return nil
}

// insertFirstWallet: see Tx.InsertFirstWallet.
func insertFirstWallet(tx *gorm.DB, w *Wallet) error {
	w.IsPrimary = true
	if err := tx.Create(w).Error; err != nil {
		if uniqueWallet.Violates(err) {
			return ErrWalletTaken
		}
		return fmt.Errorf("users: insert wallet: %w", err)
	}
	return nil
}

// AddWallet links a wallet to an existing user: ErrWalletTaken, ErrNotFound.
func (s *Store) AddWallet(ctx context.Context, w Wallet) (*User, error) {
	if w.LinkedAt.IsZero() {
		w.LinkedAt = s.Now()
	}
	err := s.InTx(ctx, func(t *Tx) error {
		if err := insertWallet(t.db, &w); err != nil {
			return err
		}
		if err := t.Event(w.UserID, EventWalletLinked, map[string]any{"address": w.Hex()}); err != nil {
			return err
		}
		return t.touchUpdated(w.UserID)
	})
	if uniqueWallet.Violates(err) {
		return nil, ErrWalletTaken // a concurrent link won the race
	}
	if err != nil {
		return nil, wrap("add wallet", err)
	}
	return s.Get(ctx, w.UserID)
}

// RemoveWallet unlinks a wallet; when it was primary the oldest remaining
// wallet becomes primary. The user is locked first (Tx.Lock), so
// concurrent unlinks cannot each see another login method left and together
// remove them all. Errors: ErrWalletNotFound, ErrLastLoginMethod.
func (s *Store) RemoveWallet(ctx context.Context, userID string, addr []byte) (*User, error) {
	err := s.InTx(ctx, func(t *Tx) error {
		tx := t.db
		if err := t.Lock(userID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return ErrWalletNotFound
			}
			return err
		}
		var w Wallet
		err := tx.Where("address = ? AND user_id = ?", addr, userID).Take(&w).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ErrWalletNotFound
		}
		if err != nil {
			return err
		}
		n, err := t.LoginMethods(userID)
		if err != nil {
			return err
		}
		if n <= 1 {
			return ErrLastLoginMethod
		}
		if err := tx.Where("address = ?", addr).Delete(&Wallet{}).Error; err != nil {
			return err
		}
		if w.IsPrimary {
			var next Wallet
			err := tx.Where("user_id = ?", userID).Order("linked_at, address").Take(&next).Error
			if err == nil {
				if err := tx.Model(&Wallet{}).Where("address = ?", next.Address).Update("is_primary", true).Error; err != nil {
					return err
				}
			} else if !errors.Is(err, gorm.ErrRecordNotFound) {
				return err
			}
		}
		if err := t.Event(userID, EventWalletUnlinked, map[string]any{"address": w.Hex()}); err != nil {
			return err
		}
		return t.touchUpdated(userID)
	})
	if err != nil {
		return nil, wrap("remove wallet", err)
	}
	return s.Get(ctx, userID)
}

// SetPrimaryWallet makes one of the user's wallets its primary one:
// ErrWalletNotFound.
func (s *Store) SetPrimaryWallet(ctx context.Context, userID string, addr []byte) (*User, error) {
	err := s.InTx(ctx, func(t *Tx) error {
		tx := t.db
		// Locked like the other wallet changes: two concurrent choices of
		// primary would otherwise both set theirs (one unique violation).
		if err := t.Lock(userID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return ErrWalletNotFound
			}
			return err
		}
		var n int64
		if err := tx.Model(&Wallet{}).Where("address = ? AND user_id = ?", addr, userID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrWalletNotFound
		}
		if err := tx.Model(&Wallet{}).Where("user_id = ? AND is_primary", userID).Update("is_primary", false).Error; err != nil {
			return err
		}
		if err := tx.Model(&Wallet{}).Where("address = ?", addr).Update("is_primary", true).Error; err != nil {
			return err
		}
		if err := t.Event(userID, EventWalletPrimaryChanged, map[string]any{"address": Wallet{Address: addr}.Hex()}); err != nil {
			return err
		}
		return t.touchUpdated(userID)
	})
	if err != nil {
		return nil, wrap("set primary wallet", err)
	}
	return s.Get(ctx, userID)
}
