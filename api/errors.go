// Package api is the HTTP frame every feature package shares: the contract's
// error shape and the one table from error codes to HTTP statuses, the
// handler adapter that turns returned errors into responses, JSON binding
// with the body limit, and the middleware (request IDs, access log, CORS,
// panic recovery).
package api

import (
	"errors"
	"net/http"

	"github.com/walletauth/walletauth/errs"
)

// Errors of the HTTP frame itself and the ones several features share.
var (
	ErrInvalidJSON   = errs.New("invalid_json", "the request body is not valid JSON of the expected shape")
	ErrBodyTooLarge  = errs.New("body_too_large", "the request body exceeds 64 KiB")
	ErrNotFound      = errs.New("not_found", "no such endpoint")
	ErrMethod        = errs.New("method_not_allowed", "method not allowed on this endpoint")
	ErrUnauthorized  = errs.New("unauthorized", "a valid auth token is required")
	ErrRateLimited   = errs.New("rate_limited", "too many requests, retry later")
	ErrUnavailable   = errs.New("unavailable", "a backing service is unavailable, retry later")
	ErrInternal      = errs.New("internal", "internal error")
	ErrInvalidParam  = errs.New("invalid_parameter", "a query parameter is invalid")
	ErrInvalidCursor = errs.New("invalid_cursor", "the cursor is malformed")
)

// statuses is the one table from the contract's error codes (declared with
// errs.New in the packages that own them) to HTTP statuses. A code missing
// here is answered 500 internal; TestStatusTableCoversEveryCode finds every
// declared code in the source and fails for one without a row, or a row
// without a code. Read only.
//
// One code's status depends on the endpoint: chain_not_allowed is 401 here
// (a signed message's chain, at wallet login) and 400 at the challenge,
// whose handler says so with WithStatus.
var statuses = map[string]int{
	// 400
	"invalid_json":            http.StatusBadRequest,
	"invalid_parameter":       http.StatusBadRequest,
	"invalid_cursor":          http.StatusBadRequest,
	"invalid_address":         http.StatusBadRequest,
	"invalid_message":         http.StatusBadRequest,
	"invalid_signature":       http.StatusBadRequest,
	"invalid_email":           http.StatusBadRequest,
	"weak_password":           http.StatusBadRequest,
	"invalid_username":        http.StatusBadRequest,
	"invalid_language":        http.StatusBadRequest,
	"invalid_referral_code":   http.StatusBadRequest,
	"external_id_missing":     http.StatusBadRequest,
	"invalid_external_id":     http.StatusBadRequest,
	"invalid_name":            http.StatusBadRequest,
	"token_not_allowed":       http.StatusBadRequest,
	"invalid_origin":          http.StatusBadRequest,
	"invalid_partner_name":    http.StatusBadRequest,
	"invalid_amount":          http.StatusBadRequest,
	"invalid_reason":          http.StatusBadRequest,
	"idempotency_key_missing": http.StatusBadRequest,
	"invalid_idempotency_key": http.StatusBadRequest,
	"invalid_url":             http.StatusBadRequest,
	"invalid_events":          http.StatusBadRequest,
	// 401
	"unauthorized":              http.StatusUnauthorized,
	"chain_not_allowed":         http.StatusUnauthorized, // 400 at the challenge (WithStatus)
	"signature_mismatch":        http.StatusUnauthorized,
	"nonce_invalid":             http.StatusUnauthorized,
	"message_expired":           http.StatusUnauthorized,
	"message_not_yet_valid":     http.StatusUnauthorized,
	"domain_mismatch":           http.StatusUnauthorized,
	"invalid_credentials":       http.StatusUnauthorized,
	"code_invalid":              http.StatusUnauthorized,
	"partner_unauthorized":      http.StatusUnauthorized,
	"request_signature_invalid": http.StatusUnauthorized,
	"request_replayed":          http.StatusUnauthorized,
	"login_code_invalid":        http.StatusUnauthorized,
	// 403
	"origin_not_allowed":    http.StatusForbidden,
	"client_login_disabled": http.StatusForbidden,
	// 404
	"not_found":         http.StatusNotFound,
	"user_not_found":    http.StatusNotFound,
	"wallet_not_found":  http.StatusNotFound,
	"session_not_found": http.StatusNotFound,
	"partner_not_found": http.StatusNotFound,
	"webhook_not_found": http.StatusNotFound,
	// 405
	"method_not_allowed": http.StatusMethodNotAllowed,
	// 409
	"username_taken":         http.StatusConflict,
	"email_taken":            http.StatusConflict,
	"email_already_set":      http.StatusConflict,
	"email_not_set":          http.StatusConflict,
	"email_already_verified": http.StatusConflict,
	"wallet_taken":           http.StatusConflict,
	"last_login_method":      http.StatusConflict,
	"referrer_already_set":   http.StatusConflict,
	"insufficient_points":    http.StatusConflict,
	"balance_too_large":      http.StatusConflict,
	// 413, 429, 431
	"body_too_large":    http.StatusRequestEntityTooLarge,
	"rate_limited":      http.StatusTooManyRequests,
	"headers_too_large": http.StatusRequestHeaderFieldsTooLarge,
	// 500, 503
	"internal":        http.StatusInternalServerError,
	"unavailable":     http.StatusServiceUnavailable,
	"rpc_unavailable": http.StatusServiceUnavailable,
}

// WithStatus returns err to be answered with status instead of its code's
// row of the table: for the one endpoint where the contract gives a code
// another status (see statuses). The handler that knows the endpoint
// decides; the sentinel error never carries a status. It applies only to
// an error of the contract with a known code (anything else stays 500 or
// 503).
func WithStatus(status int, err error) error {
	return &statusError{status: status, err: err}
}

type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// Response returns what err is answered with: the contract error (an
// *errs.Error of err whose code the table knows; ErrUnavailable for a
// backend outage; ErrInternal for anything else, an unknown code included)
// and its HTTP status.
func Response(err error) (*errs.Error, int) {
	var e *errs.Error
	if !errors.As(err, &e) {
		if Unavailable(err) {
			return ErrUnavailable, statuses[ErrUnavailable.Code]
		}
		return ErrInternal, statuses[ErrInternal.Code]
	}
	status, ok := statuses[e.Code]
	if !ok {
		return ErrInternal, statuses[ErrInternal.Code]
	}
	var s *statusError
	if errors.As(err, &s) {
		status = s.status
	}
	return e, status
}

// Classify maps any error to the contract error it is answered with (see
// Response).
func Classify(err error) *errs.Error {
	e, _ := Response(err)
	return e
}

// Status is the HTTP status err is answered with (see Response).
func Status(err error) int {
	_, status := Response(err)
	return status
}
