package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/errs"
	"github.com/walletauth/walletauth/storage"
)

// MaxBody is the largest request body the service reads (the contract's 64 KiB).
const MaxBody = 64 << 10

// HandlerFunc is a Gin handler that returns its error instead of writing it,
// so a forgotten return after an error response cannot happen.
type HandlerFunc func(c *gin.Context) error

// Handle adapts h to Gin: a returned error is written in the contract's
// shape by Abort.
func Handle(h HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			Abort(c, err)
		}
	}
}

// Abort writes err as the contract's error response and stops the chain:
// the contract error and status of Response (an *errs.Error with the
// status of its code, a backend outage as 503 unavailable, anything else as
// 500 internal), with the cause of a 5xx kept on the context for the access
// log.
func Abort(c *gin.Context, err error) {
	e, status := Response(err)
	if status >= 500 {
		_ = c.Error(err) // recorded for the access log line
	}
	c.Set(errorCodeKey, e.Code) // the access log line's error_code
	if e.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	c.AbortWithStatusJSON(status, Body(e))
}

// Body is the JSON body of an error response.
func Body(e *errs.Error) gin.H {
	return gin.H{"error": gin.H{"code": e.Code, "message": e.Message}}
}

// Unavailable reports whether err means a backing service (database, shared
// store, RPC) could not be reached or did not answer in time, as opposed to a
// bug: such requests are answered 503 and may be retried (storage decides).
func Unavailable(err error) bool { return storage.Unavailable(err) }

// Bind decodes the JSON request body into dst: 413 body_too_large past
// MaxBody, 400 invalid_json for anything that is not one JSON value of the
// expected shape (wrong field types included).
func Bind(c *gin.Context, dst any) error {
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	return Decode(body, dst)
}

// ReadBody returns the raw request body, enforcing MaxBody. The bytes are
// kept on the context so a later reader (request signing) sees the same.
func ReadBody(c *gin.Context) ([]byte, error) {
	if v, ok := c.Get(bodyKey); ok {
		return v.([]byte), nil
	}
	if c.Request.Body == nil {
		c.Set(bodyKey, []byte{})
		return []byte{}, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, ErrBodyTooLarge
		}
		return nil, ErrInvalidJSON.WithMessage("the request body could not be read")
	}
	c.Set(bodyKey, body)
	return body, nil
}

const bodyKey = "walletauth.body"

// Decode unmarshals one JSON object from body into dst. Every string in it
// must be text (see ValidText): invalid UTF-8, a \u0000 escape or a lone
// surrogate escape ("\ud800") is refused, not replaced with U+FFFD.
func Decode(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return ErrInvalidJSON.WithMessage("the request body is empty; a JSON object is expected")
	}
	if err := checkJSONText(body); err != nil {
		return err
	}
	// The common case, one valid object, in one pass; anything else is
	// decoded again below for the precise message.
	if json.Unmarshal(body, dst) == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return ErrInvalidJSON.WithMessage("field %q has the wrong type", te.Field)
		}
		return ErrInvalidJSON
	}
	if dec.More() {
		return ErrInvalidJSON.WithMessage("the request body holds more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrInvalidJSON.WithMessage("the request body holds trailing data")
	}
	return nil
}
