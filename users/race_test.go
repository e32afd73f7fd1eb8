package users_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

// raceRounds is how many times each race is run: one round rarely shows a
// race, a few dozen on PostgreSQL did every time before the fix.
const raceRounds = 20

// together runs f(0..n-1) in n goroutines released at once and waits.
func together(n int, f func(i int)) {
	var start, done sync.WaitGroup
	start.Add(1)
	for i := 0; i < n; i++ {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			f(i)
		}()
	}
	start.Done()
	done.Wait()
}

// Unlinking all three wallets of a wallet-only user at once: exactly two
// succeed, the third is its last login method (the rule holds under
// concurrency, not only one request at a time).
func TestConcurrentUnlinkKeepsALoginMethod(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		ctx := context.Background()
		for round := 0; round < raceRounds; round++ {
			u := f.create(t, users.NewUser{})
			as := [][]byte{addr(byte(3 * round)), addr(byte(3*round + 1)), addr(byte(3*round + 2))}
			for _, a := range as {
				f.addWallet(t, u.ID, a)
			}
			errs := make([]error, len(as))
			together(len(as), func(i int) { _, errs[i] = f.store.RemoveWallet(ctx, u.ID, as[i]) })
			ok, last := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, users.ErrLastLoginMethod):
					last++
				default:
					t.Fatalf("round %d: RemoveWallet: %v, want nil or ErrLastLoginMethod", round, err)
				}
			}
			got := f.get(t, u.ID)
			if ok != 2 || last != 1 || len(got.Wallets) != 1 {
				t.Fatalf("round %d: %d unlinks succeeded, %d refused, %d wallets left; want 2, 1, 1", round, ok, last, len(got.Wallets))
			}
			wantPrimary(t, got, got.Wallets[0].Address)
		}
	})
}

// Two first links racing for a user with no wallet: both succeed, and
// exactly one of them is the primary wallet.
func TestConcurrentFirstLinksOnePrimary(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		ctx := context.Background()
		for round := 0; round < raceRounds; round++ {
			u := f.create(t, users.NewUser{})
			as := [][]byte{addr(byte(2*round + 100)), addr(byte(2*round + 101))}
			errs := make([]error, len(as))
			together(len(as), func(i int) {
				_, errs[i] = f.store.AddWallet(ctx, users.Wallet{Address: as[i], UserID: u.ID, ChainID: 1, Type: users.WalletEOA})
			})
			for _, err := range errs {
				if err != nil {
					t.Fatalf("round %d: AddWallet: %v, want both links to succeed", round, err)
				}
			}
			got := f.get(t, u.ID)
			if len(got.Wallets) != 2 || len(primaries(got)) != 1 {
				t.Fatalf("round %d: %d wallets, %d primary; want 2, 1", round, len(got.Wallets), len(primaries(got)))
			}
		}
	})
}

// Two requests of one user choosing different primary wallets at once: both
// succeed (the later one wins), and the user keeps exactly one primary.
func TestConcurrentSetPrimaryOnePrimary(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		ctx := context.Background()
		for round := 0; round < raceRounds; round++ {
			u := f.create(t, users.NewUser{})
			as := [][]byte{addr(byte(3 * round)), addr(byte(3*round + 1)), addr(byte(3*round + 2))}
			for _, a := range as {
				f.addWallet(t, u.ID, a)
			}
			errs := make([]error, 2)
			together(2, func(i int) { _, errs[i] = f.store.SetPrimaryWallet(ctx, u.ID, as[i+1]) })
			for _, err := range errs {
				if err != nil {
					t.Fatalf("round %d: SetPrimaryWallet: %v, want both to succeed", round, err)
				}
			}
			if p := primaries(f.get(t, u.ID)); len(p) != 1 {
				t.Fatalf("round %d: %d primary wallets, want 1", round, len(p))
			}
		}
	})
}

// A partner removing its identity of a user (deleting the user when that
// was its last login method, as partners.DeleteUsers does) while the user
// unlinks its only wallet: the user is either deleted or keeps a way to
// log in, never left with none.
func TestConcurrentIdentityRemovalAndUnlink(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		// What partners.Service.CountIdentities counts, for this test's
		// own partner_identities rows.
		f.store.SetLoginMethodCounter(func(tx *gorm.DB, userID string) (int64, error) {
			var n int64
			err := tx.Raw(`SELECT COUNT(*) FROM partner_identities WHERE user_id = ?`, userID).Scan(&n).Error
			return n, err
		})
		ctx := context.Background()
		now := f.store.Now()
		if err := db.Exec(`INSERT INTO partners (id, name, secret_hash, created_at, updated_at) VALUES ('pt', 'p', ?, ?, ?)`, []byte("h"), now, now).Error; err != nil {
			t.Fatal(err)
		}
		for round := 0; round < raceRounds; round++ {
			u := f.create(t, users.NewUser{})
			f.addWallet(t, u.ID, addr(byte(round)))
			if err := db.Exec(`INSERT INTO partner_identities (partner_id, external_id, user_id, created_at, updated_at) VALUES ('pt', ?, ?, ?, ?)`,
				u.ID, u.ID, now, now).Error; err != nil {
				t.Fatal(err)
			}
			var unlinkErr, removeErr error
			together(2, func(i int) {
				if i == 0 {
					_, unlinkErr = f.store.RemoveWallet(ctx, u.ID, addr(byte(round)))
					return
				}
				removeErr = f.store.InTx(ctx, func(tx *users.Tx) error {
					if err := tx.DB().Exec(`DELETE FROM partner_identities WHERE partner_id = 'pt' AND external_id = ?`, u.ID).Error; err != nil {
						return err
					}
					n, err := tx.LoginMethods(u.ID)
					if err != nil || n > 0 {
						return err
					}
					return tx.Delete(u.ID)
				})
			})
			// ErrNotFound: the unlink committed, and the user was deleted
			// before it could be read back.
			if removeErr != nil || (unlinkErr != nil && !errors.Is(unlinkErr, users.ErrLastLoginMethod) && !errors.Is(unlinkErr, users.ErrNotFound)) {
				t.Fatalf("round %d: identity removal: %v; unlink: %v", round, removeErr, unlinkErr)
			}
			var n int64
			if err := db.Raw(`SELECT COUNT(*) FROM users WHERE id = ?`, u.ID).Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				continue // deleted: the partner's identity was its last login method
			}
			var m int64
			err := f.store.InTx(ctx, func(tx *users.Tx) error {
				var err error
				m, err = tx.LoginMethods(u.ID)
				return err
			})
			if err != nil || m == 0 {
				t.Fatalf("round %d: the user is left with %d login methods (%v), want it deleted or with one", round, m, err)
			}
		}
	})
}
