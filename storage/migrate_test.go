package storage_test

import (
	"context"
	"sync"
	"testing"

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
