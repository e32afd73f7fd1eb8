package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/walletauth/walletauth/api/apitest"
)

// The wired service delivers a partner's webhook on its own: a partner
// login through the real router becomes a signed user.created at a real
// receiver, counted in /metrics.
func TestServiceDeliversWebhooks(t *testing.T) {
	a := newTestApp(t, withWebhookWorker(), withEnv("WEBHOOK_ALLOW_PRIVATE", "true")) // the receiver is on 127.0.0.1
	var (
		mu   sync.Mutex
		got  [][]byte
		hdrs []http.Header
	)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, hdrs = append(got, b), append(hdrs, r.Header.Clone())
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	secret := a.newPartner(t)
	rec := a.do(t, http.MethodPost, "/v1/partner/webhooks", map[string]any{"url": rc.URL + "/hook", "events": []string{"user.created"}}, apitest.Bearer(secret)...)
	apitest.WantStatus(t, rec, http.StatusCreated)
	var wh struct{ Secret string }
	apitest.DecodeJSON(t, rec, &wh)
	apitest.WantStatus(t, a.do(t, http.MethodPost, "/v1/partner/users/login", map[string]any{"external_id": "e-1"}, apitest.Bearer(secret)...), http.StatusOK)

	deadline := time.Now().Add(15 * time.Second) // the worker polls every second
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("receiver got %d webhooks, want 1", len(got))
	}
	v, err := standardwebhooks.NewWebhook(wh.Secret)
	if err != nil {
		t.Fatal(err)
	}
	// The app's clock is fixed in the past: the signature, not the window, is checked.
	if err := v.VerifyIgnoringTimestamp(got[0], hdrs[0]); err != nil {
		t.Fatalf("signature: %v", err)
	}
	var ev struct {
		Type string
		Data struct {
			ExternalID string `json:"external_id"`
		}
	}
	if err := json.Unmarshal(got[0], &ev); err != nil || ev.Type != "user.created" || ev.Data.ExternalID != "e-1" {
		t.Fatalf("event %s (%v)", got[0], err)
	}
	// The outcome is counted after the receiver answered and the row was updated.
	var metrics string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		metrics = a.do(t, http.MethodGet, "/metrics", nil).Body.String()
		if strings.Contains(metrics, `walletauth_webhook_deliveries_total{outcome="delivered"} 1`) {
			break
		}
	}
	for _, want := range []string{`walletauth_webhook_deliveries_total{outcome="delivered"} 1`, "walletauth_webhook_queue_depth", "walletauth_webhook_oldest_pending_seconds"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
