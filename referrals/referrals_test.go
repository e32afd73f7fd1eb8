package referrals_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/referrals"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

type fixture struct {
	db    *storage.DB
	users *users.Store
	svc   *referrals.Service
	clock *clocktest.Clock

	mu      sync.Mutex
	changed map[string]int
}

func newFixture(t *testing.T, db *storage.DB) *fixture {
	t.Helper()
	f := &fixture{db: db, clock: clocktest.NewStepping(time.Date(2026, 1, 22, 8, 0, 0, 0, time.UTC), time.Millisecond), changed: map[string]int{}}
	f.users = users.NewStore(db, f.clock.Now, func(_ context.Context, ids ...string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, id := range ids {
			f.changed[id]++
		}
	})
	f.svc = referrals.NewService(f.users)
	return f
}

func (f *fixture) mustUser(t testing.TB, name, code string) *users.User {
	t.Helper()
	u, err := f.users.Create(context.Background(), users.NewUser{Username: name, ReferralCode: code}, nil)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return u
}

func (f *fixture) get(t testing.TB, id string) *users.User {
	t.Helper()
	u, err := f.users.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return u
}

// checkCounts asserts that every user's referee_count equals the number of
// users whose referrer it is.
func checkCounts(t testing.TB, db *storage.DB) {
	t.Helper()
	var bad []struct {
		ID           string
		RefereeCount int64
		Actual       int64
	}
	err := db.Raw(`SELECT u.id, u.referee_count,
		(SELECT COUNT(*) FROM users r WHERE r.referrer_id = u.id) AS actual
		FROM users u
		WHERE u.referee_count <> (SELECT COUNT(*) FROM users r WHERE r.referrer_id = u.id)`).Scan(&bad).Error
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("user %s: referee_count %d, but %d users name it as referrer", b.ID, b.RefereeCount, b.Actual)
	}
}

func wantErr(t testing.TB, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func TestSetReferrer(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		alice := f.mustUser(t, "alice", "")
		bob := f.mustUser(t, "bob", "")

		got, err := f.svc.SetReferrer(ctx, bob.ID, " "+alice.ReferralCode[:4]+toLower(alice.ReferralCode[4:])+" ")
		if err != nil {
			t.Fatalf("set referrer: %v", err)
		}
		if got.ReferrerUsername == nil || *got.ReferrerUsername != "alice" || got.ReferrerID == nil || *got.ReferrerID != alice.ID {
			t.Fatalf("bob's referrer = %v, want alice", got.ReferrerUsername)
		}
		if got.UpdatedAt.Equal(bob.UpdatedAt) {
			t.Error("bob's updated_at did not move")
		}
		a := f.get(t, alice.ID)
		if a.RefereeCount != 1 {
			t.Fatalf("alice referee_count = %d, want 1", a.RefereeCount)
		}
		if !a.UpdatedAt.After(alice.UpdatedAt) {
			t.Error("alice's updated_at did not move")
		}
		if f.changed[alice.ID] == 0 || f.changed[bob.ID] == 0 {
			t.Errorf("Changed not called for both: %v", f.changed)
		}

		carol := f.mustUser(t, "carol", "")
		_, err = f.svc.SetReferrer(ctx, bob.ID, carol.ReferralCode)
		wantErr(t, err, referrals.ErrReferrerAlreadySet, "second set")
		_, err = f.svc.SetReferrer(ctx, carol.ID, carol.ReferralCode)
		wantErr(t, err, users.ErrInvalidReferralCode, "own code")
		_, err = f.svc.SetReferrer(ctx, carol.ID, "ZZZZZZZZ")
		wantErr(t, err, users.ErrInvalidReferralCode, "unknown code")
		_, err = f.svc.SetReferrer(ctx, carol.ID, "   ")
		wantErr(t, err, users.ErrInvalidReferralCode, "empty code")
		_, err = f.svc.SetReferrer(ctx, "no-such-user", alice.ReferralCode)
		wantErr(t, err, users.ErrNotFound, "unknown user")

		// Depth 1: alice referred bob, so alice may not take bob's code.
		_, err = f.svc.SetReferrer(ctx, alice.ID, bob.ReferralCode)
		wantErr(t, err, users.ErrInvalidReferralCode, "cycle at depth 1")
		if a := f.get(t, alice.ID); a.ReferrerID != nil {
			t.Fatal("a refused set still linked alice")
		}
		checkCounts(t, db)
	})
}

func TestSetReferrerRefusesDeepCycle(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		// u0 ← u1 ← … ← u5: each referred by the previous one.
		chain := []*users.User{f.mustUser(t, "u_0", "")}
		for i := 1; i <= 5; i++ {
			chain = append(chain, f.mustUser(t, fmt.Sprintf("u_%d", i), chain[i-1].ReferralCode))
		}
		_, err := f.svc.SetReferrer(ctx, chain[0].ID, chain[5].ReferralCode)
		wantErr(t, err, users.ErrInvalidReferralCode, "cycle at depth 5")
		for i := 1; i <= 5; i++ {
			_, err := f.svc.SetReferrer(ctx, chain[0].ID, chain[i].ReferralCode)
			wantErr(t, err, users.ErrInvalidReferralCode, fmt.Sprintf("cycle at depth %d", i))
		}
		// A code outside its subtree is fine, and then u0 is no root any more.
		x := f.mustUser(t, "xxx", "")
		if _, err := f.svc.SetReferrer(ctx, chain[0].ID, x.ReferralCode); err != nil {
			t.Fatalf("set to an outsider: %v", err)
		}
		// Now x ← u0 ← … ← u5: x may not take u5's code (depth 6).
		_, err = f.svc.SetReferrer(ctx, x.ID, chain[5].ReferralCode)
		wantErr(t, err, users.ErrInvalidReferralCode, "cycle at depth 6")
		checkCounts(t, db)
	})
}

// TestRefereeCountUnderConcurrency: 1 referee, then 20 concurrent sign-ups
// with the same code; deletions; deleting the referrer.
func TestRefereeCountUnderConcurrency(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		ref := f.mustUser(t, "referrer", "")
		first := f.mustUser(t, "first", ref.ReferralCode)

		const n = 20
		ids := make([]string, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				u, err := f.users.Create(ctx, users.NewUser{Username: fmt.Sprintf("ref_%02d", i), ReferralCode: ref.ReferralCode}, nil)
				if err != nil {
					errs <- err
					return
				}
				ids[i] = u.ID
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent sign-up: %v", err)
		}
		assertCount(t, f, ref.ID, n+1)

		for _, id := range ids[:3] {
			if err := f.users.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		assertCount(t, f, ref.ID, n+1-3)
		checkCounts(t, db)

		if err := f.users.Delete(ctx, ref.ID); err != nil {
			t.Fatal(err)
		}
		var linked int64
		if err := db.Raw(`SELECT COUNT(*) FROM users WHERE referrer_id IS NOT NULL`).Row().Scan(&linked); err != nil {
			t.Fatal(err)
		}
		if linked != 0 {
			t.Fatalf("%d users still name the deleted referrer", linked)
		}
		if u := f.get(t, first.ID); u.ReferrerUsername != nil || u.ReferrerID != nil {
			t.Fatalf("first's referrer = %v after its referrer was deleted", u.ReferrerUsername)
		}
		checkCounts(t, db)
	})
}

func assertCount(t *testing.T, f *fixture, id string, want int64) {
	t.Helper()
	var actual int64
	if err := f.db.Raw(`SELECT COUNT(*) FROM users WHERE referrer_id = ?`, id).Row().Scan(&actual); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, id).RefereeCount; got != want || actual != want {
		t.Fatalf("referee_count = %d, COUNT(*) = %d, want %d", got, actual, want)
	}
}

// TestSetReferrerConcurrently: sign-ups with a code and later SetReferrer
// calls to the same referrer interleave; one user racing several codes gets
// exactly one.
func TestSetReferrerConcurrently(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		ref := f.mustUser(t, "referrer", "")
		var late []*users.User
		for i := range 10 {
			late = append(late, f.mustUser(t, fmt.Sprintf("late_%02d", i), ""))
		}
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				if _, err := f.users.Create(ctx, users.NewUser{ReferralCode: ref.ReferralCode}, nil); err != nil {
					t.Errorf("sign-up: %v", err)
				}
			})
			wg.Go(func() {
				if _, err := f.svc.SetReferrer(ctx, late[i].ID, ref.ReferralCode); err != nil {
					t.Errorf("set referrer: %v", err)
				}
			})
		}
		wg.Wait()
		assertCount(t, f, ref.ID, 20)

		// One user, ten codes at once: exactly one wins.
		target := f.mustUser(t, "target", "")
		var (
			mu   sync.Mutex
			wins int
		)
		for i := range 10 {
			wg.Go(func() {
				_, err := f.svc.SetReferrer(ctx, target.ID, late[i].ReferralCode)
				switch {
				case err == nil:
					mu.Lock()
					wins++
					mu.Unlock()
				case !errors.Is(err, referrals.ErrReferrerAlreadySet):
					t.Errorf("racing set: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d concurrent sets succeeded, want 1", wins)
		}
		checkCounts(t, db)
	})
}

// TestConcurrentSetsMakeNoCycle: pairs setting each other's code at once,
// and a ring of users each setting the next one's code at once. Whatever
// order the database picks, no cycle may come out.
func TestConcurrentSetsMakeNoCycle(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		var wg sync.WaitGroup
		const pairs = 10
		results := make([][2]error, pairs)
		for p := range pairs {
			a := f.mustUser(t, fmt.Sprintf("pa_%02d", p), "")
			b := f.mustUser(t, fmt.Sprintf("pb_%02d", p), "")
			wg.Go(func() { _, results[p][0] = f.svc.SetReferrer(ctx, a.ID, b.ReferralCode) })
			wg.Go(func() { _, results[p][1] = f.svc.SetReferrer(ctx, b.ID, a.ReferralCode) })
		}
		const ring = 12
		var members []*users.User
		for i := range ring {
			members = append(members, f.mustUser(t, fmt.Sprintf("ring_%02d", i), ""))
		}
		ringErrs := make([]error, ring)
		for i := range ring {
			wg.Go(func() {
				_, ringErrs[i] = f.svc.SetReferrer(ctx, members[i].ID, members[(i+1)%ring].ReferralCode)
			})
		}
		wg.Wait()

		for p, r := range results {
			ok := 0
			for _, err := range r {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, users.ErrInvalidReferralCode):
					t.Errorf("pair %d: %v", p, err)
				}
			}
			if ok != 1 {
				t.Errorf("pair %d: %d of the two crossed sets succeeded, want exactly 1 (%v)", p, ok, r)
			}
		}
		failed := 0
		for _, err := range ringErrs {
			if err != nil {
				if !errors.Is(err, users.ErrInvalidReferralCode) {
					t.Errorf("ring: %v", err)
				}
				failed++
			}
		}
		if failed != 1 {
			t.Errorf("ring of %d: %d sets failed, want exactly 1", ring, failed)
		}
		assertAcyclic(t, db)
		checkCounts(t, db)
	})
}

// assertAcyclic checks that every referrer chain ends at a root.
func assertAcyclic(t *testing.T, db *storage.DB) {
	t.Helper()
	var n int64
	err := db.Raw(`WITH RECURSIVE walk(start, id, depth) AS (
			SELECT id, referrer_id, 1 FROM users WHERE referrer_id IS NOT NULL
			UNION ALL
			SELECT w.start, u.referrer_id, w.depth + 1 FROM walk w JOIN users u ON u.id = w.id
			WHERE u.referrer_id IS NOT NULL AND w.depth < 1000
		)
		SELECT COUNT(*) FROM walk WHERE id = start`).Row().Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("the referral graph has a cycle (%d users reach themselves)", n)
	}
}

func TestReferees(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		ref := f.mustUser(t, "referrer", "")
		other := f.mustUser(t, "other", "")
		f.mustUser(t, "not_mine", other.ReferralCode)

		var want []string
		for i := range 25 {
			if i == 10 {
				f.clock.SetStep(0) // several referees joined in the same microsecond: id decides
			}
			if i == 15 {
				f.clock.SetStep(time.Millisecond)
			}
			u := f.mustUser(t, fmt.Sprintf("r_%02d", i), ref.ReferralCode)
			want = append(want, u.ID)
		}
		// The same instant is ordered by id.
		sortTies(t, f, want)

		var got []string
		cursor := ""
		pages := 0
		for {
			page, err := f.svc.Referees(ctx, ref.ID, 10, cursor)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if page.ReferralCode != ref.ReferralCode || page.RefereeCount != 25 {
				t.Fatalf("page header %q %d", page.ReferralCode, page.RefereeCount)
			}
			for _, r := range page.Referees {
				got = append(got, r.ID)
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if pages != 3 {
			t.Errorf("%d pages, want 3", pages)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("referees\n got %v\nwant %v", got, want)
		}

		page, err := f.svc.Referees(ctx, ref.ID, 0, "")
		if err != nil || len(page.Referees) != referrals.DefaultLimit || page.NextCursor == "" {
			t.Fatalf("default page: %d referees, cursor %q, %v", len(page.Referees), page.NextCursor, err)
		}
		page, err = f.svc.Referees(ctx, ref.ID, 25, "")
		if err != nil || len(page.Referees) != 25 || page.NextCursor != "" {
			t.Fatalf("exact page: %d referees, cursor %q, %v", len(page.Referees), page.NextCursor, err)
		}
		empty, err := f.svc.Referees(ctx, f.mustUser(t, "lonely", "").ID, 10, "")
		if err != nil || len(empty.Referees) != 0 || empty.NextCursor != "" {
			t.Fatalf("no referees: %+v, %v", empty, err)
		}

		for _, c := range []string{"!!", "bm90LWEtY3Vyc29y", "MTIz", "LTEuYWJj"} {
			_, err := f.svc.Referees(ctx, ref.ID, 10, c)
			wantErr(t, err, api.ErrInvalidCursor, "cursor "+c)
		}
		for _, l := range []int{-1, referrals.MaxLimit + 1} {
			_, err := f.svc.Referees(ctx, ref.ID, l, "")
			wantErr(t, err, api.ErrInvalidParam, fmt.Sprintf("limit %d", l))
		}
		_, err = f.svc.Referees(ctx, "no-such-user", 10, "")
		wantErr(t, err, users.ErrNotFound, "unknown user")
	})
}

// sortTies orders runs of equal joined_at in ids by id, as the database does.
func sortTies(t *testing.T, f *fixture, ids []string) {
	t.Helper()
	joined := map[string]time.Time{}
	for _, id := range ids {
		joined[id] = f.get(t, id).JoinedAt
	}
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0; j-- {
			a, b := ids[j-1], ids[j]
			if joined[a].After(joined[b]) || (joined[a].Equal(joined[b]) && a > b) {
				ids[j-1], ids[j] = b, a
			}
		}
	}
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
