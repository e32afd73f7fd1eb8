// Package storage opens the relational database (PostgreSQL, or SQLite as
// the embedded default) through GORM and owns the schema's versioned
// migrations. Feature packages keep their own stores on top of *DB.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names the database behind a DB.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// name is the dialect as a person writes it.
func (d Dialect) name() string {
	if d == Postgres {
		return "PostgreSQL"
	}
	return "SQLite"
}

// DB is an open database with its dialect.
type DB struct {
	*gorm.DB
	Dialect Dialect
}

// Options tune Open.
type Options struct {
	MaxOpenConns int // PostgreSQL pool size; SQLite always uses one connection
	Log          *slog.Logger
}

// Open connects to the database named by rawURL (sqlite://path or
// postgres://…) and checks that it answers. It does not migrate.
//
// SQLite is opened through glebarez/sqlite, a GORM driver over
// modernc.org/sqlite: pure Go, so `make run` needs no cgo or C toolchain. It
// runs with foreign keys on, WAL journaling, a busy timeout, and a single
// connection: SQLite has one writer anyway, and one connection makes every
// transaction serialisable without SQLITE_BUSY upgrade deadlocks.
func Open(ctx context.Context, rawURL string, opt Options) (*DB, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	gcfg := &gorm.Config{
		TranslateError:         false, // we translate at the store boundary, keeping the constraint name (errors.go)
		SkipDefaultTransaction: true,
		// PrepareStmt stays off: gorm prepares on the pool, which with
		// SQLite's single connection deadlocks inside a transaction (seen:
		// the referrals tests hung); pgx caches statements on PostgreSQL.
		PrepareStmt: false,
		Logger:      logger.Discard,
		NowFunc:     func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	var (
		gdb     *gorm.DB
		dialect Dialect
		err     error
	)
	switch {
	case strings.HasPrefix(rawURL, "sqlite://"):
		dialect = SQLite
		dsn, derr := sqliteDSN(strings.TrimPrefix(rawURL, "sqlite://"))
		if derr != nil {
			return nil, derr
		}
		gdb, err = gorm.Open(sqlite.Open(dsn), gcfg)
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		dialect = Postgres
		gdb, err = gorm.Open(postgres.New(postgres.Config{DSN: rawURL}), gcfg)
	default:
		return nil, errors.New("unsupported database URL scheme (want sqlite:// or postgres://)")
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open the %s database: %w", dialect.name(), err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("cannot open the %s database: %w", dialect.name(), err)
	}
	if dialect == SQLite {
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
		sqlDB.SetConnMaxIdleTime(0)
	} else {
		n := opt.MaxOpenConns
		if n <= 0 {
			n = 20
		}
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
		sqlDB.SetConnMaxLifetime(30 * time.Minute)
	}
	db := &DB{DB: gdb, Dialect: dialect}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.Ping(pctx); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	return db, nil
}

func sqliteDSN(path string) (string, error) {
	if path == "" {
		return "", errors.New("sqlite:// needs a path")
	}
	q := url.Values{}
	for _, p := range []string{"foreign_keys(1)", "busy_timeout(10000)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	if path == ":memory:" {
		return "file::memory:?" + q.Encode(), nil
	}
	q.Add("_pragma", "journal_mode(WAL)")
	// The folder must exist: creating it would hide a typo in the path (the
	// data would go somewhere nobody looks).
	if dir := filepath.Dir(path); dir != "." {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("the folder %s of the SQLite database %s does not exist (create it first, or fix the path)", dir, path)
		}
	}
	return "file:" + path + "?" + q.Encode(), nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	sqlDB, err := db.DB.DB()
	if err != nil {
		return fmt.Errorf("the %s database does not answer: %w", db.Dialect.name(), err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("the %s database does not answer: %w", db.Dialect.name(), err)
	}
	return nil
}

// Close closes the pool.
func (db *DB) Close() error {
	sqlDB, err := db.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Now is the database clock's resolution applied to t: UTC, microseconds
// (PostgreSQL keeps no more), so what is written reads back equal.
func Now(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// SnapshotRead is the option that makes a multi-statement read one
// snapshot on PostgreSQL (REPEATABLE READ, read only); SQLite transactions
// are serial already (nil).
func (db *DB) SnapshotRead() *sql.TxOptions {
	if db.Dialect != Postgres {
		return nil
	}
	return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
}
