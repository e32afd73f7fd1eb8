package points_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/points"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

func mustPartner(tb testing.TB, db *storage.DB, id string) {
	tb.Helper()
	now := storage.Now(time.Now())
	if err := db.Exec(`INSERT INTO partners (id, name, secret_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		id, id, []byte("hash-of-"+id), now, now).Error; err != nil {
		tb.Fatal(err)
	}
}

func mustIdentity(tb testing.TB, db *storage.DB, partnerID, externalID, userID string) {
	tb.Helper()
	now := storage.Now(time.Now())
	if err := db.Exec(`INSERT INTO partner_identities (partner_id, external_id, user_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		partnerID, externalID, userID, now, now).Error; err != nil {
		tb.Fatal(err)
	}
}

func setPoints(tb testing.TB, db *storage.DB, id string, p int64) {
	tb.Helper()
	if err := db.Exec(`UPDATE users SET points = ? WHERE id = ?`, p, id).Error; err != nil {
		tb.Fatal(err)
	}
}

type member struct {
	id, ext, name string
	points        int64
	joined        time.Time
}

// expectedOrder is the documented order, computed in Go: points desc,
// joined_at asc, id asc.
func expectedOrder(ms []member) []member {
	out := append([]member(nil), ms...)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.points != b.points {
			return a.points > b.points
		}
		if !a.joined.Equal(b.joined) {
			return a.joined.Before(b.joined)
		}
		return a.id < b.id
	})
	return out
}

func TestRankInPartner(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		mustPartner(t, db, "p1")
		mustPartner(t, db, "p2")

		// p1's users; ties in points, and ties in points and joined_at.
		spec := []struct {
			name   string
			points int64
			step   time.Duration // clock step before the next user
		}{
			{"ann", 50, time.Second}, {"ben", 50, time.Second}, {"cat", 70, 0},
			{"dan", 10, time.Second}, {"eve", 10, time.Second}, {"fay", 0, time.Second},
			{"gus", 50, 0}, {"hal", 50, 0}, {"ivy", 50, time.Second}, {"jon", 90, time.Second},
		}
		var p1 []member
		for i, s := range spec {
			f.clock.SetStep(s.step)
			u := f.mustUser(t, s.name)
			setPoints(t, db, u.ID, s.points)
			ext := fmt.Sprintf("ext-%02d", i)
			mustIdentity(t, db, "p1", ext, u.ID)
			p1 = append(p1, member{id: u.ID, ext: ext, name: s.name, points: s.points, joined: u.JoinedAt})
		}
		// p2's users outrank and interleave everyone but must not show in p1;
		// one of p1's users is in p2 too, and one p1 user has two p1 ids.
		for i, pts := range []int64{1000, 60, 5} {
			u := f.mustUser(t, fmt.Sprintf("other_%d", i))
			setPoints(t, db, u.ID, pts)
			mustIdentity(t, db, "p2", fmt.Sprintf("ext-%02d", i), u.ID)
		}
		mustIdentity(t, db, "p2", "shared", p1[0].id)
		mustIdentity(t, db, "p1", "zz-second-id", p1[1].id)
		f.mustUser(t, "no_partner")

		order := expectedOrder(p1)
		for _, n := range []int{0, 1, 2, 3, len(order) + 1} {
			for i, m := range order {
				r, err := f.ledger.RankInPartner(ctx, partners.RankScope("p1"), m.id, n)
				if err != nil {
					t.Fatalf("rank %s: %v", m.name, err)
				}
				what := fmt.Sprintf("n=%d %s", n, m.name)
				if r.Rank != int64(i+1) || r.User.Rank != r.Rank {
					t.Fatalf("%s: rank %d, want %d", what, r.Rank, i+1)
				}
				checkRanked(t, what, r.User, m, r.Rank)
				lo, hi := max(0, i-n), min(len(order), i+1+n)
				if len(r.Above) != i-lo || len(r.Below) != hi-i-1 {
					t.Fatalf("%s: %d above, %d below; want %d, %d", what, len(r.Above), len(r.Below), i-lo, hi-i-1)
				}
				for j, a := range r.Above {
					checkRanked(t, what+" above", a, order[lo+j], int64(lo+j+1))
				}
				for j, b := range r.Below {
					checkRanked(t, what+" below", b, order[i+1+j], int64(i+2+j))
				}
			}
		}

		// Not in p1: a p2 user, a user of no partner, an unknown user, an unknown partner.
		var p2only string
		if err := db.Raw(`SELECT user_id FROM partner_identities WHERE partner_id = 'p2' AND external_id = 'ext-00'`).Row().Scan(&p2only); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ partner, user string }{{"p1", p2only}, {"p1", "no-such-user"}, {"p3", p1[0].id}} {
			_, err := f.ledger.RankInPartner(ctx, partners.RankScope(c.partner), c.user, 2)
			if !errors.Is(err, users.ErrNotFound) {
				t.Fatalf("%s in %s: got %v, want user_not_found", c.user, c.partner, err)
			}
		}
		// In p2, the shared user ranks among p2's users only: 1000, 60, 50.
		r, err := f.ledger.RankInPartner(ctx, partners.RankScope("p2"), p1[0].id, 5)
		if err != nil || r.Rank != 3 || len(r.Above) != 2 || len(r.Below) != 1 || r.User.ExternalID != "shared" {
			t.Fatalf("shared user in p2: %+v, %v", r, err)
		}
		_, err = f.ledger.RankInPartner(ctx, partners.RankScope("p1"), p1[0].id, -1)
		wantErr(t, err, api.ErrInvalidParam, "negative n")
		if _, err = f.ledger.RankInPartner(ctx, partners.RankScope("p1"), p1[0].id, points.MaxNeighbours+1); err != nil {
			t.Fatalf("n above the maximum is clamped, not refused: %v", err)
		}
	})
}

func checkRanked(t *testing.T, what string, got points.Ranked, want member, rank int64) {
	t.Helper()
	if got.UserID != want.id || got.Username != want.name || got.Points != want.points ||
		got.ExternalID != want.ext || got.Rank != rank || !got.JoinedAt.Equal(want.joined) {
		t.Fatalf("%s: got %+v, want %s (%s) %d points rank %d", what, got, want.name, want.ext, want.points, rank)
	}
}

func TestRankFollowsApply(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		var ms []member
		for i := range 5 {
			u := f.mustUser(t, fmt.Sprintf("user_%d", i))
			ms = append(ms, member{id: u.ID, name: u.Username, joined: u.JoinedAt})
		}
		// All at 0 points: join order decides.
		r, err := f.ledger.Rank(ctx, ms[4].id, 10)
		if err != nil || r.Rank != 5 || len(r.Above) != 4 || len(r.Below) != 0 {
			t.Fatalf("last joined at 0 points: %+v, %v", r, err)
		}
		if _, err := f.ledger.Apply(ctx, ms[4].id, 1, "", "k"); err != nil {
			t.Fatal(err)
		}
		r, err = f.ledger.Rank(ctx, ms[4].id, 1)
		if err != nil || r.Rank != 1 || len(r.Above) != 0 || len(r.Below) != 1 || r.Below[0].UserID != ms[0].id || r.Below[0].Rank != 2 {
			t.Fatalf("after a credit: %+v, %v", r, err)
		}
		if r.User.ExternalID != "" || r.User.Points != 1 {
			t.Fatalf("global ranked user: %+v", r.User)
		}
	})
}
