package webhooks_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
	"github.com/walletauth/walletauth/webhooks"
)

type event struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      struct {
		ExternalID string          `json:"external_id"`
		User       *users.View     `json:"user"`
		Points     *int64          `json:"points"`
		Amount     *int64          `json:"amount"`
		Reason     *string         `json:"reason"`
		EntryID    *string         `json:"entry_id"`
		Raw        json.RawMessage `json:"-"`
	} `json:"data"`
}

// events are the outbox's events for endpoint id, oldest first, and
// removes them (so each step of a test sees its own).
func (e *env) events(endpointID string) []event {
	e.t.Helper()
	var out []event
	for _, r := range e.rows() {
		if r.EndpointID != endpointID {
			continue
		}
		var ev event
		if err := json.Unmarshal([]byte(r.Payload), &ev); err != nil {
			e.t.Fatal(err)
		}
		if ev.Type != r.EventType {
			e.t.Fatalf("row type %s, body type %s", r.EventType, ev.Type)
		}
		out = append(out, ev)
	}
	if err := e.db.Where("endpoint_id = ?", endpointID).Delete(&webhooks.Delivery{}).Error; err != nil {
		e.t.Fatal(err)
	}
	return out
}

func types(evs []event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

// Every change of a partner's user, made through the real router, puts its
// event in the outbox in the change's transaction; another partner's
// endpoints hear nothing of users it has no identity of, and an endpoint
// hears only the events it subscribed to.
func TestChangesEnqueueEvents(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		p, other := e.partner("Acme"), e.partner("Other")
		all, _ := e.register(p, "https://hooks.acme.example/all")
		onlyPoints, _ := e.register(p, "https://hooks.acme.example/points", "points.changed")
		otherHook, _ := e.register(other, "https://hooks.other.example/all")

		// user.created: a partner login registered the user; a second login does not.
		tok := e.login(p, "ext-1")
		evs := e.events(all)
		if !slices.Equal(types(evs), []string{"user.created"}) || evs[0].Data.ExternalID != "ext-1" || evs[0].Data.User == nil {
			t.Fatalf("after the first login: %+v", evs)
		}
		if _, err := time.Parse(time.RFC3339Nano, evs[0].Timestamp); err != nil {
			t.Fatalf("timestamp %q: %v", evs[0].Timestamp, err)
		}
		userID := evs[0].Data.User.ID
		e.login(p, "ext-1")
		if evs := e.events(all); len(evs) != 0 {
			t.Fatalf("a returning login enqueued %v", types(evs))
		}

		// user.updated: profile.
		e.want(e.do("PATCH", "/v1/users/me", tok, map[string]any{"username": "alice_w", "language": "de"}), http.StatusOK)
		evs = e.events(all)
		if !slices.Equal(types(evs), []string{"user.updated"}) || evs[0].Data.User.Username != "alice_w" || evs[0].Data.User.Language != "de" {
			t.Fatalf("after the profile update: %+v", evs)
		}

		// user.updated: wallets (a link through the store).
		key, _ := crypto.GenerateKey()
		addr := crypto.PubkeyToAddress(key.PublicKey)
		if _, err := e.users.AddWallet(context.Background(), users.Wallet{Address: addr.Bytes(), UserID: userID, ChainID: 1, Type: "eoa"}); err != nil {
			t.Fatal(err)
		}
		evs = e.events(all)
		if !slices.Equal(types(evs), []string{"user.updated"}) || len(evs[0].Data.User.Wallets) != 1 {
			t.Fatalf("after a wallet link: %+v", evs)
		}

		// user.updated: referrer.
		refTok := e.login(other, "referrer")
		ref := e.want(e.do("GET", "/v1/users/me", refTok, nil), http.StatusOK)
		e.events(otherHook)
		e.want(e.do("POST", "/v1/users/me/referrer", tok, map[string]any{"referral_code": ref["referral_code"]}), http.StatusOK)
		evs = e.events(all)
		if !slices.Equal(types(evs), []string{"user.updated"}) || evs[0].Data.User.Referrer == nil {
			t.Fatalf("after setting the referrer: %+v", evs)
		}

		// points.changed, to both endpoints; a refused change enqueues nothing.
		m := e.want(e.do("POST", "/v1/partner/users/ext-1/points", p.Secret, map[string]any{"amount": 30, "reason": "quest", "idempotency_key": "k1"}), http.StatusOK)
		for _, id := range []string{all, onlyPoints} {
			evs = e.events(id)
			if len(evs) != 1 || evs[0].Type != "points.changed" || *evs[0].Data.Points != 30 || *evs[0].Data.Amount != 30 ||
				*evs[0].Data.Reason != "quest" || *evs[0].Data.EntryID != m["entry_id"] || evs[0].Data.User.Points != 30 {
				t.Fatalf("endpoint %s after points: %+v", id, evs)
			}
		}
		e.want(e.do("POST", "/v1/partner/users/ext-1/points", p.Secret, map[string]any{"amount": 30, "reason": "quest", "idempotency_key": "k1"}), http.StatusOK)
		e.want(e.do("POST", "/v1/partner/users/ext-1/points", p.Secret, map[string]any{"amount": -100, "reason": "x", "idempotency_key": "k2"}), http.StatusConflict)
		if evs := e.events(all); len(evs) != 0 {
			t.Fatalf("a replayed and a refused points change enqueued %v", types(evs))
		}
		if evs := e.events(otherHook); len(evs) != 0 {
			t.Fatalf("the other partner heard %v of a user it does not have", types(evs))
		}

		// user.deleted, without the user; the referrer's partner is not told
		// (its user is not deleted), and its referee count is not an event.
		e.want(e.do("DELETE", "/v1/users/me", tok, nil), http.StatusNoContent)
		evs = e.events(all)
		if !slices.Equal(types(evs), []string{"user.deleted"}) || evs[0].Data.ExternalID != "ext-1" || evs[0].Data.User != nil {
			t.Fatalf("after the deletion: %+v", evs)
		}
		if evs := e.events(onlyPoints); len(evs) != 0 {
			t.Fatalf("the points-only endpoint heard %v", types(evs))
		}
	})
}

// DELETE /v1/partner/users removes the partner's identity before the user
// it leaves without a login; the partner is told user.deleted all the same.
func TestPartnerDeletionEnqueuesUserDeleted(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		p := e.partner("Acme")
		hook, _ := e.register(p, "https://hooks.acme.example/all", "user.deleted")
		e.login(p, "ext-1")
		e.login(p, "ext-2")
		m := e.want(e.do("DELETE", "/v1/partner/users", p.Secret, map[string]any{"external_ids": []string{"ext-1", "nobody"}}), http.StatusOK)
		if m["deleted"] != float64(1) {
			t.Fatalf("deleted %v", m)
		}
		evs := e.events(hook)
		if !slices.Equal(types(evs), []string{"user.deleted"}) || evs[0].Data.ExternalID != "ext-1" || evs[0].Data.User != nil {
			t.Fatalf("after the partner's deletion: %+v", evs)
		}
	})
}

// The event is written in the change's transaction: when it cannot be
// stored, the change is not made either.
func TestEventAndChangeCommitTogether(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		p := e.partner("Acme")
		e.register(p, "https://hooks.acme.example/all")
		tok := e.login(p, "ext-1")
		if err := db.Exec(`DROP TABLE webhook_deliveries`).Error; err != nil {
			t.Fatal(err)
		}
		if r := e.do("PATCH", "/v1/users/me", tok, map[string]any{"username": "renamed_x"}); r.Code != http.StatusInternalServerError {
			t.Fatalf("profile update without an outbox: %d %s", r.Code, r.Body)
		}
		me := e.want(e.do("GET", "/v1/users/me", tok, nil), http.StatusOK)
		if me["username"] == "renamed_x" {
			t.Fatal("the change committed without its event")
		}
	})
}

func TestQueueMetrics(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		p := e.partner("Acme")
		e.register(p, "http://"+closedPort(t)+"/x", "user.created")
		e.login(p, "ext-1")
		e.login(p, "ext-2")
		e.clock.Advance(90 * time.Second)
		runOnce(t, e.worker(webhooks.WorkerOptions{AllowPrivate: true}))
		runOnce(t, e.worker(webhooks.WorkerOptions{AllowPrivate: true}))
		e.observed.mu.Lock()
		defer e.observed.mu.Unlock()
		if e.observed.depth != 2 || e.observed.oldest != 90*time.Second {
			t.Fatalf("depth %d, oldest %v; want 2, 1m30s", e.observed.depth, e.observed.oldest)
		}
	})
}
