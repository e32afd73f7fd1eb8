package users_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/cache"
	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

// fixture is a store over a fresh database with a fake clock, recording
// which users it reported changed.
type fixture struct {
	db    *storage.DB
	store *users.Store
	clock *clocktest.Clock

	mu      sync.Mutex
	changed []string
}

func newFixture(db *storage.DB) *fixture {
	f := &fixture{db: db, clock: clocktest.New(time.Date(2026, 1, 22, 8, 0, 0, 0, time.UTC))}
	f.store = users.NewStore(db, f.clock.Now, func(_ context.Context, ids ...string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.changed = append(f.changed, ids...)
	})
	return f
}

func (f *fixture) takeChanged() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.changed
	f.changed = nil
	slices.Sort(c)
	return c
}

func (f *fixture) create(t *testing.T, nu users.NewUser) *users.User {
	t.Helper()
	u, err := f.store.Create(context.Background(), nu, nil)
	if err != nil {
		t.Fatalf("Create(%+v): %v", nu, err)
	}
	return u
}

func (f *fixture) get(t *testing.T, id string) *users.User {
	t.Helper()
	u, err := f.store.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return u
}

func (f *fixture) count(t *testing.T, table, userID string) int64 {
	t.Helper()
	var n int64
	if err := f.db.Table(table).Where("user_id = ?", userID).Count(&n).Error; err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func ptr[T any](v T) *T { return &v }

// addr is a 20-byte address whose bytes are all b.
func addr(b byte) []byte {
	a := make([]byte, 20)
	for i := range a {
		a[i] = b
	}
	return a
}

func (f *fixture) addWallet(t *testing.T, userID string, a []byte) *users.User {
	t.Helper()
	u, err := f.store.AddWallet(context.Background(), users.Wallet{Address: a, UserID: userID, ChainID: 1, Type: users.WalletEOA})
	if err != nil {
		t.Fatalf("AddWallet(%x): %v", a, err)
	}
	return u
}

// primaries returns the addresses of u's primary wallets (want one).
func primaries(u *users.User) [][]byte {
	var out [][]byte
	for _, w := range u.Wallets {
		if w.IsPrimary {
			out = append(out, w.Address)
		}
	}
	return out
}

func wantPrimary(t *testing.T, u *users.User, a []byte) {
	t.Helper()
	p := primaries(u)
	if len(p) != 1 || string(p[0]) != string(a) {
		t.Fatalf("primary wallets = %x, want only %x", p, a)
	}
	if v := u.View(); v.Address == nil || *v.Address != (users.Wallet{Address: a}).Hex() {
		t.Fatalf("view address = %v, want %s", v.Address, (users.Wallet{Address: a}).Hex())
	}
}

var (
	generatedUsernameRE = regexp.MustCompile(`^user_[a-z0-9]{10}$`)
	referralCodeRE      = regexp.MustCompile(`^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$`)
)

func TestNewReferralCode(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 5000; i++ {
		c := users.NewReferralCode()
		if !referralCodeRE.MatchString(c) || strings.ContainsAny(c, "0O1IL") {
			t.Fatalf("code %q: want 8 of 23456789ABCDEFGHJKMNPQRSTUVWXYZ", c)
		}
		if seen[c] {
			t.Fatalf("code %q generated twice in %d", c, i)
		}
		seen[c] = true
	}
}

func TestCreateGeneratesUniqueValues(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		names, codes, ids := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for i := 0; i < 100; i++ {
			u := f.create(t, users.NewUser{})
			if !generatedUsernameRE.MatchString(u.Username) {
				t.Errorf("generated username %q", u.Username)
			}
			if _, err := users.NormalizeUsername(u.Username); err != nil {
				t.Errorf("generated username %q is not a valid username", u.Username)
			}
			if !referralCodeRE.MatchString(u.ReferralCode) {
				t.Errorf("generated referral code %q", u.ReferralCode)
			}
			if names[u.Username] || codes[u.ReferralCode] || ids[u.ID] || u.ID == "" {
				t.Fatalf("duplicate generated value in %+v", u)
			}
			names[u.Username], codes[u.ReferralCode], ids[u.ID] = true, true, true
			if u.Language != "en" || u.Email != nil || u.ReferrerID != nil || u.RefereeCount != 0 {
				t.Errorf("new user defaults: %+v", u)
			}
			if !u.JoinedAt.Equal(f.clock.Now()) {
				t.Errorf("JoinedAt = %v, want the clock's %v", u.JoinedAt, f.clock.Now())
			}
		}
		// What Create returns is what Get reads back.
		u := f.create(t, users.NewUser{Username: "Round_Trip", Email: ptr("rt@example.com"), PasswordHash: ptr("$argon2id$x"), Language: "pt-BR"})
		got := f.get(t, u.ID)
		if got.Username != "round_trip" || *got.Email != "rt@example.com" || *got.PasswordHash != "$argon2id$x" ||
			got.Language != "pt-BR" || got.ReferralCode != u.ReferralCode || !got.JoinedAt.Equal(u.JoinedAt) || len(got.Wallets) != 0 {
			t.Errorf("Get = %+v, want %+v", got, u)
		}
	})
}

func TestCreateValidation(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		ctx := context.Background()
		for _, name := range []string{"ab", "bad-name", strings.Repeat("x", 33), "ümlaut"} {
			if _, err := f.store.Create(ctx, users.NewUser{Username: name}, nil); !errors.Is(err, users.ErrInvalidUsername) {
				t.Errorf("Create username %q: %v, want ErrInvalidUsername", name, err)
			}
		}
		if _, err := f.store.Create(ctx, users.NewUser{Language: "not a tag"}, nil); !errors.Is(err, users.ErrInvalidLanguage) {
			t.Errorf("Create bad language: %v, want ErrInvalidLanguage", err)
		}
		f.create(t, users.NewUser{Username: "alice", Email: ptr("Alice@Example.com")})
		if _, err := f.store.Create(ctx, users.NewUser{Username: "ALICE"}, nil); !errors.Is(err, users.ErrUsernameTaken) {
			t.Errorf("Create ALICE after alice: %v, want ErrUsernameTaken", err)
		}
		if _, err := f.store.Create(ctx, users.NewUser{Email: ptr("alice@example.COM")}, nil); !errors.Is(err, users.ErrEmailTaken) {
			t.Errorf("Create with the same email in another case: %v, want ErrEmailTaken", err)
		}
		u, err := f.store.GetByEmail(ctx, "ALICE@example.com")
		if err != nil || u.Username != "alice" {
			t.Errorf("GetByEmail case-insensitive: %v, %v", u, err)
		}
		if _, err := f.store.GetByEmail(ctx, "nobody@example.com"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("GetByEmail unknown: %v, want ErrNotFound", err)
		}
		if _, err := f.store.Get(ctx, "no-such-id"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("Get unknown: %v, want ErrNotFound", err)
		}
	})
}

// A failing attach rolls the whole creation back and its error comes back
// unchanged.
func TestCreateAttachRollsBack(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		referrer := f.create(t, users.NewUser{})
		boom := errors.New("boom")
		var id string
		_, err := f.store.Create(context.Background(), users.NewUser{Username: "attached", ReferralCode: referrer.ReferralCode},
			func(tx *users.Tx, u *users.User) error { id = u.ID; return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("Create with failing attach: %v, want the attach error itself", err)
		}
		if _, err := f.store.Get(context.Background(), id); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("the user of a failed attach exists: %v", err)
		}
		if got := f.get(t, referrer.ID).RefereeCount; got != 0 {
			t.Errorf("referee_count after a rolled-back creation = %d, want 0", got)
		}
		f.create(t, users.NewUser{Username: "attached"}) // the name is still free
	})
}

func TestCreateWithReferralCode(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		ctx := context.Background()
		referrer := f.create(t, users.NewUser{Username: "referrer"})
		f.takeChanged()

		referee := f.create(t, users.NewUser{ReferralCode: " " + strings.ToLower(referrer.ReferralCode) + " "})
		if referee.ReferrerID == nil || *referee.ReferrerID != referrer.ID {
			t.Fatalf("ReferrerID = %v, want %s", referee.ReferrerID, referrer.ID)
		}
		if v := f.get(t, referee.ID).View(); v.Referrer == nil || *v.Referrer != "referrer" {
			t.Errorf("view referrer = %v, want referrer", v.Referrer)
		}
		if got := f.get(t, referrer.ID).RefereeCount; got != 1 {
			t.Errorf("referee_count = %d, want 1", got)
		}
		if got := f.takeChanged(); !slices.Contains(got, referrer.ID) {
			t.Errorf("changed = %v, want the referrer reported", got)
		}

		if _, err := f.store.Create(ctx, users.NewUser{Username: "orphan", ReferralCode: "ZZZZZZZZ"}, nil); !errors.Is(err, users.ErrInvalidReferralCode) {
			t.Errorf("unknown code: %v, want ErrInvalidReferralCode", err)
		}
		f.create(t, users.NewUser{Username: "orphan"}) // nothing was created
		if err := f.store.CheckReferralCode(ctx, strings.ToLower(referrer.ReferralCode)); err != nil {
			t.Errorf("CheckReferralCode of a real code: %v", err)
		}
		if err := f.store.CheckReferralCode(ctx, "ZZZZZZZZ"); !errors.Is(err, users.ErrInvalidReferralCode) {
			t.Errorf("CheckReferralCode unknown: %v", err)
		}
	})
}

// referee_count equals the number of referees under concurrent creation.
func TestConcurrentReferrals(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		referrer := f.create(t, users.NewUser{})
		const n = 20
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.store.Create(context.Background(), users.NewUser{ReferralCode: referrer.ReferralCode}, nil)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Create: %v", err)
			}
		}
		if got := f.get(t, referrer.ID).RefereeCount; got != n {
			t.Errorf("referee_count = %d, want %d", got, n)
		}
	})
}

func TestConcurrentCreateSameUsername(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		const n = 12
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			name := "racer"
			if i%2 == 1 {
				name = "RACER"
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.store.Create(context.Background(), users.NewUser{Username: name}, nil)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		ok, taken := 0, 0
		for err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, users.ErrUsernameTaken):
				taken++
			default:
				t.Errorf("Create: %v, want nil or ErrUsernameTaken", err)
			}
		}
		if ok != 1 || taken != n-1 {
			t.Errorf("%d succeeded and %d got ErrUsernameTaken, want 1 and %d", ok, taken, n-1)
		}
	})
}

func TestUpdate(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		ctx := context.Background()
		f.create(t, users.NewUser{Username: "taken"})
		u := f.create(t, users.NewUser{Username: "mine"})
		f.takeChanged()
		f.clock.Advance(time.Minute)

		got, err := f.store.Update(ctx, u.ID, users.Patch{Username: ptr("New_Name"), Language: ptr("fr")})
		if err != nil || got.Username != "new_name" || got.Language != "fr" {
			t.Fatalf("Update: %+v, %v", got, err)
		}
		if !got.UpdatedAt.Equal(f.clock.Now()) || !got.JoinedAt.Equal(u.JoinedAt) {
			t.Errorf("UpdatedAt %v JoinedAt %v; want the clock's and unchanged", got.UpdatedAt, got.JoinedAt)
		}
		if c := f.takeChanged(); !slices.Equal(c, []string{u.ID}) {
			t.Errorf("changed = %v, want [%s]", c, u.ID)
		}
		if _, err := f.store.Update(ctx, u.ID, users.Patch{Username: ptr("TAKEN")}); !errors.Is(err, users.ErrUsernameTaken) {
			t.Errorf("Update to a taken name: %v, want ErrUsernameTaken", err)
		}
		if _, err := f.store.Update(ctx, u.ID, users.Patch{Username: ptr("x")}); !errors.Is(err, users.ErrInvalidUsername) {
			t.Errorf("Update to an invalid name: %v", err)
		}
		if _, err := f.store.Update(ctx, u.ID, users.Patch{Language: ptr("!!")}); !errors.Is(err, users.ErrInvalidLanguage) {
			t.Errorf("Update to an invalid language: %v", err)
		}
		if _, err := f.store.Update(ctx, "no-such-id", users.Patch{Language: ptr("de")}); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("Update unknown user: %v, want ErrNotFound", err)
		}
		if got := f.get(t, u.ID); got.Username != "new_name" || got.Language != "fr" {
			t.Errorf("after failed updates: %+v", got)
		}
	})
}

func TestSetEmail(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		ctx := context.Background()
		f.create(t, users.NewUser{Email: ptr("taken@example.com"), PasswordHash: ptr("h")})
		u := f.create(t, users.NewUser{})
		if _, err := f.store.SetEmail(ctx, u.ID, "TAKEN@example.com", "h2"); !errors.Is(err, users.ErrEmailTaken) {
			t.Errorf("SetEmail taken: %v, want ErrEmailTaken", err)
		}
		got, err := f.store.SetEmail(ctx, u.ID, "new@example.com", "h2")
		if err != nil || got.Email == nil || *got.Email != "new@example.com" || got.PasswordHash == nil || *got.PasswordHash != "h2" {
			t.Fatalf("SetEmail: %+v, %v", got, err)
		}
		if _, err := f.store.SetEmail(ctx, u.ID, "other@example.com", "h3"); !errors.Is(err, users.ErrEmailAlreadySet) {
			t.Errorf("SetEmail again: %v, want ErrEmailAlreadySet", err)
		}
		if _, err := f.store.SetEmail(ctx, "no-such-id", "x@example.com", "h"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("SetEmail unknown user: %v, want ErrNotFound", err)
		}
	})
}

func TestDeleteCascades(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		ctx := context.Background()
		grand := f.create(t, users.NewUser{Username: "grand"})
		u := f.create(t, users.NewUser{Username: "victim", ReferralCode: grand.ReferralCode})
		r1 := f.create(t, users.NewUser{ReferralCode: u.ReferralCode})
		r2 := f.create(t, users.NewUser{ReferralCode: u.ReferralCode})
		bystander := f.create(t, users.NewUser{})
		f.addWallet(t, u.ID, addr(1))
		f.addWallet(t, u.ID, addr(2))
		f.addWallet(t, bystander.ID, addr(3))
		now := f.clock.Now()
		// Maps, not raw SQL: gorm expands a []byte after "(" as a list.
		insert := func(table string, row map[string]any) {
			t.Helper()
			if err := db.Table(table).Create(row).Error; err != nil {
				t.Fatalf("insert into %s: %v", table, err)
			}
		}
		for i, id := range []string{u.ID, u.ID, bystander.ID} {
			insert("sessions", map[string]any{"token_hash": []byte(fmt.Sprintf("hash-%d-%025d", i, i)), "user_id": id, "created_at": now})
		}
		insert("partners", map[string]any{"id": "p1", "name": "P", "secret_hash": []byte("x"), "created_at": now, "updated_at": now})
		insert("partner_identities", map[string]any{"partner_id": "p1", "external_id": "e1", "user_id": u.ID, "created_at": now, "updated_at": now})
		if got := f.get(t, grand.ID).RefereeCount; got != 1 {
			t.Fatalf("grand's referee_count = %d, want 1", got)
		}
		f.takeChanged()

		if err := f.store.Delete(ctx, u.ID); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := f.store.Get(ctx, u.ID); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("Get after Delete: %v, want ErrNotFound", err)
		}
		for _, table := range []string{"wallets", "sessions", "partner_identities"} {
			if n := f.count(t, table, u.ID); n != 0 {
				t.Errorf("%s rows of the deleted user: %d, want 0", table, n)
			}
		}
		if n := f.count(t, "wallets", bystander.ID) + f.count(t, "sessions", bystander.ID); n != 2 {
			t.Errorf("bystander's wallets and sessions: %d, want 2", n)
		}
		if _, err := f.store.GetByWallet(ctx, addr(1)); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("GetByWallet of a deleted user's wallet: %v, want ErrNotFound", err)
		}
		if got := f.get(t, grand.ID).RefereeCount; got != 0 {
			t.Errorf("referrer's referee_count after Delete = %d, want 0", got)
		}
		for _, r := range []*users.User{r1, r2} {
			got := f.get(t, r.ID)
			if got.ReferrerID != nil || got.View().Referrer != nil {
				t.Errorf("referee's referrer after Delete = %v, want none", got.ReferrerID)
			}
		}
		want := []string{grand.ID, r1.ID, r2.ID, u.ID}
		slices.Sort(want)
		if got := slices.Compact(f.takeChanged()); !slices.Equal(got, want) {
			t.Errorf("changed = %v, want %v (the user, its referrer and its referees)", got, want)
		}
		if err := f.store.Delete(ctx, u.ID); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("second Delete: %v, want ErrNotFound", err)
		}
		// The username and the wallet are free again.
		v := f.create(t, users.NewUser{Username: "victim"})
		f.addWallet(t, v.ID, addr(1))
	})
}

func TestWallets(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		ctx := context.Background()
		u := f.create(t, users.NewUser{Email: ptr("w@example.com"), PasswordHash: ptr("h")})
		other := f.create(t, users.NewUser{})

		// Linked oldest first: 0x03…, then 0x02…, then 0x01…, so age and
		// address order disagree.
		got := f.addWallet(t, u.ID, addr(3))
		wantPrimary(t, got, addr(3))
		f.clock.Advance(time.Second)
		got = f.addWallet(t, u.ID, addr(2))
		wantPrimary(t, got, addr(3))
		f.clock.Advance(time.Second)
		got = f.addWallet(t, u.ID, addr(1))
		wantPrimary(t, got, addr(3))
		if len(got.Wallets) != 3 || string(got.Wallets[0].Address) != string(addr(3)) {
			t.Fatalf("wallets = %+v, want three, oldest first", got.Wallets)
		}
		v := got.View()
		if len(v.Wallets) != 3 || v.Wallets[0].Type != "eoa" || v.Wallets[0].ChainID != 1 || !v.Wallets[0].Primary || v.Wallets[1].Primary ||
			!strings.HasPrefix(v.Wallets[0].Address, "0x") || !strings.HasSuffix(v.Wallets[0].LinkedAt, "Z") {
			t.Errorf("view wallets = %+v", v.Wallets)
		}

		// Linking a wallet the user already has changes nothing.
		got = f.addWallet(t, u.ID, addr(2))
		if len(got.Wallets) != 3 {
			t.Errorf("re-linking an own wallet: %d wallets, want 3", len(got.Wallets))
		}
		if _, err := f.store.AddWallet(ctx, users.Wallet{Address: addr(2), UserID: other.ID, ChainID: 1, Type: users.WalletEOA}); !errors.Is(err, users.ErrWalletTaken) {
			t.Errorf("AddWallet of another user's wallet: %v, want ErrWalletTaken", err)
		}
		if owner, err := f.store.GetByWallet(ctx, addr(2)); err != nil || owner.ID != u.ID {
			t.Errorf("GetByWallet = %v, %v; want %s", owner, err, u.ID)
		}

		// SetPrimaryWallet.
		got, err := f.store.SetPrimaryWallet(ctx, u.ID, addr(1))
		if err != nil {
			t.Fatal(err)
		}
		wantPrimary(t, got, addr(1))
		if _, err := f.store.SetPrimaryWallet(ctx, other.ID, addr(2)); !errors.Is(err, users.ErrWalletNotFound) {
			t.Errorf("SetPrimaryWallet of another user's wallet: %v, want ErrWalletNotFound", err)
		}
		if _, err := f.store.SetPrimaryWallet(ctx, u.ID, addr(9)); !errors.Is(err, users.ErrWalletNotFound) {
			t.Errorf("SetPrimaryWallet of an unknown wallet: %v, want ErrWalletNotFound", err)
		}
		wantPrimary(t, f.get(t, u.ID), addr(1))

		// Removing a non-primary wallet keeps the primary.
		got, err = f.store.RemoveWallet(ctx, u.ID, addr(2))
		if err != nil {
			t.Fatal(err)
		}
		wantPrimary(t, got, addr(1))
		// Removing the primary promotes the oldest remaining wallet.
		f.clock.Advance(time.Second)
		f.addWallet(t, u.ID, addr(0))
		got, err = f.store.RemoveWallet(ctx, u.ID, addr(1))
		if err != nil {
			t.Fatal(err)
		}
		wantPrimary(t, got, addr(3))
		got, err = f.store.RemoveWallet(ctx, u.ID, addr(3))
		if err != nil {
			t.Fatal(err)
		}
		wantPrimary(t, got, addr(0))
		if _, err := f.store.RemoveWallet(ctx, other.ID, addr(0)); !errors.Is(err, users.ErrWalletNotFound) {
			t.Errorf("RemoveWallet of another user's wallet: %v, want ErrWalletNotFound", err)
		}
		// With a password left, the last wallet can go.
		got, err = f.store.RemoveWallet(ctx, u.ID, addr(0))
		if err != nil {
			t.Fatalf("RemoveWallet of the last wallet of a user with a password: %v", err)
		}
		if len(got.Wallets) != 0 || got.View().Address != nil {
			t.Errorf("after removing every wallet: %+v", got.View())
		}
	})
}

// TestGetMany: each found user is what Get reads (wallets in order, the
// referrer's name), IDs of no user are absent, duplicates and more IDs than
// one query takes are fine.
func TestGetMany(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		u1 := f.create(t, users.NewUser{})
		f.addWallet(t, u1.ID, addr(7))
		f.clock.Advance(time.Second)
		f.addWallet(t, u1.ID, addr(5))
		u2 := f.create(t, users.NewUser{})
		u3 := f.create(t, users.NewUser{ReferralCode: u1.ReferralCode})
		f.addWallet(t, u3.ID, addr(9))

		ids := []string{u3.ID, "01900000-0000-7000-8000-000000000000", u1.ID, u2.ID, u1.ID}
		for i := range 600 {
			ids = append(ids, fmt.Sprintf("01900000-0000-7000-8000-%012d", i+1))
		}
		ids = append(ids, u2.ID) // in the second chunk too
		got, err := f.store.GetMany(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("GetMany found %d users, want 3", len(got))
		}
		for _, id := range []string{u1.ID, u2.ID, u3.ID} {
			want, _ := json.Marshal(f.get(t, id).View())
			u, ok := got[id]
			if !ok {
				t.Fatalf("user %s missing", id)
			}
			if b, _ := json.Marshal(u.View()); string(b) != string(want) {
				t.Errorf("GetMany[%s] = %s\nGet = %s", id, b, want)
			}
		}
		if len(got[u1.ID].Wallets) != 2 || got[u3.ID].ReferrerUsername == nil || *got[u3.ID].ReferrerUsername != u1.Username {
			t.Errorf("u1 wallets %d, u3 referrer %v", len(got[u1.ID].Wallets), got[u3.ID].ReferrerUsername)
		}
		if none, err := f.store.GetMany(context.Background(), nil); err != nil || len(none) != 0 {
			t.Errorf("GetMany(nil) = %v, %v", none, err)
		}
	})
}

func TestRemoveLastLoginMethod(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		ctx := context.Background()
		u := f.create(t, users.NewUser{})
		f.addWallet(t, u.ID, addr(7))
		if _, err := f.store.RemoveWallet(ctx, u.ID, addr(7)); !errors.Is(err, users.ErrLastLoginMethod) {
			t.Fatalf("RemoveWallet of the only login method: %v, want ErrLastLoginMethod", err)
		}
		wantPrimary(t, f.get(t, u.ID), addr(7))
		f.addWallet(t, u.ID, addr(8))
		if _, err := f.store.RemoveWallet(ctx, u.ID, addr(7)); err != nil {
			t.Fatalf("RemoveWallet with another wallet left: %v", err)
		}
		if _, err := f.store.RemoveWallet(ctx, u.ID, addr(8)); !errors.Is(err, users.ErrLastLoginMethod) {
			t.Errorf("RemoveWallet of the last one: %v, want ErrLastLoginMethod", err)
		}
		wantPrimary(t, f.get(t, u.ID), addr(8))
	})
}

// Two users racing to link one address: one gets it, the other
// ErrWalletTaken; each user's first wallet is primary exactly once.
func TestConcurrentAddWallet(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		const n = 8
		ids := make([]string, n)
		for i := range ids {
			ids[i] = f.create(t, users.NewUser{}).ID
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = f.store.AddWallet(context.Background(), users.Wallet{Address: addr(0xaa), UserID: ids[i], ChainID: 1, Type: users.WalletEOA})
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, users.ErrWalletTaken):
				t.Errorf("AddWallet: %v, want nil or ErrWalletTaken", err)
			}
		}
		if won != 1 {
			t.Errorf("%d users linked the same address, want 1", won)
		}
	})
}

// countQueries counts the reads db runs from now on (gorm's query and row
// callbacks).
func countQueries(t *testing.T, db *storage.DB) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	count := func(*gorm.DB) { n.Add(1) }
	if err := db.Callback().Query().Before("gorm:query").Register("test:count", count); err != nil {
		t.Fatal(err)
	}
	if err := db.Callback().Row().Before("gorm:row").Register("test:count", count); err != nil {
		t.Fatal(err)
	}
	return &n
}

// With the cache on, GetByWallet still reads the owner from the database
// (one query for the user and its wallets), and CachedByWallet gives the
// last owner seen without a query: a hint, stale when another instance's
// change has not reached this one's cache.
func TestGetByWalletCached(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		f.store.EnableCache(cache.NewLocalBus(), 1<<20, time.Minute)
		ctx := context.Background()
		queries := countQueries(t, db)
		a, b := f.create(t, users.NewUser{}), f.create(t, users.NewUser{})
		f.addWallet(t, a.ID, addr(7))
		f.addWallet(t, a.ID, addr(8)) // a keeps a login method after losing 7

		lookup := func(want string) {
			t.Helper()
			before := queries.Load()
			u, err := f.store.GetByWallet(ctx, addr(7))
			if n := queries.Load() - before; n != 1 {
				t.Errorf("GetByWallet ran %d queries, want 1 (owner and wallets together, always from the database)", n)
			}
			if want == "" {
				if !errors.Is(err, users.ErrNotFound) {
					t.Fatalf("GetByWallet = %v, %v; want ErrNotFound", u, err)
				}
				return
			}
			if err != nil || u.ID != want {
				t.Fatalf("GetByWallet = %v, %v; want user %s", u, err, want)
			}
		}
		hint := func(want string) {
			t.Helper()
			before := queries.Load()
			u, ok := f.store.CachedByWallet(addr(7))
			if n := queries.Load() - before; n != 0 {
				t.Errorf("CachedByWallet ran %d queries, want none", n)
			}
			switch {
			case want == "" && ok:
				t.Fatalf("CachedByWallet = %s, want no hint", u.ID)
			case want != "" && (!ok || u.ID != want || u.Wallets == nil):
				t.Fatalf("CachedByWallet = %v, %v; want user %s with its wallets", u, ok, want)
			}
		}
		hint("") // nothing looked up yet
		lookup(a.ID)
		hint(a.ID)
		lookup(a.ID) // still the database's answer

		// Another instance (its own cache, its invalidations never arrive
		// here) unlinks the wallet: the hint here still names a — it is only
		// a hint — while GetByWallet answers from the database.
		other := users.NewStore(db, nil, nil)
		other.EnableCache(cache.NewLocalBus(), 1<<20, time.Minute)
		if _, err := other.RemoveWallet(ctx, a.ID, addr(7)); err != nil {
			t.Fatal(err)
		}
		hint(a.ID)
		lookup("")
		if _, err := other.AddWallet(ctx, users.Wallet{Address: addr(7), UserID: a.ID, ChainID: 1, Type: users.WalletEOA}); err != nil {
			t.Fatal(err)
		}
		lookup(a.ID)

		// Moved to b here: the change drops a's record, so no hint, then
		// the next lookup names b.
		if _, err := f.store.RemoveWallet(ctx, a.ID, addr(7)); err != nil {
			t.Fatal(err)
		}
		hint("")
		lookup("")
		f.addWallet(t, b.ID, addr(7))
		lookup(b.ID)
		hint(b.ID)

		// Its owner deleted: not found, not the deleted user, and no hint.
		if err := f.store.Delete(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		hint("")
		lookup("")

		// Without a healthy bus there is no hint at all.
		plain := users.NewStore(db, nil, nil)
		if _, ok := plain.CachedByWallet(addr(8)); ok {
			t.Fatal("a store without a cache gave a hint")
		}
	})
}

// A user created while the cache is on is cached as reading it back would
// give it (same view JSON), with its wallets' owner hints, without a query;
// changing the returned user does not change the cached one. One created
// with a referrer is not.
func TestCreateCachesTheNewUser(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		f.store.EnableCache(cache.NewLocalBus(), 1<<20, time.Minute)
		ctx := context.Background()
		email := "new@example.com"
		u, err := f.store.Create(ctx, users.NewUser{Email: &email}, func(tx *users.Tx, u *users.User) error {
			w := &users.Wallet{Address: addr(3), UserID: u.ID, ChainID: 1, Type: users.WalletEOA, LinkedAt: u.JoinedAt}
			if err := tx.InsertFirstWallet(w); err != nil {
				return err
			}
			u.Wallets = []users.Wallet{*w}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := f.store.Get(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		want, err := fresh.ViewJSON()
		if err != nil {
			t.Fatal(err)
		}
		u.Username = "changed_by_the_caller"
		u.Wallets[0].ChainID = 99

		queries := countQueries(t, db)
		hinted, ok := f.store.CachedByWallet(addr(3))
		if !ok || hinted.ID != u.ID {
			t.Fatalf("CachedByWallet = %v, %v; want the new user", hinted, ok)
		}
		cached, err := f.store.GetCached(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*users.User{hinted, cached} {
			got, err := c.ViewJSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("cached view\n%s\nwant (read back)\n%s", got, want)
			}
		}
		if n := queries.Load(); n != 0 {
			t.Fatalf("%d queries, want none: the new user should be cached", n)
		}

		// With a referrer it is not cached: the referrer's username in its
		// view was read without a lock (a rename may race the create).
		_, err = f.store.Create(ctx, users.NewUser{ReferralCode: u.ReferralCode}, func(tx *users.Tx, r *users.User) error {
			return tx.InsertFirstWallet(&users.Wallet{Address: addr(4), UserID: r.ID, ChainID: 1, Type: users.WalletEOA, LinkedAt: r.JoinedAt})
		})
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := f.store.CachedByWallet(addr(4)); ok {
			t.Fatalf("a referee was cached at creation: %v", h.ID)
		}
	})
}

// A cached record's view JSON is made once and is what encoding its view
// gives; a changed user, or a changed copy, encodes afresh.
func TestViewJSONOfCachedUsers(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(db)
		f.store.EnableCache(cache.NewLocalBus(), 1<<20, time.Minute)
		ctx := context.Background()
		u := f.create(t, users.NewUser{Username: "alice_1"})
		f.addWallet(t, u.ID, addr(9))
		encode := func(u *users.User) string {
			b, err := json.Marshal(u.View())
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		viewJSON := func(u *users.User) string {
			b, err := u.ViewJSON()
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		cached, err := f.store.GetCached(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := viewJSON(cached), encode(cached); got != want || !strings.Contains(got, `"alice_1"`) {
			t.Fatalf("ViewJSON = %s, want %s", got, want)
		}
		if _, err := f.store.Update(ctx, u.ID, users.Patch{Username: ptr("alice_2")}); err != nil {
			t.Fatal(err)
		}
		again, err := f.store.GetCached(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := viewJSON(again); !strings.Contains(got, `"alice_2"`) || got != encode(again) {
			t.Fatalf("after the change: ViewJSON = %s", got)
		}
		cp := *again
		cp.Username = "alice_3"
		if got := viewJSON(&cp); !strings.Contains(got, `"alice_3"`) {
			t.Fatalf("a changed copy: ViewJSON = %s", got)
		}
	})
}
