package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/storage"
)

// Schedule is how long after each failed attempt the next one is made
// (the contract: about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h); after
// the last a failed event is dropped. A new slice each call.
func Schedule() []time.Duration {
	return []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
}

// Defaults of WorkerOptions.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultConcurrency  = 16
	DefaultPerEndpoint  = 2
	DefaultPollInterval = time.Second
	DefaultRetention    = 7 * 24 * time.Hour
	maxResponseRead     = 64 << 10
)

// Observer counts deliveries (metrics.Metrics implements it).
type Observer interface {
	WebhookDelivery(outcome string)                 // delivered, failed (to be retried) or dropped
	WebhookQueue(depth int64, oldest time.Duration) // pending events and the age of the oldest
}

type noObserver struct{}

func (noObserver) WebhookDelivery(string)            {}
func (noObserver) WebhookQueue(int64, time.Duration) {}

// WorkerOptions tune a Worker.
type WorkerOptions struct {
	// Timeout bounds one attempt (connect, send, the response status);
	// default DefaultTimeout (the contract's 10 s). Tests shorten it.
	Timeout time.Duration
	// Concurrency bounds the attempts in flight on this instance.
	Concurrency int
	// PerEndpoint bounds the attempts in flight to one endpoint on this
	// instance, so a slow endpoint holds at most this many of Concurrency.
	PerEndpoint int
	// PollInterval is how often the outbox is read for due events.
	PollInterval time.Duration
	// Schedule overrides the retry schedule (nil: Schedule).
	Schedule []time.Duration
	// AllowPrivate lets deliveries reach loopback and private addresses
	// (WALLETAUTH_WEBHOOK_ALLOW_PRIVATE).
	AllowPrivate bool
	// Retention is how long delivered and dropped events are kept.
	Retention time.Duration
}

// Worker delivers the outbox. Any number of workers, on any number of
// instances, share one database: each due event is claimed by one of them
// for a lease (Timeout plus a margin) before it is attempted.
type Worker struct {
	o        *Outbox
	opt      WorkerOptions
	client   *http.Client
	log      *slog.Logger
	observe  Observer
	lease    time.Duration
	mu       sync.Mutex
	inFlight map[string]int // endpoint → attempts in flight here
	total    int
	wg       sync.WaitGroup
	wake     chan struct{}
	lastGC   time.Time
	lastStat time.Time // real time of the last queue count
}

// NewWorker returns a worker over the outbox o. observe may be nil.
func NewWorker(o *Outbox, log *slog.Logger, observe Observer, opt WorkerOptions) *Worker {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = DefaultConcurrency
	}
	if opt.PerEndpoint <= 0 {
		opt.PerEndpoint = DefaultPerEndpoint
	}
	if opt.PollInterval <= 0 {
		opt.PollInterval = DefaultPollInterval
	}
	if opt.Schedule == nil {
		opt.Schedule = Schedule()
	}
	if opt.Retention <= 0 {
		opt.Retention = DefaultRetention
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if observe == nil {
		observe = noObserver{}
	}
	dialer := &net.Dialer{Timeout: opt.Timeout}
	if !opt.AllowPrivate {
		dialer.Control = guardedControl
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would connect for us, past the address check
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   opt.Timeout,
		ResponseHeaderTimeout: opt.Timeout,
		MaxIdleConnsPerHost:   opt.PerEndpoint,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   opt.Timeout,
		// Redirects are not followed: a 3xx is a failed attempt.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Worker{
		o: o, opt: opt, client: client, log: log, observe: observe,
		lease:    opt.Timeout + 30*time.Second,
		inFlight: map[string]int{}, wake: make(chan struct{}, 1),
	}
}

// Run delivers until ctx ends, then waits for the attempts in flight.
func (w *Worker) Run(ctx context.Context) {
	defer w.wg.Wait()
	t := time.NewTicker(w.opt.PollInterval)
	defer t.Stop()
	for {
		if _, err := w.poll(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("webhooks: reading the outbox", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// RunOnce starts the attempts of every event due now (within the
// concurrency bounds) and waits for them; it returns how many it made.
// Tests drive the worker with it and an injected clock.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	n, err := w.poll(ctx)
	w.wg.Wait()
	return n, err
}

// Wait waits for the attempts in flight.
func (w *Worker) Wait() { w.wg.Wait() }

type claimed struct {
	Delivery
	URL    string
	Secret []byte
}

// poll claims due events and starts an attempt of each.
func (w *Worker) poll(ctx context.Context) (int, error) {
	now := storage.Now(w.o.now())
	// Counted at most once per PollInterval: a poll also follows every
	// finished attempt.
	if time.Since(w.lastStat) >= w.opt.PollInterval {
		if err := w.stats(ctx, now); err != nil {
			return 0, err
		}
		w.lastStat = time.Now()
	}
	w.gc(ctx, now)
	free, saturated := w.slots()
	if free == 0 {
		return 0, nil
	}
	rows, err := w.claim(ctx, now, free, saturated)
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer w.release(r.EndpointID)
			w.attempt(ctx, r)
		}()
	}
	return len(rows), nil
}

// slots is how many attempts may start, and the endpoints at their bound.
func (w *Worker) slots() (int, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var sat []string
	for id, n := range w.inFlight {
		if n >= w.opt.PerEndpoint {
			sat = append(sat, id)
		}
	}
	return w.opt.Concurrency - w.total, sat
}

func (w *Worker) release(endpointID string) {
	w.mu.Lock()
	w.inFlight[endpointID]--
	if w.inFlight[endpointID] <= 0 {
		delete(w.inFlight, endpointID)
	}
	w.total--
	w.mu.Unlock()
	select { // a slot is free: look for more work now
	case w.wake <- struct{}{}:
	default:
	}
}

// claim takes up to free due events, at most PerEndpoint per endpoint
// counting those in flight, for a lease. On PostgreSQL the candidates are
// read FOR UPDATE SKIP LOCKED, so concurrent workers take different rows;
// every claim is also conditional on the row being unclaimed, which is what
// makes it safe on SQLite and after a lease expired.
func (w *Worker) claim(ctx context.Context, now time.Time, free int, saturated []string) ([]claimed, error) {
	token := uuid.NewString()
	until := now.Add(w.lease)
	var ids []string
	endpointOf := map[string]string{}
	taken := map[string]int{}
	err := w.o.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ids = nil
		clear(endpointOf)
		clear(taken)
		q := `SELECT id, endpoint_id FROM webhook_deliveries
			WHERE status = ? AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)`
		args := []any{StatusPending, now, now}
		if len(saturated) > 0 {
			q += ` AND endpoint_id NOT IN ?`
			args = append(args, saturated)
		}
		q += ` ORDER BY next_attempt_at, id LIMIT ?`
		args = append(args, 4*free)
		if w.o.db.Dialect == storage.Postgres {
			q += ` FOR UPDATE SKIP LOCKED`
		}
		var cands []struct{ ID, EndpointID string }
		if err := tx.Raw(q, args...).Scan(&cands).Error; err != nil {
			return fmt.Errorf("read due events: %w", err)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, c := range cands {
			if len(ids) == free {
				break
			}
			if w.inFlight[c.EndpointID]+taken[c.EndpointID] >= w.opt.PerEndpoint {
				continue
			}
			res := tx.Model(&Delivery{}).
				Where("id = ? AND status = ? AND (claimed_until IS NULL OR claimed_until <= ?)", c.ID, StatusPending, now).
				Updates(map[string]any{"claimed_until": until, "claim_token": token})
			if res.Error != nil {
				return fmt.Errorf("claim: %w", res.Error)
			}
			if res.RowsAffected == 1 {
				ids = append(ids, c.ID)
				endpointOf[c.ID] = c.EndpointID
				taken[c.EndpointID]++
			}
		}
		return nil
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	w.mu.Lock()
	for ep, n := range taken {
		w.inFlight[ep] += n
		w.total += n
	}
	w.mu.Unlock()
	var rows []claimed
	err = w.o.db.WithContext(ctx).Raw(`SELECT d.*, e.url, e.secret FROM webhook_deliveries AS d
		JOIN webhook_endpoints AS e ON e.id = d.endpoint_id WHERE d.id IN ? AND d.claim_token = ?`, ids, token).
		Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read claimed events: %w", err)
	}
	if len(rows) < len(ids) { // endpoints deleted meanwhile: free their slots
		got := map[string]bool{}
		for _, r := range rows {
			got[r.ID] = true
		}
		for _, id := range ids {
			if !got[id] {
				w.release(endpointOf[id])
			}
		}
	}
	return rows, nil
}

// attempt sends one event and records the outcome.
func (w *Worker) attempt(ctx context.Context, r claimed) {
	status, err := w.send(ctx, r)
	now := storage.Now(w.o.now())
	if ctx.Err() != nil && err != nil {
		// Shutting down: leave the claim to expire; the attempt is made
		// again, with the same webhook-id, after the lease.
		return
	}
	set := map[string]any{"attempts": r.Attempts + 1, "claimed_until": nil, "claim_token": nil, "last_status": nil, "last_error": nil}
	if status != 0 {
		set["last_status"] = status
	}
	outcome := "delivered"
	switch {
	case err == nil:
		set["status"], set["finished_at"] = StatusDelivered, now
	case r.Attempts+1 > len(w.opt.Schedule):
		outcome = "dropped"
		set["status"], set["finished_at"], set["last_error"] = StatusDropped, now, truncate(err.Error())
	default:
		outcome = "failed"
		set["next_attempt_at"], set["last_error"] = now.Add(w.opt.Schedule[r.Attempts]), truncate(err.Error())
	}
	res := w.o.db.WithContext(context.WithoutCancel(ctx)).Model(&Delivery{}).
		Where("id = ? AND claim_token = ?", r.ID, *r.ClaimToken).Updates(set)
	if res.Error != nil {
		w.log.Warn("webhooks: recording an attempt", "webhook_id", r.ID, "error", res.Error)
		return
	}
	w.observe.WebhookDelivery(outcome)
	switch outcome {
	case "dropped":
		w.log.Warn("webhooks: event dropped after its last retry", "webhook_id", r.ID, "endpoint_id", r.EndpointID,
			"type", r.EventType, "attempts", r.Attempts+1, "error", err)
	case "failed":
		w.log.Info("webhooks: attempt failed, will retry", "webhook_id", r.ID, "endpoint_id", r.EndpointID,
			"attempt", r.Attempts+1, "retry_in", w.opt.Schedule[r.Attempts].String(), "error", err)
	}
}

func truncate(s string) string {
	if len(s) > 500 {
		return s[:500]
	}
	return s
}

// send makes one signed attempt: nil for a 2xx, else why not, with the
// status when one came.
func (w *Worker) send(ctx context.Context, r claimed) (int, error) {
	secret, err := w.o.keys.OpenFor(sealPurpose, r.EndpointID, r.Secret)
	if err != nil {
		return 0, fmt.Errorf("open the endpoint's secret: %w", err)
	}
	ts := w.o.now()
	h, err := signedHeaders(string(secret), r.ID, ts, []byte(r.Payload))
	if err != nil {
		return 0, err
	}
	actx, cancel := context.WithTimeout(ctx, w.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, r.URL, bytes.NewReader([]byte(r.Payload)))
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	req.Header = h
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()                               // the answer was read; nothing to do with a close error
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseRead)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// signedHeaders are the headers of one attempt: Standard Webhooks'
// webhook-id, webhook-timestamp (Unix seconds) and webhook-signature
// ("v1," + base64 HMAC-SHA256 of "id.timestamp.body" keyed with the
// base64-decoded secret after "whsec_"), signed by the Standard Webhooks
// reference library.
func signedHeaders(secret, id string, ts time.Time, body []byte) (http.Header, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, fmt.Errorf("endpoint secret: %w", err)
	}
	sig, err := wh.Sign(id, ts, body)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "walletauth-webhooks/1")
	h.Set(standardwebhooks.HeaderWebhookID, id)
	h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(standardwebhooks.HeaderWebhookSignature, sig)
	return h, nil
}

// stats reports the queue depth and the age of the oldest pending event.
func (w *Worker) stats(ctx context.Context, now time.Time) error {
	var s struct {
		N      int64
		Oldest *time.Time
	}
	row := w.o.db.WithContext(ctx).Raw(`SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM webhook_deliveries WHERE status = ?`, StatusPending).Row()
	var oldest any
	if err := row.Scan(&s.N, &oldest); err != nil {
		return fmt.Errorf("queue stats: %w", err)
	}
	var age time.Duration
	if t, ok := asTime(oldest); ok {
		age = max(now.Sub(t), 0)
	}
	w.observe.WebhookQueue(s.N, age)
	return nil
}

// asTime reads MIN() of a time column: a time on PostgreSQL, text on SQLite.
func asTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, true
	case string:
		for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
			if p, err := time.Parse(layout, t); err == nil {
				return p, true
			}
		}
	case []byte:
		return asTime(string(t))
	}
	return time.Time{}, false
}

// gc deletes delivered and dropped events past the retention, hourly.
func (w *Worker) gc(ctx context.Context, now time.Time) {
	if now.Sub(w.lastGC) < time.Hour {
		return
	}
	w.lastGC = now
	err := w.o.db.WithContext(ctx).Where("status <> ? AND finished_at < ?", StatusPending, now.Add(-w.opt.Retention)).
		Delete(&Delivery{}).Error
	if err != nil && !errors.Is(err, context.Canceled) {
		w.log.Warn("webhooks: deleting old events", "error", err)
	}
}
