// Package kv is the key-value store that server instances share: nonces and
// challenges, login codes, rate-limit counters, replay caches and
// token-revocation markers.
//
// Two implementations satisfy [Store]: [Memory], in-process, for a single
// instance and for tests, and [Redis], which any number of instances share.
// Consumers declare the smaller interface they need.
//
// Errors: a missing or expired key is [ErrNotFound]; every backend failure
// (connection refused, timeout, closed store) wraps [ErrUnavailable] and
// keeps its cause, so callers answer 503 and fail closed.
package kv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/walletauth/walletauth/storage"
)

// ErrNotFound is returned when a key is absent or has expired.
var ErrNotFound = errors.New("kv: not found")

// ErrUnavailable wraps every backend failure (connection refused, timeout,
// closed store). Callers answer 503 and fail closed. It is
// storage.ErrUnavailable: one error for every backing service's outage.
var ErrUnavailable = storage.ErrUnavailable

// errNotInteger is returned by Incr and Count when the key holds a value that
// is not a decimal integer.
var errNotInteger = errors.New("kv: value is not an integer")

// errInvalidTTL is returned for a negative ttl or a non-positive window.
var errInvalidTTL = errors.New("kv: invalid ttl")

// errInvalidMax is returned by PushList for a keep under 1.
var errInvalidMax = errors.New("kv: invalid list length")

// errWrongType is returned when a list is read as a plain value, or the
// other way round.
var errWrongType = errors.New("kv: key holds another kind of value")

func pushArgs(keep int, ttl time.Duration) error {
	if keep < 1 {
		return fmt.Errorf("kv: push: %w: %d", errInvalidMax, keep)
	}
	if ttl < 0 {
		return fmt.Errorf("kv: push: %w: %v", errInvalidTTL, ttl)
	}
	return nil
}

// Store is the contract both implementations satisfy. A ttl of 0 means no
// expiry; a negative ttl is an error. Keys are opaque strings; values are
// copied in and out.
type Store interface {
	// Set stores value under key, replacing any value and expiry.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetMany is Set of each entry, all with expiry ttl, in one round trip
	// (not atomically: after an error some may be set).
	SetMany(ctx context.Context, ttl time.Duration, entries ...Entry) error
	// Get returns the value of key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// SetNX stores value only if key is absent; true if it was set.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Consume atomically gets and deletes key: of any number of concurrent
	// callers exactly one gets the value, the others ErrNotFound.
	Consume(ctx context.Context, key string) ([]byte, error)
	// CompareAndDelete deletes key only if its value equals value; true when
	// it deleted.
	CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error)
	// Delete removes keys; absent keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// Incr adds one to a fixed-window counter. The first Incr creates it with
	// expiry window (so does an Incr on a key without expiry). It returns the
	// new count and the time left in the window.
	Incr(ctx context.Context, key string, window time.Duration) (count int64, ttl time.Duration, err error)
	// Count returns a counter's value and the time left in its window; 0, 0
	// when absent. ttl is 0 for a key without expiry.
	Count(ctx context.Context, key string) (count int64, ttl time.Duration, err error)
	// PushList prepends value to the list under key and keeps only its
	// newest keep values (keep ≥ 1), and gives the whole list expiry ttl, as
	// one atomic step; entries are Set with expiry ttl in the same round
	// trip (as by SetMany: not atomically with the push). A list is read
	// with List only: Get, Consume, CompareAndDelete, Incr and Count of a
	// list key are errors, and so are PushList and List of a plain key.
	PushList(ctx context.Context, key string, value []byte, keep int, ttl time.Duration, entries ...Entry) error
	// List returns the values of the list under key, newest first; none
	// (and no error) when it is absent or has expired.
	List(ctx context.Context, key string) ([][]byte, error)
	// CompareAndDeleteList deletes the list under key only if it holds
	// value and nothing else; true when it did. A plain key is an error.
	CompareAndDeleteList(ctx context.Context, key string, value []byte) (bool, error)
	// Ping reports whether the backend answers; the error wraps ErrUnavailable.
	Ping(ctx context.Context) error
	// Close releases the store; later calls fail with ErrUnavailable.
	Close() error
}

// Entry is one key and value of SetMany.
type Entry struct {
	Key   string
	Value []byte
}

func unavailable(op string, err error) error {
	return fmt.Errorf("kv: %s: %w: %w", op, ErrUnavailable, err)
}
