package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// RequestIDHeader is echoed back on every response, generated when absent.
const RequestIDHeader = "X-Request-Id"

const requestIDKey = "walletauth.request_id"

// errorCodeKey holds the contract code of the error a request was answered
// with (set by Abort), for the access log.
const errorCodeKey = "walletauth.error_code"

// RequestID echoes a sane incoming X-Request-Id or generates one.
func RequestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !validRequestID(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Set(requestIDKey, id)
		c.Header(RequestIDHeader, id)
		c.Next()
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// GetRequestID returns the request's ID set by RequestID.
func GetRequestID(c *gin.Context) string { return c.GetString(requestIDKey) }

// AccessLog writes one structured line per request: info, or error for a
// 5xx. It hands the record to log's handler itself, with no caller PC (the
// handler adds no source), so a line costs no stack walk and a level that
// drops it costs nothing but the check.
func AccessLog(log *slog.Logger) gin.HandlerFunc {
	h := log.Handler()
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		ctx := c.Request.Context()
		if !h.Enabled(ctx, level) {
			return
		}
		end := time.Now()
		path := c.Request.URL.RawPath // as sent (%2F stays encoded), else its canonical escaping
		if path == "" {
			path = c.Request.URL.EscapedPath()
		}
		r := slog.NewRecord(end, level, "request", 0)
		r.AddAttrs(
			slog.String("request_id", GetRequestID(c)),
			slog.String("method", c.Request.Method),
			slog.String("route", c.FullPath()),
			slog.String("path", path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(end.Sub(start).Microseconds())/1000),
			slog.String("client_ip", c.ClientIP()),
			slog.Int("bytes", c.Writer.Size()),
		)
		if code := c.GetString(errorCodeKey); code != "" {
			r.AddAttrs(slog.String("error_code", code))
		}
		if len(c.Errors) > 0 { // the causes, without gin's "Error #01:" numbering
			msgs := make([]string, len(c.Errors))
			for i, e := range c.Errors {
				msgs[i] = e.Err.Error()
			}
			r.AddAttrs(slog.String("error", strings.Join(msgs, "; ")))
		}
		_ = h.Handle(ctx, r) // as slog.Logger does: a failed log write is not the request's
	}
}

// Recover turns a panic into 500 internal in the contract's shape. It
// belongs inside AccessLog and the metrics (after them in the chain), so
// that the request is logged, with the panic as its error, and counted.
func Recover(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(r)
				}
				log.ErrorContext(c.Request.Context(), "panic", "request_id", GetRequestID(c), "panic", r)
				cause := fmt.Errorf("panic: %v", r) // the access log line's error
				if !c.Writer.Written() {
					Abort(c, ErrInternal.Wrap(cause))
				} else {
					_ = c.Error(cause)
					c.Abort()
				}
			}
		}()
		c.Next()
	}
}

// LimitBody refuses a declared body over MaxBody at once; bodies without a
// declared length are limited while read (ReadBody).
func LimitBody() gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > MaxBody {
			Abort(c, ErrBodyTooLarge)
			return
		}
		if c.Request.Body != nil && c.Request.Body != http.NoBody {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBody)
		}
		c.Next()
	}
}

// Deadline bounds every request's context, so a backend that hangs is
// answered 503 rather than holding the client.
func Deadline(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		if d <= 0 {
			c.Next()
			return
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}

// CORS answers cross-origin requests from the listed origins (exact match on
// scheme, host and port; "*" allows any). Paths under skip handle CORS
// themselves (the partner client-login route has per-partner origins).
func CORS(origins []string, skip string) gin.HandlerFunc {
	allowAll := slices.Contains(origins, "*")
	return func(c *gin.Context) {
		origin := c.GetHeader("Origin")
		if origin == "" || (skip != "" && strings.HasPrefix(c.Request.URL.Path, skip)) {
			c.Next()
			return
		}
		c.Header("Vary", "Origin")
		if !allowAll && !slices.Contains(origins, origin) {
			if isPreflight(c) {
				Abort(c, ErrOriginNotAllowed) // not 405 from the routing
				return
			}
			c.Next()
			return
		}
		SetCORSHeaders(c, origin)
		if isPreflight(c) {
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		c.Next()
	}
}

// SetCORSHeaders allows origin on this response (and a preflight).
func SetCORSHeaders(c *gin.Context, origin string) {
	c.Header("Access-Control-Allow-Origin", origin)
	c.Header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
	c.Header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id")
	c.Header("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
	c.Header("Access-Control-Max-Age", "600")
}

// NoRoute and NoMethod answer unknown paths and methods in the error shape.
func NoRoute(c *gin.Context)  { Abort(c, ErrNotFound) }
func NoMethod(c *gin.Context) { allowHead(c); Abort(c, ErrMethod) }
