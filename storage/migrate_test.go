package storage_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
)

// Instances starting at once on a fresh PostgreSQL database (or operators
// running `walletauth migrate` twice) all migrate it without an error: the
// migrations run one instance at a time, and the later ones find nothing to
// do.
func TestConcurrentMigrateOnPostgres(t *testing.T) {
	if storagetest.PostgresURL(t) == "" {
		t.Skip("WALLETAUTH_TEST_DATABASE_URL not set")
	}
	const instances = 6
	for round := 0; round < 5; round++ {
		url := storagetest.PostgresSchemaURL(t)
		ctx := context.Background()
		dbs := make([]*storage.DB, instances)
		for i := range dbs {
			db, err := storage.Open(ctx, url, storage.Options{MaxOpenConns: 2})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			dbs[i] = db
		}
		var start, done sync.WaitGroup
		start.Add(1)
		errs := make([]error, instances)
		for i, db := range dbs {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				errs[i] = db.Migrate(ctx)
			}()
		}
		start.Done()
		done.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: instance %d: %v", round, i, err)
			}
		}
		var n int64
		if err := dbs[0].Table("schema_migrations").Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != int64(len(storage.Migrations())) {
			t.Fatalf("round %d: schema_migrations has %d rows, want %d", round, n, len(storage.Migrations()))
		}
	}
}

// oldUser writes a user the way the schema before 0004 did (no email_key).
func oldUser(t *testing.T, db *storage.DB, id, email string, joined time.Time) {
	t.Helper()
	if err := db.Exec(`INSERT INTO users (id, username, email, password_hash, referral_code, joined_at, updated_at) VALUES (?, ?, ?, 'h', ?, ?, ?)`,
		id, "user_"+id, email, "CODE"+id, joined, joined).Error; err != nil {
		t.Fatalf("insert %s: %v", id, err)
	}
}

func emailRow(t *testing.T, db *storage.DB, id string) (email, key string) {
	t.Helper()
	if err := db.Raw(`SELECT email, email_key FROM users WHERE id = ?`, id).Row().Scan(&email, &key); err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	return email, key
}

// Migration 0004 fills the email key of existing accounts, leaving their
// emails as they were typed.
func TestMigrationFillsEmailKeys(t *testing.T) {
	storagetest.RunEmpty(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.MigrateTo(ctx, "0003_partner_signing_keys"); err != nil {
			t.Fatal(err)
		}
		now := storage.Now(time.Now())
		oldUser(t, db, "a", "Bob@Example.ORG", now)
		oldUser(t, db, "b", "A\u0308rger@x.org", now) // NFD
		oldUser(t, db, "c", "STRASSE@x.org", now)
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		for _, c := range []struct{ id, email, key string }{
			{"a", "Bob@Example.ORG", "bob@example.org"},
			{"b", "A\u0308rger@x.org", "ärger@x.org"},
			{"c", "STRASSE@x.org", "strasse@x.org"},
		} {
			email, key := emailRow(t, db, c.id)
			if email != c.email || key != c.key {
				t.Errorf("user %s: email %q key %q, want %q %q", c.id, email, key, c.email, c.key)
			}
		}
		// The key is unique: "straße" folds to "strasse".
		err := db.Exec(`INSERT INTO users (id, username, email, email_key, referral_code, joined_at, updated_at) VALUES ('d', 'user_d', 'straße@X.org', ?, 'CODED', ?, ?)`,
			storage.EmailKey("straße@X.org"), now, now).Error
		if !(storage.Unique{Name: "users_email_key", Columns: "users.email_key"}).Violates(err) {
			t.Fatalf("insert of a folded duplicate: %v", err)
		}
	})
}

// Two existing accounts whose emails fold to one key: the migration refuses,
// naming both accounts, and changes nothing; once an operator clears one
// email, it runs.
func TestMigrationRefusesEmailCollisions(t *testing.T) {
	storagetest.RunEmpty(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.MigrateTo(ctx, "0003_partner_signing_keys"); err != nil {
			t.Fatal(err)
		}
		t0 := storage.Now(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		oldUser(t, db, "old", "Ärger@x.org", t0)
		want := "old,nfd"
		if db.Dialect == storage.SQLite { // its lower() folds ASCII only; PostgreSQL's refused this one
			oldUser(t, db, "new", "ärger@x.org", t0.Add(time.Hour))
			want = "old,new,nfd"
		}
		oldUser(t, db, "nfd", "A\u0308rger@x.org", t0.Add(2*time.Hour)) // both databases' lower() let this in
		oldUser(t, db, "bob", "bob@x.org", t0)
		err := db.Migrate(ctx)
		t.Logf("the refusal: %v", err)
		var ce *storage.EmailCollisionError
		if !errors.As(err, &ce) {
			t.Fatalf("migrate: %v, want an EmailCollisionError", err)
		}
		if len(ce.Collisions) != 1 || ce.Collisions[0].Key != "ärger@x.org" {
			t.Fatalf("collisions %+v, want one for ärger@x.org", ce.Collisions)
		}
		var ids []string
		for _, u := range ce.Collisions[0].Users {
			ids = append(ids, u.ID)
		}
		if strings.Join(ids, ",") != want {
			t.Errorf("colliding users %v, want %s (oldest first)", ids, want)
		}
		for _, id := range []string{"user old", "user nfd", "run migrate again"} {
			if !strings.Contains(err.Error(), id) {
				t.Errorf("error %q does not say %q", err, id)
			}
		}
		var n int64
		if err := db.Table("schema_migrations").Count(&n).Error; err != nil || n != 3 {
			t.Fatalf("after the refusal schema_migrations has %d rows (%v), want 3", n, err)
		}
		if err := db.Exec(`SELECT email_key FROM users`).Error; err == nil {
			t.Fatal("email_key exists after the refused migration")
		}
		if err := db.Exec(`UPDATE users SET email = NULL WHERE id IN ('new', 'nfd')`).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("migrate after resolving: %v", err)
		}
		if email, key := emailRow(t, db, "old"); email != "Ärger@x.org" || key != "ärger@x.org" {
			t.Errorf("old: email %q key %q", email, key)
		}
	})
}
