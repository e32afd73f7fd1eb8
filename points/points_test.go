package points_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/points"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

type fixture struct {
	db     *storage.DB
	users  *users.Store
	ledger *points.Ledger
	clock  *clocktest.Clock

	mu      sync.Mutex
	changed map[string]int
}

func newFixture(tb testing.TB, db *storage.DB) *fixture {
	tb.Helper()
	f := &fixture{db: db, clock: clocktest.NewStepping(time.Date(2026, 1, 22, 8, 0, 0, 0, time.UTC), time.Millisecond), changed: map[string]int{}}
	f.users = users.NewStore(db, f.clock.Now, func(_ context.Context, ids ...string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, id := range ids {
			f.changed[id]++
		}
	})
	f.ledger = points.NewLedger(db, f.users, f.clock.Now)
	return f
}

func (f *fixture) mustUser(tb testing.TB, name string) *users.User {
	tb.Helper()
	u, err := f.users.Create(context.Background(), users.NewUser{Username: name}, nil)
	if err != nil {
		tb.Fatalf("create %s: %v", name, err)
	}
	return u
}

func (f *fixture) balance(tb testing.TB, id string) int64 {
	tb.Helper()
	b, err := f.ledger.Balance(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func (f *fixture) entryCount(tb testing.TB, id string) int64 {
	tb.Helper()
	var n int64
	if err := f.db.Raw(`SELECT COUNT(*) FROM points_entries WHERE user_id = ?`, id).Row().Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func wantErr(tb testing.TB, err, want error, what string) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func TestApply(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		u := f.mustUser(t, "alice")

		e, err := f.ledger.Apply(ctx, u.ID, 100, "welcome", "k1")
		if err != nil {
			t.Fatal(err)
		}
		if e.ID == "" || e.UserID != u.ID || e.Amount != 100 || e.Reason != "welcome" || e.IdempotencyKey != "k1" || e.BalanceAfter != 100 {
			t.Fatalf("entry %+v", e)
		}
		if f.changed[u.ID] != 1 {
			t.Errorf("Changed called %d times, want 1", f.changed[u.ID])
		}
		after, err := f.users.Get(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.Points != 100 || !after.UpdatedAt.After(u.UpdatedAt) {
			t.Fatalf("user after credit: points %d, updated_at %v (was %v)", after.Points, after.UpdatedAt, u.UpdatedAt)
		}

		e2, err := f.ledger.Apply(ctx, u.ID, -30, "spend", "k2")
		if err != nil || e2.BalanceAfter != 70 {
			t.Fatalf("debit: %+v, %v", e2, err)
		}

		// Replays return the first entry and change nothing.
		again, err := f.ledger.Apply(ctx, u.ID, 100, "welcome", "k1")
		if err != nil {
			t.Fatal(err)
		}
		if again != e {
			t.Fatalf("replay returned %+v, want %+v", again, e)
		}
		if b := f.balance(t, u.ID); b != 70 {
			t.Fatalf("balance %d after replay, want 70", b)
		}
		if f.changed[u.ID] != 2 {
			t.Errorf("Changed called %d times after a replay, want 2", f.changed[u.ID])
		}
		// A repeat with another amount or reason still returns the first
		// result and changes nothing.
		for _, c := range []struct {
			amount int64
			reason string
		}{{99, "welcome"}, {100, "other"}, {-5, "debit"}} {
			again, err := f.ledger.Apply(ctx, u.ID, c.amount, c.reason, "k1")
			if err != nil || again != e {
				t.Fatalf("same key, %d %q: %+v, %v; want the first entry %+v", c.amount, c.reason, again, err, e)
			}
		}
		if b := f.balance(t, u.ID); b != 70 {
			t.Fatalf("balance %d after repeats with other amounts, want 70", b)
		}

		// Keys are per user.
		bob := f.mustUser(t, "bob")
		if e, err := f.ledger.Apply(ctx, bob.ID, 5, "welcome", "k1"); err != nil || e.BalanceAfter != 5 {
			t.Fatalf("bob with alice's key: %+v, %v", e, err)
		}

		// The floor, and a failed debit leaves no entry behind.
		_, err = f.ledger.Apply(ctx, u.ID, -71, "too much", "k3")
		wantErr(t, err, points.ErrInsufficientPoints, "overdraw")
		if b := f.balance(t, u.ID); b != 70 {
			t.Fatalf("balance %d after a refused debit", b)
		}
		if n := f.entryCount(t, u.ID); n != 2 {
			t.Fatalf("%d entries, want 2", n)
		}
		if e, err := f.ledger.Apply(ctx, u.ID, -70, "all of it", "k3"); err != nil || e.BalanceAfter != 0 {
			t.Fatalf("key of a refused debit reused: %+v, %v", e, err)
		}

		for _, c := range []struct {
			name   string
			user   string
			amount int64
			reason string
			key    string
			want   error
		}{
			{"zero", u.ID, 0, "", "z", points.ErrInvalidAmount},
			{"too large", u.ID, points.MaxAmount + 1, "", "z", points.ErrInvalidAmount},
			{"too small", u.ID, -points.MaxAmount - 1, "", "z", points.ErrInvalidAmount},
			{"no key", u.ID, 1, "", "  ", points.ErrIdempotencyKeyMissing},
			{"long key", u.ID, 1, "", string(make([]byte, points.MaxKeyLength+1)), points.ErrIdempotencyKeyInvalid},
			{"long reason", u.ID, 1, string(make([]byte, points.MaxReasonLength+1)), "z", points.ErrInvalidReason},
			{"bad UTF-8", u.ID, 1, "\xff", "z", points.ErrInvalidReason},
			{"unknown user", "no-such-user", 1, "", "z", users.ErrNotFound},
			{"unknown user, debit", "no-such-user", -1, "", "z", users.ErrNotFound},
		} {
			_, err := f.ledger.Apply(ctx, c.user, c.amount, c.reason, c.key)
			wantErr(t, err, c.want, c.name)
		}

		// The ceiling keeps points + amount inside BIGINT on both databases.
		rich := f.mustUser(t, "rich")
		if err := db.Exec(`UPDATE users SET points = ? WHERE id = ?`, points.MaxBalance-10, rich.ID).Error; err != nil {
			t.Fatal(err)
		}
		_, err = f.ledger.Apply(ctx, rich.ID, 11, "", "over")
		wantErr(t, err, points.ErrBalanceTooLarge, "over the ceiling")
		if e, err := f.ledger.Apply(ctx, rich.ID, 10, "", "to"); err != nil || e.BalanceAfter != points.MaxBalance {
			t.Fatalf("up to the ceiling: %+v, %v", e, err)
		}
	})
}

func TestApplyIsIdempotentUnderConcurrency(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		u := f.mustUser(t, "alice")
		const n = 20
		entries := make([]points.Entry, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				entries[i], errs[i] = f.ledger.Apply(ctx, u.ID, 50, "bonus", "same-key")
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("call %d: %v", i, errs[i])
			}
			if entries[i] != entries[0] {
				t.Fatalf("call %d returned %+v, call 0 %+v", i, entries[i], entries[0])
			}
		}
		if b := f.balance(t, u.ID); b != 50 {
			t.Fatalf("balance %d, want 50", b)
		}
		if c := f.entryCount(t, u.ID); c != 1 {
			t.Fatalf("%d entries, want 1", c)
		}
	})
}

func TestBalanceNeverGoesNegative(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		u := f.mustUser(t, "alice")
		const initial, debit, n = 100, 15, 20
		if _, err := f.ledger.Apply(ctx, u.ID, initial, "", "seed"); err != nil {
			t.Fatal(err)
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			ok, poor int
		)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				e, err := f.ledger.Apply(ctx, u.ID, -debit, "", fmt.Sprintf("debit-%d", i))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					if e.BalanceAfter < 0 {
						t.Errorf("balance_after %d", e.BalanceAfter)
					}
					ok++
				case errors.Is(err, points.ErrInsufficientPoints):
					poor++
				default:
					t.Errorf("debit %d: %v", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if ok*debit > initial || ok != initial/debit || ok+poor != n {
			t.Fatalf("%d debits of %d from %d succeeded (%d refused), want %d", ok, debit, initial, poor, initial/debit)
		}
		if b := f.balance(t, u.ID); b != initial-int64(ok*debit) {
			t.Fatalf("balance %d, want %d", b, initial-ok*debit)
		}
		assertLedgerConsistent(t, f, u.ID)
	})
}

// TestLedgerProperty applies a random sequence of credits, debits and
// replays, and checks after it that users.points = SUM(amount) = the last
// balance_after, and that every call did what a serial model says.
func TestLedgerProperty(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seed := time.Now().UnixNano()
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewSource(seed))
		f := newFixture(t, db)
		var ids []string
		for i := range 3 {
			ids = append(ids, f.mustUser(t, fmt.Sprintf("user_%d", i)).ID)
		}
		type call struct {
			amount int64
			entry  points.Entry
		}
		model := map[string]int64{}
		done := map[string]map[string]call{} // user → key → first successful call
		for _, id := range ids {
			done[id] = map[string]call{}
		}
		for step := range 300 {
			id := ids[rng.Intn(len(ids))]
			amount := rng.Int63n(151) - 50 // -50..100
			if amount == 0 {
				amount = 1
			}
			key := fmt.Sprintf("k%d", step)
			replay := len(done[id]) > 0 && rng.Intn(5) == 0
			if replay { // replay an earlier key of this user, same request
				for k, c := range done[id] {
					key, amount = k, c.amount
					break
				}
			}
			e, err := f.ledger.Apply(ctx, id, amount, "prop", key)
			switch {
			case replay:
				if err != nil || e != done[id][key].entry {
					t.Fatalf("step %d: replay of %s gave %+v, %v; want %+v", step, key, e, err, done[id][key].entry)
				}
			case model[id]+amount < 0:
				wantErr(t, err, points.ErrInsufficientPoints, fmt.Sprintf("step %d: %d from %d", step, amount, model[id]))
			default:
				if err != nil {
					t.Fatalf("step %d: apply %d to %d: %v", step, amount, model[id], err)
				}
				model[id] += amount
				if e.BalanceAfter != model[id] {
					t.Fatalf("step %d: balance_after %d, model %d", step, e.BalanceAfter, model[id])
				}
				done[id][key] = call{amount: amount, entry: e}
			}
		}
		for _, id := range ids {
			if b := f.balance(t, id); b != model[id] {
				t.Errorf("user %s: points %d, model %d", id, b, model[id])
			}
			assertLedgerConsistent(t, f, id)
		}
	})
}

// assertLedgerConsistent: users.points = SUM(amount) = the newest entry's
// balance_after, and the entries' running total matches each balance_after.
func assertLedgerConsistent(t *testing.T, f *fixture, id string) {
	t.Helper()
	var es []points.Entry
	if err := f.db.Where("user_id = ?", id).Order("created_at, id").Find(&es).Error; err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, e := range es {
		sum += e.Amount
		if e.BalanceAfter != sum || e.BalanceAfter < 0 {
			t.Fatalf("entry %s: balance_after %d, running sum %d", e.ID, e.BalanceAfter, sum)
		}
	}
	b := f.balance(t, id)
	if b != sum {
		t.Fatalf("points %d, SUM(amount) %d", b, sum)
	}
	if len(es) > 0 && es[len(es)-1].BalanceAfter != b {
		t.Fatalf("points %d, last balance_after %d", b, es[len(es)-1].BalanceAfter)
	}
}

func TestEntries(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		u := f.mustUser(t, "alice")
		other := f.mustUser(t, "bob")
		if _, err := f.ledger.Apply(ctx, other.ID, 1, "", "x"); err != nil {
			t.Fatal(err)
		}
		var want []string
		for i := range 7 {
			if i == 3 {
				f.clock.SetStep(0) // entries in the same microsecond: id decides
			}
			e, err := f.ledger.Apply(ctx, u.ID, int64(i+1), "", fmt.Sprintf("k%d", i))
			if err != nil {
				t.Fatal(err)
			}
			want = append([]string{e.ID}, want...)
		}
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 4 {
				t.Fatal("pagination does not end")
			}
			es, next, err := f.ledger.Entries(ctx, u.ID, 3, cursor)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				got = append(got, e.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		// UUIDv7 ids grow with time, so newest first is descending id within a tie too.
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("entries\n got %v\nwant %v", got, want)
		}
		_, _, err := f.ledger.Entries(ctx, u.ID, 3, "%%%")
		wantErr(t, err, api.ErrInvalidCursor, "bad cursor")
		_, _, err = f.ledger.Entries(ctx, u.ID, points.MaxLimit+1, "")
		wantErr(t, err, api.ErrInvalidParam, "bad limit")
	})
}

func TestDeletingAUserDeletesItsEntries(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		u := f.mustUser(t, "alice")
		if _, err := f.ledger.Apply(ctx, u.ID, 10, "", "k"); err != nil {
			t.Fatal(err)
		}
		if err := f.users.Delete(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if n := f.entryCount(t, u.ID); n != 0 {
			t.Fatalf("%d entries left after the user was deleted", n)
		}
	})
}
