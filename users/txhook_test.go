package users_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

// The TxHook runs inside the change's transaction: it sees the change (or,
// for a deletion, the user still there), and its error undoes the change.
func TestTxHookRunsInsideTheChange(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		ctx := context.Background()
		referrer := f.create(t, users.NewUser{})
		u := f.create(t, users.NewUser{ReferralCode: referrer.ReferralCode})
		var seen []string
		fail := errors.New("hook refused")
		refuse := false
		f.store.SetTxHook(func(tx *gorm.DB, c users.Change) error {
			var got users.User
			if err := tx.Select("id", "username").Where("id = ?", c.UserID).Take(&got).Error; err != nil {
				return err
			}
			seen = append(seen, c.Kind+":"+c.UserID+":"+got.Username)
			if refuse {
				return fail
			}
			return nil
		})

		name := "hooked_name"
		if _, err := f.store.Update(ctx, u.ID, users.Patch{Username: &name}); err != nil {
			t.Fatal(err)
		}
		if want := []string{"user.updated:" + u.ID + ":hooked_name"}; !slices.Equal(seen, want) {
			t.Fatalf("hook saw %v, want %v (the new name, inside the transaction)", seen, want)
		}

		seen, refuse = nil, true
		other := "refused_name"
		if _, err := f.store.Update(ctx, u.ID, users.Patch{Username: &other}); !errors.Is(err, fail) {
			t.Fatalf("Update with a failing hook: %v", err)
		}
		if err := f.store.Delete(ctx, referrer.ID); !errors.Is(err, fail) {
			t.Fatalf("Delete with a failing hook: %v", err)
		}
		got, err := f.store.Get(ctx, u.ID)
		if err != nil || got.Username != "hooked_name" {
			t.Fatalf("a refused update was kept: %+v %v", got, err)
		}
		if _, err := f.store.Get(ctx, referrer.ID); err != nil {
			t.Fatalf("a refused deletion was kept: %v", err)
		}

		// Deletion: told before the rows go, then the referee's update.
		seen, refuse = nil, false
		if err := f.store.Delete(ctx, referrer.ID); err != nil {
			t.Fatal(err)
		}
		if want := []string{"user.deleted:" + referrer.ID + ":" + referrer.Username, "user.updated:" + u.ID + ":hooked_name"}; !slices.Equal(seen, want) {
			t.Fatalf("hook saw %v, want %v", seen, want)
		}
	})
}
