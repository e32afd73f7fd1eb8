package users_test

import (
	"context"
	"errors"
	"testing"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

// The store compares emails on their key (case and Unicode normalisation
// ignored), on both databases, and keeps the email as typed, in NFC.
func TestEmailKeyLookupAndUniqueness(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		ctx := context.Background()
		u := f.create(t, users.NewUser{Email: ptr("A\u0308rger@x.org"), PasswordHash: ptr("h")})
		if u.Email == nil || *u.Email != "Ärger@x.org" {
			t.Fatalf("stored email %v, want Ärger@x.org in NFC", u.Email)
		}
		for _, as := range []string{"Ärger@x.org", "ärger@x.org", "a\u0308rger@X.ORG", "ÄRGER@x.org"} {
			got, err := f.store.GetByEmail(ctx, as)
			if err != nil || got.ID != u.ID {
				t.Fatalf("GetByEmail(%q) = %v, %v; want user %s", as, got, err, u.ID)
			}
		}
		if _, err := f.store.GetByEmail(ctx, "arger@x.org"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("GetByEmail(arger@x.org): %v, want ErrNotFound (a different address)", err)
		}
		for _, again := range []string{"ärger@x.org", "ÄRGER@X.ORG", "Ärger@x.org"} {
			if _, err := f.store.Create(ctx, users.NewUser{Email: ptr(again), PasswordHash: ptr("h")}, nil); !errors.Is(err, users.ErrEmailTaken) {
				t.Errorf("Create(%q): %v, want ErrEmailTaken", again, err)
			}
		}
		other := f.create(t, users.NewUser{})
		if _, err := f.store.SetEmail(ctx, other.ID, "ärger@X.org", "h"); !errors.Is(err, users.ErrEmailTaken) {
			t.Errorf("SetEmail of another spelling: %v, want ErrEmailTaken", err)
		}
		// Full case folding: ß is ss, so these are one address too.
		f.create(t, users.NewUser{Email: ptr("straße@x.org"), PasswordHash: ptr("h")})
		if _, err := f.store.SetEmail(ctx, other.ID, "STRASSE@x.org", "h"); !errors.Is(err, users.ErrEmailTaken) {
			t.Errorf("SetEmail(STRASSE@x.org) after straße@x.org: %v, want ErrEmailTaken", err)
		}
	})
}

// Two sign-ups of one address in two spellings at once: one account.
func TestConcurrentSignupsOfOneEmail(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		ctx := context.Background()
		spellings := []string{"Ärger@x.org", "ärger@x.org", "A\u0308rger@x.org"}
		for round := 0; round < 5; round++ {
			errs := make([]error, len(spellings))
			together(len(spellings), func(i int) {
				email := string(rune('a'+round)) + spellings[i]
				_, errs[i] = f.store.Create(ctx, users.NewUser{Email: &email, PasswordHash: ptr("h")}, nil)
			})
			won := 0
			for _, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, users.ErrEmailTaken):
					t.Fatalf("round %d: Create: %v, want nil or ErrEmailTaken", round, err)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d accounts for one email, want 1", round, won)
			}
		}
	})
}
