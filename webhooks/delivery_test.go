package webhooks_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/webhooks"
)

// A 2xx is delivered once, signed so that the Standard Webhooks library
// verifies it with the secret shown at registration.
func TestDeliveredOnceWithValidSignature(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		rc := newReceiver(t)
		p := e.partner("Acme")
		_, secret := e.register(p, rc.URL+"/hook", "user.created")
		e.login(p, "ext-1")
		if rows := e.rows(); len(rows) != 1 || rows[0].Status != webhooks.StatusPending || rows[0].EventType != "user.created" {
			t.Fatalf("outbox after the login: %+v", rows)
		}
		w := e.worker(webhooks.WorkerOptions{AllowPrivate: true})
		if n := runOnce(t, w); n != 1 {
			t.Fatalf("attempts %d, want 1", n)
		}
		runOnce(t, w)
		e.clock.Advance(time.Hour)
		runOnce(t, w)
		got := rc.requests()
		if len(got) != 1 {
			t.Fatalf("receiver got %d requests, want 1", len(got))
		}
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(got[0].Body, got[0].Header); err != nil {
			t.Fatalf("the library does not verify the webhook: %v (headers %v)", err, got[0].Header)
		}
		if err := wh.Verify(append(got[0].Body, ' '), got[0].Header); err == nil {
			t.Fatal("the library verifies a changed body: the test cannot fail")
		}
		var ev struct {
			Type, Timestamp string
			Data            struct {
				ExternalID string         `json:"external_id"`
				User       map[string]any `json:"user"`
			}
		}
		if err := json.Unmarshal(got[0].Body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != "user.created" || ev.Data.ExternalID != "ext-1" || ev.Data.User["id"] == nil || ev.Timestamp == "" {
			t.Fatalf("event %s", got[0].Body)
		}
		if rows := e.rows(); rows[0].Status != webhooks.StatusDelivered || rows[0].Attempts != 1 || got[0].Header.Get("webhook-id") != rows[0].ID {
			t.Fatalf("row after delivery: %+v", rows[0])
		}
		if e.observed.count("delivered") != 1 {
			t.Fatalf("metrics: %v", e.observed.outcomes)
		}
	})
}

// 500s are retried on the schedule, with the same webhook-id, and the event
// is dropped (recorded) after the last retry.
func TestRetriedOnScheduleThenDropped(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		rc := newReceiver(t)
		rc.setStatus(http.StatusInternalServerError)
		p := e.partner("Acme")
		e.register(p, rc.URL, "user.created")
		e.login(p, "ext-1")
		w := e.worker(webhooks.WorkerOptions{AllowPrivate: true})
		runOnce(t, w)
		for i, wait := range webhooks.Schedule() {
			e.clock.Advance(wait - time.Second)
			if n := runOnce(t, w); n != 0 {
				t.Fatalf("retry %d made %v early", i+1, wait-time.Second)
			}
			e.clock.Advance(time.Second)
			if n := runOnce(t, w); n != 1 {
				t.Fatalf("retry %d not made %v after the failure", i+1, wait)
			}
		}
		got := rc.requests()
		if len(got) != 1+len(webhooks.Schedule()) {
			t.Fatalf("%d attempts, want %d", len(got), 1+len(webhooks.Schedule()))
		}
		for _, r := range got {
			if r.Header.Get("webhook-id") != got[0].Header.Get("webhook-id") {
				t.Fatal("webhook-id changed between attempts")
			}
		}
		row := e.rows()[0]
		if row.Status != webhooks.StatusDropped || row.LastStatus == nil || *row.LastStatus != 500 || row.FinishedAt == nil {
			t.Fatalf("row after the schedule: %+v", row)
		}
		e.clock.Advance(24 * time.Hour)
		if n := runOnce(t, w); n != 0 {
			t.Fatal("a dropped event was attempted again")
		}
		if e.observed.count("failed") != len(webhooks.Schedule()) || e.observed.count("dropped") != 1 {
			t.Fatalf("metrics: %v", e.observed.outcomes)
		}
	})
}

func TestRecoversAfterAFailure(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		rc := newReceiver(t)
		rc.setStatus(http.StatusServiceUnavailable)
		p := e.partner("Acme")
		_, secret := e.register(p, rc.URL, "user.created")
		e.login(p, "ext-1")
		w := e.worker(webhooks.WorkerOptions{AllowPrivate: true})
		runOnce(t, w)
		rc.setStatus(http.StatusNoContent)
		e.clock.Advance(5 * time.Second)
		runOnce(t, w)
		got := rc.requests()
		if len(got) != 2 || e.rows()[0].Status != webhooks.StatusDelivered {
			t.Fatalf("%d requests, row %+v", len(got), e.rows()[0])
		}
		wh, _ := standardwebhooks.NewWebhook(secret)
		if err := wh.Verify(got[1].Body, got[1].Header); err != nil {
			t.Fatalf("retry's signature: %v", err)
		}
		if got[0].Header.Get("webhook-timestamp") == got[1].Header.Get("webhook-timestamp") {
			t.Fatal("the retry carries the first attempt's timestamp")
		}
	})
}

func TestClosedPortIsRetried(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		p := e.partner("Acme")
		e.register(p, "http://"+closedPort(t)+"/hook", "user.created")
		e.login(p, "ext-1")
		runOnce(t, e.worker(webhooks.WorkerOptions{AllowPrivate: true}))
		row := e.rows()[0]
		if row.Status != webhooks.StatusPending || row.Attempts != 1 || row.LastError == nil || !strings.Contains(*row.LastError, "refused") {
			t.Fatalf("row %+v", row)
		}
		if !row.NextAttemptAt.Equal(e.clock.Now().Add(5 * time.Second).UTC()) {
			t.Fatalf("next attempt at %v, want 5 s after %v", row.NextAttemptAt, e.clock.Now())
		}
	})
}

// A receiver slower than the timeout fails the attempt. The test sets a
// 300 ms timeout (WorkerOptions.Timeout; the service uses the contract's 10 s).
func TestSlowReceiverTimesOut(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		rc := newReceiver(t)
		rc.hook = func(w http.ResponseWriter, r *http.Request) bool {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			w.WriteHeader(http.StatusOK)
			return true
		}
		p := e.partner("Acme")
		e.register(p, rc.URL, "user.created")
		e.login(p, "ext-1")
		runOnce(t, e.worker(webhooks.WorkerOptions{AllowPrivate: true, Timeout: 300 * time.Millisecond}))
		row := e.rows()[0]
		if row.Status != webhooks.StatusPending || row.Attempts != 1 || row.LastError == nil {
			t.Fatalf("row %+v", row)
		}
		if len(rc.requests()) != 1 {
			t.Fatal("the receiver was not reached")
		}
	})
}

func TestRedirectIsNotFollowed(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		target := newReceiver(t)
		rc := newReceiver(t)
		rc.hook = func(w http.ResponseWriter, r *http.Request) bool {
			http.Redirect(w, r, target.URL+"/elsewhere", http.StatusTemporaryRedirect)
			return true
		}
		p := e.partner("Acme")
		e.register(p, rc.URL, "user.created")
		e.login(p, "ext-1")
		runOnce(t, e.worker(webhooks.WorkerOptions{AllowPrivate: true}))
		if len(target.requests()) != 0 {
			t.Fatal("the redirect was followed")
		}
		row := e.rows()[0]
		if row.Status != webhooks.StatusPending || row.LastStatus == nil || *row.LastStatus != http.StatusTemporaryRedirect {
			t.Fatalf("a redirect must be a failed attempt: %+v", row)
		}
	})
}

// The SSRF guard works on the resolved address: "localhost" resolves to
// 127.0.0.1 (or ::1), which the dialer refuses when private targets are not
// allowed, although the URL names no IP.
func TestDeliveryRefusesNamesResolvingToPrivateAddresses(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		rc := newReceiver(t)
		p := e.partner("Acme")
		port := rc.URL[strings.LastIndex(rc.URL, ":"):]
		e.register(p, "http://localhost"+port+"/hook", "user.created") // registered while allowed
		e.login(p, "ext-1")
		runOnce(t, e.worker(webhooks.WorkerOptions{}))
		if len(rc.requests()) != 0 {
			t.Fatal("the guarded worker reached 127.0.0.1 through localhost")
		}
		row := e.rows()[0]
		if row.LastError == nil || !strings.Contains(*row.LastError, "private") {
			t.Fatalf("row %+v", row)
		}
		// The same event, allowed, arrives: the refusal was the guard's.
		e.clock.Advance(5 * time.Second)
		runOnce(t, e.worker(webhooks.WorkerOptions{AllowPrivate: true}))
		if len(rc.requests()) != 1 {
			t.Fatal("the allowed worker did not deliver")
		}
	})
}

// Events pending when the service stops are delivered by a new outbox and
// worker on the same database; a claim left by a crashed instance expires.
func TestRestartDeliversPendingEvents(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		rc := newReceiver(t)
		rc.setStatus(http.StatusBadGateway)
		p := e.partner("Acme")
		e.register(p, rc.URL, "user.created")
		e.login(p, "ext-1")
		e.login(p, "ext-2")
		runOnce(t, e.worker(webhooks.WorkerOptions{AllowPrivate: true}))
		// A crashed instance's claim on the second event: held until its lease ends.
		rows := e.rows()
		until := e.clock.Now().Add(time.Minute)
		if err := db.Model(&webhooks.Delivery{}).Where("id = ?", rows[1].ID).
			Updates(map[string]any{"claimed_until": until, "claim_token": "crashed", "next_attempt_at": e.clock.Now()}).Error; err != nil {
			t.Fatal(err)
		}

		rc.setStatus(http.StatusOK)
		e2 := &env{t: t, db: db, clock: e.clock, observed: &observer{}}
		e2.outbox = webhooks.NewOutbox(db, e.users, e.keys, e.clock.Now, true)
		w2 := e2.worker(webhooks.WorkerOptions{AllowPrivate: true})
		e.clock.Advance(5 * time.Second)
		if n := runOnce(t, w2); n != 1 {
			t.Fatalf("the new worker made %d attempts, want 1 (the other is claimed)", n)
		}
		e.clock.Advance(time.Minute)
		if n := runOnce(t, w2); n != 1 {
			t.Fatalf("after the lease the new worker made %d attempts, want 1", n)
		}
		for _, r := range e.rows() {
			if r.Status != webhooks.StatusDelivered {
				t.Fatalf("row %+v", r)
			}
		}
	})
}

// A slow endpoint holds at most PerEndpoint attempts: another endpoint's
// events are delivered meanwhile.
func TestSlowEndpointDoesNotStarveOthers(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		release := make(chan struct{})
		slow := newReceiver(t)
		slow.hook = func(w http.ResponseWriter, r *http.Request) bool {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return false
		}
		fast := newReceiver(t)
		a, b := e.partner("Slow"), e.partner("Fast")
		e.register(a, slow.URL, "user.created")
		e.register(b, fast.URL, "user.created")
		for _, ext := range []string{"1", "2", "3", "4"} {
			e.login(a, "a"+ext)
			e.login(b, "b"+ext)
		}
		w := e.worker(webhooks.WorkerOptions{AllowPrivate: true, Concurrency: 3, PerEndpoint: 1, PollInterval: 10 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		deadline := time.Now().Add(20 * time.Second)
		for len(fast.requests()) < 4 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := len(fast.requests()); n != 4 {
			t.Fatalf("the fast endpoint got %d of 4 events while the slow one hung", n)
		}
		if n := len(slow.requests()); n != 1 {
			t.Fatalf("the slow endpoint has %d attempts in flight, want PerEndpoint = 1", n)
		}
		close(release)
		cancel()
		<-done
	})
}
