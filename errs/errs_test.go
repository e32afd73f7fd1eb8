package errs_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/walletauth/walletauth/errs"
)

// Copies of a sentinel (WithMessage, Wrap, WithRetryAfter) match it by
// code and leave it as it was; another code does not match.
func TestErrorCopies(t *testing.T) {
	sentinel := errs.New("thing_taken", "that thing is taken")
	other := errs.New("thing_missing", "no such thing")
	cause := errors.New("duplicate key")

	msg := sentinel.WithMessage("thing %q is taken", "x")
	wrapped := sentinel.Wrap(cause)
	retry := sentinel.WithRetryAfter(0)
	for _, err := range []error{msg, wrapped, retry, fmt.Errorf("op: %w", msg)} {
		if !errors.Is(err, sentinel) {
			t.Errorf("errors.Is(%v, sentinel) = false", err)
		}
		if errors.Is(err, other) {
			t.Errorf("errors.Is(%v, another code) = true", err)
		}
	}
	if !errors.Is(errs.New("thing_taken", "another text"), sentinel) {
		t.Error("two declarations of one code do not match")
	}
	if msg.Message != `thing "x" is taken` || msg.Error() != `thing_taken: thing "x" is taken` {
		t.Errorf("WithMessage = %q (%q)", msg.Message, msg.Error())
	}
	if !errors.Is(wrapped, cause) || wrapped.Error() != "thing_taken: that thing is taken: duplicate key" {
		t.Errorf("Wrap = %q, cause kept: %v", wrapped.Error(), errors.Is(wrapped, cause))
	}
	if retry.RetryAfter != 1 || sentinel.WithRetryAfter(30).RetryAfter != 30 {
		t.Errorf("WithRetryAfter(0) = %d, want at least 1", retry.RetryAfter)
	}
	if sentinel.Message != "that thing is taken" || sentinel.RetryAfter != 0 || sentinel.Unwrap() != nil {
		t.Errorf("the sentinel changed: %+v", *sentinel)
	}
	if errors.Is(sentinel, errors.New("thing_taken: that thing is taken")) {
		t.Error("an error of another type matches by its text")
	}
}
