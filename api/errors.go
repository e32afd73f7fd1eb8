// Package api is the HTTP frame every feature package shares: the contract's
// error shape, the handler adapter that turns returned errors into responses,
// JSON binding with the body limit, and the middleware (request IDs, access
// log, CORS, panic recovery).
package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an error with its HTTP status and stable contract code. Feature
// packages declare their sentinel errors as *Error values, so the one place
// that maps errors to responses (Handle) needs no table of its own.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter int
	cause      error
}

// NewError declares an error of the contract.
func NewError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
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
		return t.Code == e.Code && t.Status == e.Status
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

// WithRetryAfter returns a copy of e that carries a Retry-After value.
func (e *Error) WithRetryAfter(seconds int) *Error {
	c := *e
	if seconds < 1 {
		seconds = 1
	}
	c.RetryAfter = seconds
	return &c
}

// Errors of the HTTP frame itself and the ones several features share.
var (
	ErrInvalidJSON   = NewError(http.StatusBadRequest, "invalid_json", "the request body is not valid JSON of the expected shape")
	ErrBodyTooLarge  = NewError(http.StatusRequestEntityTooLarge, "body_too_large", "the request body exceeds 64 KiB")
	ErrNotFound      = NewError(http.StatusNotFound, "not_found", "no such endpoint")
	ErrMethod        = NewError(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this endpoint")
	ErrUnauthorized  = NewError(http.StatusUnauthorized, "unauthorized", "a valid auth token is required")
	ErrRateLimited   = NewError(http.StatusTooManyRequests, "rate_limited", "too many requests, retry later")
	ErrUnavailable   = NewError(http.StatusServiceUnavailable, "unavailable", "a backing service is unavailable, retry later")
	ErrInternal      = NewError(http.StatusInternalServerError, "internal", "internal error")
	ErrInvalidParam  = NewError(http.StatusBadRequest, "invalid_parameter", "a query parameter is invalid")
	ErrInvalidCursor = NewError(http.StatusBadRequest, "invalid_cursor", "the cursor is malformed")
)
