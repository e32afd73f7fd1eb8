package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/points"
	"github.com/walletauth/walletauth/referrals"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/tokens/tokenstest"
	"github.com/walletauth/walletauth/users"
	"github.com/walletauth/walletauth/webhooks"
)

// env is the partner API, the users' own API and the webhook outbox wired
// over one test database and a fake clock (started at the real time, so
// that the Standard Webhooks library's 5-minute timestamp tolerance holds
// for the first attempts). The outbox allows private targets: the test
// receivers listen on 127.0.0.1; the SSRF tests say otherwise.
type env struct {
	t         testing.TB
	db        *storage.DB
	clock     *clocktest.Clock
	keys      *partners.Keyring
	users     *users.Store
	sessions  *auth.Sessions
	reg       *partners.Registry
	referrals *referrals.Service
	outbox    *webhooks.Outbox
	router    *gin.Engine
	observed  *observer
}

func newEnv(t testing.TB, db *storage.DB) *env {
	t.Helper()
	clock := clocktest.New(time.Now().UTC().Truncate(time.Second))
	keys := tokenstest.Keyring(t)
	store := kv.NewMemory(clock.Now)
	t.Cleanup(func() { _ = store.Close() })
	us := users.NewStore(db, clock.Now, nil)
	outbox := webhooks.NewOutbox(db, us, keys, clock.Now, true)
	us.SetTxHook(outbox.Enqueue)
	sessions := auth.NewSessions(db, clock.Now, 30*24*time.Hour, nil)
	issuer, _ := tokenstest.NewIssuer(t, db, keys, clock.Now)
	sessions.UseAccessTokens(issuer, us)
	reg := partners.NewRegistry(db, keys, clock.Now)
	svc := partners.New(reg, us, sessions, points.NewLedger(db, us, clock.Now), store, nil, clock.Now, partners.Options{})
	r := apitest.NewRouter(t)
	v1 := r.Group("/v1")
	svc.Routes(v1, outbox.Routes)
	me := v1.Group("/users/me", sessions.RequireUser())
	users.NewHandlers(us).Routes(me)
	refs := referrals.NewService(us)
	referrals.NewHandlers(refs).Routes(me)
	return &env{t: t, db: db, clock: clock, keys: keys, users: us, sessions: sessions, reg: reg, referrals: refs,
		outbox: outbox, router: r, observed: &observer{}}
}

// worker returns a worker over the env's database with opt; AllowPrivate
// is set unless the test asks for the SSRF guard with guard.
func (e *env) worker(opt webhooks.WorkerOptions) *webhooks.Worker {
	return webhooks.NewWorker(e.outbox, nil, e.observed, opt)
}

type partner struct{ ID, Secret string }

func (e *env) partner(name string) partner {
	e.t.Helper()
	p, secret, err := e.reg.Create(context.Background(), partners.NewPartner{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return partner{p.ID, secret}
}

type response struct {
	Code int
	Body []byte
	rec  *httptest.ResponseRecorder
}

func (r response) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		tb.Fatalf("body %q: %v", r.Body, err)
	}
	return m
}

// errorCode checks that r is exactly the contract's error shape and
// returns its code (apitest.ErrorCode).
func (r response) errorCode(tb testing.TB) string {
	tb.Helper()
	return apitest.ErrorCode(tb, r.rec)
}

// do sends a request through the router (body as JSON unless nil), with
// token as its bearer token unless "".
func (e *env) do(method, path, token string, body any) response {
	e.t.Helper()
	rec := apitest.Do(e.t, e.router, "192.0.2.1", method, path, body, apitest.Bearer(token)...)
	return response{rec.Code, rec.Body.Bytes(), rec}
}

func (e *env) want(r response, status int) map[string]any {
	e.t.Helper()
	if r.Code != status {
		e.t.Fatalf("status %d, want %d: %s", r.Code, status, r.Body)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.json(e.t)
}

// register registers a webhook of p for url and events and returns its id
// and secret.
func (e *env) register(p partner, url string, events ...string) (string, string) {
	e.t.Helper()
	if len(events) == 0 {
		events = webhooks.EventTypes
	}
	m := e.want(e.do("POST", "/v1/partner/webhooks", p.Secret, map[string]any{"url": url, "events": events}), http.StatusCreated)
	return m["id"].(string), m["secret"].(string)
}

// login logs external ID ext of p in and returns the user's auth token.
func (e *env) login(p partner, ext string) string {
	e.t.Helper()
	m := e.want(e.do("POST", "/v1/partner/users/login", p.Secret, map[string]any{"external_id": ext}), http.StatusOK)
	return m["auth_token"].(string)
}

// rows returns the outbox rows, oldest first.
func (e *env) rows() []webhooks.Delivery {
	e.t.Helper()
	var ds []webhooks.Delivery
	if err := e.db.Order("created_at, id").Find(&ds).Error; err != nil {
		e.t.Fatal(err)
	}
	return ds
}

func runOnce(tb testing.TB, w *webhooks.Worker) int {
	tb.Helper()
	n, err := w.RunOnce(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// received is one request a receiver got.
type received struct {
	Header http.Header
	Body   []byte
}

// receiver is a real HTTP server on 127.0.0.1 answering status (200 unless
// set) and keeping what it received.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	got    []received
	hook   func(w http.ResponseWriter, r *http.Request) bool // true: it answered
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{status: http.StatusOK}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{r.Header.Clone(), body})
		status, hook := rc.status, rc.hook
		rc.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) setStatus(s int) { rc.mu.Lock(); rc.status = s; rc.mu.Unlock() }

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// closedPort returns the address of a port nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// observer counts what the worker reports (a test double of metrics).
type observer struct {
	mu       sync.Mutex
	outcomes map[string]int
	depth    int64
	oldest   time.Duration
}

func (o *observer) WebhookDelivery(outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.outcomes == nil {
		o.outcomes = map[string]int{}
	}
	o.outcomes[outcome]++
}

func (o *observer) WebhookQueue(depth int64, oldest time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.depth, o.oldest = depth, oldest
}

func (o *observer) count(outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.outcomes[outcome]
}
