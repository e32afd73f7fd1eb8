package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// The store boundary's error translation: every package recognises what
// the database said through these, so no package but storage knows a
// driver's error types, codes or messages.

// ErrUnavailable is wrapped by every error that means a backing service
// (the database, the shared store) could not be reached or did not answer
// in time, as opposed to a bug: the HTTP layer answers 503 unavailable.
// The kv package's ErrUnavailable is this error.
var ErrUnavailable = errors.New("unavailable")

// Unavailable reports whether err means a backing service could not be
// reached or did not answer in time: ErrUnavailable, a passed deadline, a
// broken or refused connection, PostgreSQL's connection-exception,
// shutdown and too-many-connections errors, SQLite's "database is locked".
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 08: connection exceptions, 57P: operator intervention (shutdown),
		// 53: insufficient resources (too many connections).
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || strings.HasPrefix(pe.Code, "53")
	}
	msg := err.Error()
	return strings.Contains(msg, "database is locked") || strings.Contains(msg, "sql: database is closed") || strings.Contains(msg, "conn closed") ||
		strings.Contains(msg, "connection refused") || strings.Contains(msg, "failed to connect")
}

// Unique is a unique index or constraint of a package's table, as each
// database names it in a violation: PostgreSQL by its name, SQLite by the
// indexed columns ("users.email_key") or, for an index on an expression,
// by its name ("index 'users_username_key'"). The owning package declares
// its own and matches violations with Violates.
type Unique struct {
	Name    string // the index or constraint name (PostgreSQL's, and SQLite's for expression indexes)
	Columns string // SQLite's "table.column, table.column" for a column index; empty for an expression index
}

// Violates reports whether err is a violation of u.
func (u Unique) Violates(err error) bool {
	name, ok := uniqueViolation(err)
	if !ok {
		return false
	}
	return name == u.Name || (u.Columns != "" && name == u.Columns) || name == "index '"+u.Name+"'"
}

// IsUnique reports whether err is a violation of any unique index or
// constraint.
func IsUnique(err error) bool {
	_, ok := uniqueViolation(err)
	return ok
}

// uniqueViolation reports whether err is a unique-constraint violation and
// what the database named (PostgreSQL: the constraint; SQLite: the text
// after "UNIQUE constraint failed:").
func uniqueViolation(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if pe.Code == "23505" {
			return pe.ConstraintName, true
		}
		return "", false
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return "", true
	}
	msg := err.Error()
	if i := strings.Index(msg, "UNIQUE constraint failed:"); i >= 0 {
		name := strings.TrimSpace(msg[i+len("UNIQUE constraint failed:"):])
		// The driver appends the extended result code: "… (2067)".
		if j := strings.LastIndex(name, " ("); j >= 0 && strings.HasSuffix(name, ")") {
			name = name[:j]
		}
		return name, true
	}
	return "", false
}

// ForeignKeyViolation reports whether err is a foreign-key violation (a
// row referred to is gone).
func ForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

// CheckViolation reports whether err is a CHECK-constraint violation.
func CheckViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23514"
	}
	return err != nil && strings.Contains(err.Error(), "CHECK constraint failed")
}

// Retryable reports a PostgreSQL deadlock or serialization failure: the
// transaction was rolled back and may simply run again.
func Retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}
