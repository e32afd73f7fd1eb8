// Package storagetest opens migrated test databases: SQLite always, and
// PostgreSQL when WALLETAUTH_TEST_DATABASE_URL is set. With CI=true the
// PostgreSQL backend is required: a missing URL or an unreachable server
// fails the test instead of skipping it.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walletauth/walletauth/storage"
)

// Backend is a named way to open a fresh, migrated database, or (OpenEmpty)
// a fresh one with no schema at all, for tests of the migrations.
type Backend struct {
	Name      string
	Open      func(tb testing.TB) *storage.DB
	OpenEmpty func(tb testing.TB) *storage.DB
}

// Backends returns SQLite and, when configured, PostgreSQL.
func Backends(tb testing.TB) []Backend {
	tb.Helper()
	bs := []Backend{{Name: "sqlite", Open: OpenSQLite, OpenEmpty: OpenEmptySQLite}}
	if PostgresURL(tb) != "" {
		bs = append(bs, Backend{Name: "postgres", Open: OpenPostgres, OpenEmpty: OpenEmptyPostgres})
	}
	return bs
}

// RunEmpty runs f once per backend as a subtest, with a database that has
// no tables yet (not migrated).
func RunEmpty(t *testing.T, f func(t *testing.T, db *storage.DB)) {
	t.Helper()
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) { f(t, b.OpenEmpty(t)) })
	}
}

// Run runs f once per backend as a subtest.
func Run(t *testing.T, f func(t *testing.T, db *storage.DB)) {
	t.Helper()
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) { f(t, b.Open(t)) })
	}
}

// PostgresURL returns the test database URL; under CI=true it must be set.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("WALLETAUTH_TEST_DATABASE_URL")
	if u == "" && os.Getenv("CI") == "true" {
		tb.Fatal("CI=true but WALLETAUTH_TEST_DATABASE_URL is not set: the PostgreSQL tests are required in CI")
	}
	return u
}

// OpenSQLite opens a migrated SQLite file in a temporary directory.
func OpenSQLite(tb testing.TB) *storage.DB {
	tb.Helper()
	db := OpenEmptySQLite(tb)
	if err := db.Migrate(context.Background()); err != nil {
		tb.Fatalf("migrate sqlite: %v", err)
	}
	return db
}

// OpenEmptySQLite opens a new, unmigrated SQLite file in a temporary
// directory.
func OpenEmptySQLite(tb testing.TB) *storage.DB {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "test.db")
	db, err := storage.Open(context.Background(), "sqlite://"+path, storage.Options{})
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// OpenPostgres creates a throwaway schema in the test database, opens a
// pool whose search_path is that schema, migrates it, and drops it after.
func OpenPostgres(tb testing.TB) *storage.DB {
	tb.Helper()
	db := OpenEmptyPostgres(tb)
	if err := db.Migrate(context.Background()); err != nil {
		tb.Fatalf("migrate postgres: %v", err)
	}
	return db
}

// OpenEmptyPostgres opens a pool on a new, empty throwaway schema
// (PostgresSchemaURL).
func OpenEmptyPostgres(tb testing.TB) *storage.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := storage.Open(ctx, PostgresSchemaURL(tb), storage.Options{MaxOpenConns: 20})
	if err != nil {
		tb.Fatalf("open postgres schema: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// PostgresSchemaURL creates an empty throwaway schema in the test database,
// dropped after the test, and returns the database URL whose search_path is
// that schema: each storage.Open of it is one more instance of the service
// on the same database.
func PostgresSchemaURL(tb testing.TB) string {
	tb.Helper()
	base := PostgresURL(tb)
	if base == "" {
		tb.Skip("WALLETAUTH_TEST_DATABASE_URL not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := storage.Open(ctx, base, storage.Options{MaxOpenConns: 2})
	if err != nil {
		tb.Fatalf("PostgreSQL at WALLETAUTH_TEST_DATABASE_URL is not reachable: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if err := admin.WithContext(ctx).Exec("CREATE SCHEMA " + schema).Error; err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		_ = admin.Exec("DROP SCHEMA " + schema + " CASCADE").Error
		_ = admin.Close()
	})
	return WithSearchPath(tb, base, schema)
}

// WithSearchPath returns rawURL with search_path set to schema.
func WithSearchPath(tb testing.TB, rawURL, schema string) string {
	tb.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		tb.Fatalf("parse database URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
