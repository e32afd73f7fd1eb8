package points_test

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
)

const benchUsers = 10_000

// seedUsers inserts n users with random points, all with an identity of
// partner "p1", in batches, and returns their ids.
func seedUsers(b *testing.B, db *storage.DB, n int) []string {
	b.Helper()
	mustPartner(b, db, "p1")
	rng := rand.New(rand.NewSource(1))
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ids := make([]string, n)
	const batch = 500
	err := db.Transaction(func(tx *gorm.DB) error {
		for start := 0; start < n; start += batch {
			end := min(start+batch, n)
			var us, pis []string
			var uargs, piargs []any
			for i := start; i < end; i++ {
				ids[i] = fmt.Sprintf("user-%05d", i)
				joined := storage.Now(base.Add(time.Duration(i) * time.Second))
				us = append(us, "(?, ?, ?, ?, ?, ?)")
				uargs = append(uargs, ids[i], fmt.Sprintf("u_%05d", i), fmt.Sprintf("CODE%05d", i), rng.Int63n(1000), joined, joined)
				pis = append(pis, "('p1', ?, ?, ?, ?)")
				piargs = append(piargs, fmt.Sprintf("ext-%05d", i), ids[i], joined, joined)
			}
			if err := tx.Exec(`INSERT INTO users (id, username, referral_code, points, joined_at, updated_at) VALUES `+
				strings.Join(us, ","), uargs...).Error; err != nil {
				return err
			}
			if err := tx.Exec(`INSERT INTO partner_identities (partner_id, external_id, user_id, created_at, updated_at) VALUES `+
				strings.Join(pis, ","), piargs...).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("seed: %v", err)
	}
	if db.Dialect == storage.SQLite {
		if err := db.Exec("ANALYZE").Error; err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

func BenchmarkApply(b *testing.B) {
	db := storagetest.OpenSQLite(b)
	f := newFixture(b, db)
	ids := seedUsers(b, db, benchUsers)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := f.ledger.Apply(ctx, ids[i%len(ids)], 10, "bench", fmt.Sprintf("k%d", i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyReplay(b *testing.B) {
	db := storagetest.OpenSQLite(b)
	f := newFixture(b, db)
	ids := seedUsers(b, db, benchUsers)
	ctx := context.Background()
	if _, err := f.ledger.Apply(ctx, ids[0], 10, "bench", "k"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := f.ledger.Apply(ctx, ids[0], 10, "bench", "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRankInPartner(b *testing.B) {
	db := storagetest.OpenSQLite(b)
	f := newFixture(b, db)
	ids := seedUsers(b, db, benchUsers)
	ctx := context.Background()
	rng := rand.New(rand.NewSource(2))
	for b.Loop() {
		if _, err := f.ledger.RankInPartner(ctx, partners.RankScope("p1"), ids[rng.Intn(len(ids))], 5); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRank(b *testing.B) {
	db := storagetest.OpenSQLite(b)
	f := newFixture(b, db)
	ids := seedUsers(b, db, benchUsers)
	ctx := context.Background()
	rng := rand.New(rand.NewSource(2))
	for b.Loop() {
		if _, err := f.ledger.Rank(ctx, ids[rng.Intn(len(ids))], 5); err != nil {
			b.Fatal(err)
		}
	}
}
