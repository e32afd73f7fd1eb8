// Package errs is the service's error vocabulary: an error of the contract
// is a stable code (snake_case, never renamed) and a message for people.
// Each feature package declares its sentinel errors with New; none of them
// says how it travels: package api holds the one table from codes to HTTP
// statuses. errs imports nothing of the project and no HTTP.
package errs

import (
	"errors"
	"fmt"
)

// Error is an error of the contract: its code and a human message.
type Error struct {
	Code    string
	Message string
	// RetryAfter, when set, tells the client when to retry (seconds; the
	// HTTP layer sends it as the Retry-After header).
	RetryAfter int
	cause      error
}

// New declares an error of the contract.
func New(code, message string) *Error {
	return &Error{Code: code, Message: message}
}

func (e *Error) Error() string {
	if e.cause != nil {
		return e.Code + ": " + e.Message + ": " + e.cause.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause given with Wrap.
func (e *Error) Unwrap() error { return e.cause }

// Is matches errors of the same code, so a copy made by WithMessage or Wrap
// still satisfies errors.Is against the sentinel.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// WithMessage returns a copy of e with a more specific human message.
func (e *Error) WithMessage(format string, args ...any) *Error {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

// Wrap returns a copy of e that keeps cause for errors.Is/As and logs.
func (e *Error) Wrap(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// WithRetryAfter returns a copy of e that carries a Retry-After value (at
// least 1 second).
func (e *Error) WithRetryAfter(seconds int) *Error {
	c := *e
	if seconds < 1 {
		seconds = 1
	}
	c.RetryAfter = seconds
	return &c
}
