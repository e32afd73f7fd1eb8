package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/errs"
)

// Abort answers an error of the contract with its code's row of the table,
// and the status a handler gave it with WithStatus; an unknown code, or an
// error of no contract, is 500 internal with the cause kept for the access
// log; an outage is 503 unavailable.
func TestAbortStatuses(t *testing.T) {
	gin.SetMode(gin.TestMode)
	errTeapot := errs.New("teapot", "no row in the table")
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		code, msg  string
		retryAfter string
		logged     bool // kept on the context for the access log
	}{
		{"a code of the table", ErrInvalidJSON, 400, "invalid_json", ErrInvalidJSON.Message, "", false},
		{"a copy, wrapped", fmt.Errorf("x: %w", ErrUnauthorized.WithMessage("who are you")), 401, "unauthorized", "who are you", "", false},
		{"retry after", ErrRateLimited.WithRetryAfter(7), 429, "rate_limited", ErrRateLimited.Message, "7", false},
		{"a 5xx of the table", ErrUnavailable.Wrap(errors.New("pool closed")), 503, "unavailable", ErrUnavailable.Message, "", true},
		{"another status here", WithStatus(http.StatusBadRequest, ErrUnauthorized), 400, "unauthorized", ErrUnauthorized.Message, "", false},
		{"another status, wrapped", fmt.Errorf("x: %w", WithStatus(http.StatusBadRequest, ErrUnauthorized.WithMessage("m"))), 400, "unauthorized", "m", "", false},
		{"a code missing from the table", errTeapot, 500, "internal", "internal error", "", true},
		{"WithStatus of a missing code", WithStatus(http.StatusBadRequest, errTeapot), 500, "internal", "internal error", "", true},
		{"WithStatus of no contract error", WithStatus(http.StatusBadRequest, errors.New("bug")), 500, "internal", "internal error", "", true},
		{"no contract error", errors.New("bug"), 500, "internal", "internal error", "", true},
		{"an outage", fmt.Errorf("query: %w", context.DeadlineExceeded), 503, "unavailable", ErrUnavailable.Message, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logged int
			r := gin.New()
			r.GET("/", func(c *gin.Context) {
				Handle(func(*gin.Context) error { return tc.err })(c)
				logged = len(c.Errors)
			})
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			want := fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`, tc.code, tc.msg)
			if w.Code != tc.status || w.Body.String() != want {
				t.Errorf("answer = %d %s; want %d %s", w.Code, w.Body.String(), tc.status, want)
			}
			if got := w.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			if (logged > 0) != tc.logged {
				t.Errorf("cause kept for the access log: %v, want %v", logged > 0, tc.logged)
			}
			if e, status := Response(tc.err); e.Code != tc.code || status != tc.status || Status(tc.err) != tc.status || Classify(tc.err) != e {
				t.Errorf("Response = %s, %d; want %s, %d", e.Code, status, tc.code, tc.status)
			}
		})
	}
}
