package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api"
)

// /readyz is 200 when every check answers, else 503 unavailable naming
// the first that does not.
func TestReady(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("connection refused") }
	cases := []struct {
		name       string
		checks     []api.Check
		wantStatus int
		wantBody   string
	}{
		{"all answer", []api.Check{{"the database", ok}, {"the shared store", ok}}, 200, `{"status":"ready"}`},
		{"store down", []api.Check{{"the database", ok}, {"the shared store", down}}, 503,
			`{"error":{"code":"unavailable","message":"the shared store does not answer"}}`},
		{"both down: the first named", []api.Check{{"the database", down}, {"the shared store", down}}, 503,
			`{"error":{"code":"unavailable","message":"the database does not answer"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := gin.New()
			r.GET("/readyz", api.Ready(c.checks...))
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != c.wantStatus || strings.TrimSpace(rec.Body.String()) != c.wantBody {
				t.Fatalf("GET /readyz = %d %s, want %d %s", rec.Code, rec.Body, c.wantStatus, c.wantBody)
			}
		})
	}
}
