package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		var n int64
		if err := db.Table("schema_migrations").Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != int64(len(storage.Migrations())) {
			t.Fatalf("schema_migrations has %d rows, want %d", n, len(storage.Migrations()))
		}
	})
}

func TestUniqueConstraintsAreInTheDatabase(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		now := storage.Now(time.Now())
		ins := func(id, username, email, code string) error {
			return db.Exec(`INSERT INTO users (id, username, email, email_key, referral_code, joined_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				id, username, email, storage.EmailKey(email), code, now, now).Error
		}
		if err := ins("a", "alice", "Alice@Example.com", "CODEA"); err != nil {
			t.Fatal(err)
		}
		if err := ins("u", "umlaut", "Ärger@x.org", "CODEU"); err != nil {
			t.Fatal(err)
		}
		// The constraints as their owner (users) declares them: each
		// violation matches its own and no other, on either database.
		var (
			email    = storage.Unique{Name: "users_email_key", Columns: "users.email_key"}
			username = storage.Unique{Name: "users_username_key"}
			code     = storage.Unique{Name: "users_referral_code_key", Columns: "users.referral_code"}
			wallet   = storage.Unique{Name: "wallets_pkey", Columns: "wallets.address"}
			all      = []storage.Unique{email, username, code, wallet}
		)
		only := func(what string, err error, want storage.Unique) {
			t.Helper()
			if !storage.IsUnique(err) {
				t.Fatalf("%s: got %v, want a unique violation", what, err)
			}
			for _, u := range all {
				if got := u.Violates(err); got != (u == want) {
					t.Errorf("%s: %s.Violates = %v (error %v)", what, u.Name, got, err)
				}
			}
		}
		cases := []struct {
			name, id, username, email, code string
			want                            storage.Unique
		}{
			{"email differs only in case", "b", "bob", "alice@example.COM", "CODEB", email},
			{"email differs in a non-ASCII case", "e", "erin", "ärger@x.org", "CODEE", email},
			{"email in NFD", "f", "fred", "A\u0308rger@x.org", "CODEF", email},
			{"username differs only in case", "c", "ALICE", "c@example.com", "CODEC", username},
			{"referral code", "d", "dave", "d@example.com", "CODEA", code},
		}
		for _, c := range cases {
			only(c.name, ins(c.id, c.username, c.email, c.code), c.want)
		}
		// "( ?" not "(?": gorm expands a slice right after a parenthesis as an IN list.
		addr := make([]byte, 20)
		if err := db.Exec(`INSERT INTO wallets (address, user_id, chain_id, type, is_primary, linked_at) VALUES ( ?, 'a', 1, 'eoa', true, ?)`, addr, now).Error; err != nil {
			t.Fatal(err)
		}
		err := db.Exec(`INSERT INTO wallets (address, user_id, chain_id, type, is_primary, linked_at) VALUES ( ?, 'a', 1, 'eoa', false, ?)`, addr, now).Error
		only("second wallet with the same address", err, wallet)
		// Times read back equal to what was written.
		var got time.Time
		if err := db.Raw(`SELECT joined_at FROM users WHERE id = 'a'`).Row().Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(now) {
			t.Fatalf("joined_at read back %v, wrote %v", got, now)
		}
	})
}
