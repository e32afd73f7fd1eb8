package partners_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

func TestPartnerIsolation(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		a := e.createPartner(partners.NewPartner{Name: "A"})
		b := e.createPartner(partners.NewPartner{Name: "B"})
		ua := e.login(a, map[string]any{"external_id": "shared"})
		ub := e.login(b, map[string]any{"external_id": "shared"})
		onlyB := e.login(b, map[string]any{"external_id": "only-b"})
		if userOf(t, ua)["id"] == userOf(t, ub)["id"] {
			t.Fatal("one user for two partners")
		}

		// Reading: A sees its own "shared", not B's; not B's "only-b" at all.
		got := wantOK(t, e.withSecret(a, http.MethodGet, "/v1/partner/users/shared", nil))
		if got["id"] != userOf(t, ua)["id"] {
			t.Fatalf("A read %v", got)
		}
		wantError(t, e.withSecret(a, http.MethodGet, "/v1/partner/users/only-b", nil), 404, "user_not_found")
		list := wantOK(t, e.withSecret(a, http.MethodGet, "/v1/partner/users", nil))
		if us := list["users"].([]any); len(us) != 1 || userOf(t, us[0].(map[string]any))["id"] != userOf(t, ua)["id"] {
			t.Fatalf("A's list %v", list)
		}

		// Points: A cannot change B's user.
		wantError(t, e.withSecret(a, http.MethodPost, "/v1/partner/users/only-b/points",
			map[string]any{"amount": 5, "reason": "x", "idempotency_key": "k1"}), 404, "user_not_found")
		wantOK(t, e.withSecret(a, http.MethodPost, "/v1/partner/users/shared/points",
			map[string]any{"amount": 5, "reason": "x", "idempotency_key": "k1"}))
		if bu, _ := e.users.Get(context.Background(), userOf(t, ub)["id"].(string)); bu.Points != 0 {
			t.Fatalf("A's points landed on B's user: %d", bu.Points)
		}

		// Ranking: A cannot rank B's user, and B's users are not in A's ranking.
		wantError(t, e.withSecret(a, http.MethodGet, "/v1/partner/users/only-b/ranking", nil), 404, "user_not_found")
		rk := wantOK(t, e.withSecret(a, http.MethodGet, "/v1/partner/users/shared/ranking", nil))
		if rk["rank"] != float64(1) || len(rk["above"].([]any)) != 0 || len(rk["below"].([]any)) != 0 {
			t.Fatalf("A's ranking %v", rk)
		}

		// Tokens: B's user's token is live, but not one of A's identities.
		v := wantOK(t, e.withSecret(a, http.MethodPost, "/v1/partner/tokens/verify", map[string]any{"token": onlyB["auth_token"]}))
		if v["active"] != true || v["external_id"] != nil {
			t.Fatalf("A's view of B's user's token: %v", v)
		}

		// Deleting: A's delete of "only-b" and "shared" touches only A's.
		d := wantOK(t, e.withSecret(a, http.MethodDelete, "/v1/partner/users", map[string]any{"external_ids": []string{"only-b", "shared"}}))
		if d["deleted"] != float64(1) {
			t.Fatalf("deleted %v", d)
		}
		wantOK(t, e.withSecret(b, http.MethodGet, "/v1/partner/users/only-b", nil))
		wantOK(t, e.withSecret(b, http.MethodGet, "/v1/partner/users/shared", nil))
		wantError(t, e.withSecret(a, http.MethodGet, "/v1/partner/users/shared", nil), 404, "user_not_found")
	})
}

func TestTokenVerify(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		a := e.createPartner(partners.NewPartner{Name: "A"})
		r := e.login(a, map[string]any{"external_id": "v"})
		verify := func(tok any) map[string]any {
			return wantOK(t, e.signed(a, http.MethodPost, verifyPath, map[string]any{"token": tok}))
		}
		v := verify(r["auth_token"])
		if v["active"] != true || userOf(t, v)["id"] != userOf(t, r)["id"] || v["external_id"] != "v" {
			t.Fatalf("%v", v)
		}
		exp, err := time.Parse(time.RFC3339, v["expires_at"].(string))
		if err != nil || !exp.Equal(start.Add(30*24*time.Hour)) {
			t.Fatalf("expires_at %v", v["expires_at"])
		}
		for _, tok := range []any{"", "wat_unknown", "garbage"} {
			if v := verify(tok); v["active"] != false {
				t.Fatalf("%q: %v", tok, v)
			}
		}
		wantError(t, e.signed(a, http.MethodPost, verifyPath, map[string]any{"token": 1}), 400, "invalid_json")
		// A revoked token is inactive.
		if err := e.sessions.Revoke(context.Background(), r["auth_token"].(string)); err != nil {
			t.Fatal(err)
		}
		if v := verify(r["auth_token"]); v["active"] != false {
			t.Fatalf("revoked: %v", v)
		}
		// A wallet or email user's token (no identity of this partner) is
		// active: the partner's web app may log its users in that way.
		u, err := e.users.Create(context.Background(), users.NewUser{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := e.sessions.Issue(context.Background(), u.ID, auth.Origin{Method: auth.MethodEmail})
		if err != nil {
			t.Fatal(err)
		}
		if v := verify(tok); v["active"] != true || userOf(t, v)["id"] != u.ID || v["external_id"] != nil {
			t.Fatalf("a wallet/email user's token: %v", v)
		}
	})
}

func TestListUsers(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		a := e.createPartner(partners.NewPartner{Name: "A"})
		var exts []string
		for i := 0; i < 7; i++ {
			ext := string(rune('a' + i))
			exts = append(exts, ext)
			e.login(a, map[string]any{"external_id": ext})
			e.clock.Advance(time.Second)
		}
		page := func(q url.Values) ([]string, string) {
			t.Helper()
			m := wantOK(t, e.signed(a, http.MethodGet, "/v1/partner/users?"+q.Encode(), nil))
			var got []string
			for _, u := range m["users"].([]any) {
				got = append(got, u.(map[string]any)["external_id"].(string))
			}
			next, _ := m["next_cursor"].(string)
			if m["next_cursor"] != nil && next == "" {
				t.Fatalf("next_cursor %v", m["next_cursor"])
			}
			return got, next
		}
		all := func(q url.Values) []string {
			var out []string
			for {
				got, next := page(q)
				out = append(out, got...)
				if next == "" {
					return out
				}
				q.Set("cursor", next)
			}
		}
		if got := all(url.Values{"limit": {"3"}}); !equal(got, exts) {
			t.Fatalf("pages of 3: %v, want %v", got, exts)
		}
		var queries atomic.Int64
		var counting atomic.Bool
		counting.Store(true)
		count := func(*gorm.DB) {
			if counting.Load() {
				queries.Add(1)
			}
		}
		cb := db.Callback()
		if err := errors.Join(cb.Query().Before("gorm:query").Register("test:count_query", count),
			cb.Row().Before("gorm:row").Register("test:count_row", count),
			cb.Raw().Before("gorm:raw").Register("test:count_raw", count)); err != nil {
			t.Fatal(err)
		}
		got, next := page(url.Values{"limit": {"7"}})
		counting.Store(false)
		t.Logf("queries for a page of 7: %d", queries.Load())
		if len(got) != 7 || next != "" {
			t.Fatalf("one full page: %v, next %q", got, next)
		}
		// The page, then its users in one query (not one per user); the
		// partner's authentication may read too.
		if n := queries.Load(); n > 3 {
			t.Errorf("a page of 7 users ran %d queries, want at most 3", n)
		}

		// A change moves a user to the end; updated_since picks up from there.
		since := e.clock.Now()
		if _, err := e.users.Update(context.Background(), identity(t, e, a.ID, "b").UserID, users.Patch{Username: ptr("renamed_b")}); err != nil {
			t.Fatal(err)
		}
		want := []string{"a", "c", "d", "e", "f", "g", "b"}
		if got := all(url.Values{"limit": {"2"}}); !equal(got, want) {
			t.Fatalf("after a change: %v, want %v", got, want)
		}
		if got := all(url.Values{"updated_since": {since.Format(time.RFC3339)}}); !equal(got, []string{"b"}) {
			t.Fatalf("updated_since: %v", got)
		}
		if got := all(url.Values{"updated_since": {start.Add(2 * time.Second).Format(time.RFC3339Nano)}, "limit": {"1"}}); !equal(got, []string{"c", "d", "e", "f", "g", "b"}) {
			t.Fatalf("updated_since mid-way: %v", got)
		}

		// A login that changes what the partner keeps on its identity moves
		// the user too; one that changes nothing does not.
		e.clock.Advance(time.Second)
		e.login(a, map[string]any{"external_id": "c", "first_name": "Cleo"})
		e.clock.Advance(time.Second)
		e.login(a, map[string]any{"external_id": "d"})
		want = []string{"a", "d", "e", "f", "g", "b", "c"}
		if got := all(url.Values{"limit": {"3"}}); !equal(got, want) {
			t.Fatalf("after an identity change: %v, want %v", got, want)
		}

		for _, q := range []string{"limit=0", "limit=1001", "limit=x", "updated_since=yesterday"} {
			wantError(t, e.signed(a, http.MethodGet, "/v1/partner/users?"+q, nil), 400, "invalid_parameter")
		}
		wantError(t, e.signed(a, http.MethodGet, "/v1/partner/users?cursor=%21%21", nil), 400, "invalid_cursor")
	})
}

func TestDeleteUsers(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		a := e.createPartner(partners.NewPartner{Name: "A"})
		b := e.createPartner(partners.NewPartner{Name: "B"})
		only := e.login(a, map[string]any{"external_id": "only"})
		e.login(a, map[string]any{"external_id": 42})
		// A user with a second way in (a second identity, of partner B) survives.
		kept := e.login(a, map[string]any{"external_id": "kept"})
		keptID := userOf(t, kept)["id"].(string)
		if err := db.Create(&partners.Identity{PartnerID: b.ID, ExternalID: "kept-at-b", UserID: keptID,
			CreatedAt: start, UpdatedAt: start}).Error; err != nil {
			t.Fatal(err)
		}

		d := wantOK(t, e.signed(a, http.MethodDelete, "/v1/partner/users",
			[]byte(`{"external_ids": ["only", 42, "kept", "only", "unknown"]}`)))
		if d["deleted"] != float64(3) {
			t.Fatalf("deleted %v, want 3", d)
		}
		if _, err := e.users.Get(ctx, userOf(t, only)["id"].(string)); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("a user left with no login method must be deleted: %v", err)
		}
		if _, err := e.sessions.Check(ctx, only["auth_token"].(string)); err == nil {
			t.Fatal("the deleted user's token still works")
		}
		if _, err := e.users.Get(ctx, keptID); err != nil {
			t.Fatalf("a user with another login method was deleted: %v", err)
		}
		wantOK(t, e.withSecret(b, http.MethodGet, "/v1/partner/users/kept-at-b", nil))
		// Logging in again makes a new user.
		again := e.login(a, map[string]any{"external_id": "only"})
		if again["registered"] != true || userOf(t, again)["id"] == userOf(t, only)["id"] {
			t.Fatalf("login after delete: %v", again)
		}
		d = wantOK(t, e.withSecret(a, http.MethodDelete, "/v1/partner/users", map[string]any{"external_ids": []string{}}))
		if d["deleted"] != float64(0) {
			t.Fatalf("%v", d)
		}
		wantError(t, e.withSecret(a, http.MethodDelete, "/v1/partner/users", []byte(`{"external_ids": "only"}`)), 400, "invalid_json")
		wantError(t, e.withSecret(a, http.MethodDelete, "/v1/partner/users", []byte(`{"external_ids": [true]}`)), 400, "invalid_json")
	})
}

func TestPointsAndRanking(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		a := e.createPartner(partners.NewPartner{Name: "A"})
		for _, ext := range []string{"p1", "p2", "p3", "p4"} {
			e.login(a, map[string]any{"external_id": ext})
			e.clock.Advance(time.Second)
		}
		add := func(ext string, amount int64, key string) response {
			return e.signed(a, http.MethodPost, "/v1/partner/users/"+ext+"/points",
				map[string]any{"amount": amount, "reason": "game", "idempotency_key": key})
		}
		r := wantOK(t, add("p1", 10, "k1"))
		if r["points"] != float64(10) || r["entry_id"] == "" {
			t.Fatalf("%v", r)
		}
		again := wantOK(t, add("p1", 10, "k1"))
		if again["points"] != float64(10) || again["entry_id"] != r["entry_id"] {
			t.Fatalf("idempotent replay: %v", again)
		}
		wantOK(t, add("p2", 30, "k1"))
		wantOK(t, add("p3", 20, "k1"))
		wantError(t, add("p1", -11, "k2"), 409, "insufficient_points")
		wantError(t, add("nobody", 1, "k"), 404, "user_not_found")
		if u := wantOK(t, e.signed(a, http.MethodGet, "/v1/partner/users/p1", nil)); u["points"] != float64(10) {
			t.Fatalf("user points %v", u["points"])
		}

		// p2 30, p3 20, p1 10, p4 0.
		rk := wantOK(t, e.signed(a, http.MethodGet, "/v1/partner/users/p1/ranking?n=1", nil))
		above, below := rk["above"].([]any), rk["below"].([]any)
		if rk["rank"] != float64(3) || len(above) != 1 || len(below) != 1 {
			t.Fatalf("%v", rk)
		}
		if x := above[0].(map[string]any); x["external_id"] != "p3" || x["rank"] != float64(2) || x["points"] != float64(20) || x["username"] == "" {
			t.Fatalf("above %v", x)
		}
		if x := below[0].(map[string]any); x["external_id"] != "p4" || x["rank"] != float64(4) {
			t.Fatalf("below %v", x)
		}
		if u := rk["user"].(map[string]any); u["external_id"] != "p1" || u["rank"] != float64(3) || u["points"] != float64(10) {
			t.Fatalf("user %v", u)
		}
		rk = wantOK(t, e.signed(a, http.MethodGet, "/v1/partner/users/p2/ranking", nil))
		if rk["rank"] != float64(1) || len(rk["above"].([]any)) != 0 || len(rk["below"].([]any)) != 3 {
			t.Fatalf("%v", rk)
		}
		wantError(t, e.signed(a, http.MethodGet, "/v1/partner/users/p2/ranking?n=x", nil), 400, "invalid_parameter")
		wantError(t, e.signed(a, http.MethodGet, "/v1/partner/users/p2/ranking?n=-1", nil), 400, "invalid_parameter")
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
