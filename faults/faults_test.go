//go:build faults

package faults

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// requestTimeout is WALLETAUTH_REQUEST_TIMEOUT in these tests; an answer
// may take it plus answerSlack (writing the 503, scheduling under -race).
const (
	requestTimeout = 3 * time.Second
	answerSlack    = 1500 * time.Millisecond
	clientTimeout  = 6 * time.Second
)

// ---- load ----

// load drives a mix of email signup and login, wallet challenge + login and
// GET /v1/users/me against instances from several workers, recording every
// answer. Each worker stops at ctx's end or after maxIter iterations.
type load struct {
	c      *client
	ins    []*instance
	emails []string // existing users (password `password`)
	tokens []string // valid tokens

	mu      sync.Mutex
	answers []*answer
}

func (l *load) record(a *answer) {
	l.mu.Lock()
	l.answers = append(l.answers, a)
	l.mu.Unlock()
}

func (l *load) snapshot() []*answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*answer(nil), l.answers...)
}

func (l *load) run(ctx context.Context, t *testing.T, workers, maxIter int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < maxIter && ctx.Err() == nil; i++ {
				in := l.ins[(w+i)%len(l.ins)]
				// Requests are not tied to ctx: one already sent runs to its
				// answer, so that a hang shows as a client timeout.
				bg := context.Background()
				switch (w + i) % 4 {
				case 0:
					l.record(l.c.do(bg, in, "signup", "POST", "/v1/auth/email/signup",
						map[string]string{"email": uniqueEmail(t), "password": password}, ""))
				case 1:
					email := l.emails[(w*7+i)%len(l.emails)]
					l.record(l.c.do(bg, in, "login", "POST", "/v1/auth/email/login",
						map[string]string{"email": email, "password": password}, ""))
				case 2:
					s := newSigner(t)
					ch := l.c.do(bg, in, "challenge", "GET", "/v1/auth/wallet/challenge?address="+s.addr.Hex(), nil, "")
					l.record(ch)
					if ch.status == 200 {
						msg := challengeMessage(ch)
						l.record(l.c.do(bg, in, "wallet-login", "POST", "/v1/auth/wallet/login",
							map[string]string{"message": msg, "signature": s.sign(msg)}, ""))
					}
				case 3:
					tok := l.tokens[(w*5+i)%len(l.tokens)]
					l.record(l.c.do(bg, in, "me", "GET", "/v1/users/me", nil, tok))
				}
			}
		}()
	}
	return &wg
}

// allowedUnderOutage are the statuses of the contract each op may answer
// (besides 503 unavailable) while a backend is down: the load uses fresh
// emails and wallets, right passwords and valid tokens.
var allowedUnderOutage = map[string][]int{
	"signup":       {201},
	"login":        {200},
	"challenge":    {200},
	"wallet-login": {200},
	"me":           {200},
}

// checkAnswers reports every answer that breaks the contract.
func checkAnswers(t *testing.T, answers []*answer) {
	t.Helper()
	bad := 0
	for _, a := range answers {
		if v := contractViolation(a, requestTimeout+answerSlack, allowedUnderOutage[a.op]...); v != "" {
			bad++
			if bad <= 15 {
				t.Errorf("contract broken: %v: %s", a, v)
			}
		}
	}
	if bad > 15 {
		t.Errorf("… %d contract violations in all", bad)
	}
}

// summarize logs counts of (op, status) for the report.
func summarize(t *testing.T, label string, answers []*answer) {
	t.Helper()
	counts := map[string]int{}
	for _, a := range answers {
		k := fmt.Sprintf("%s %d", a.op, a.status)
		if a.err != nil {
			k = a.op + " error"
		}
		counts[k]++
	}
	t.Logf("%s: %d answers: %v", label, len(answers), counts)
}

// checkDurable checks that every 2xx login or signup left its user and its
// session in the database.
func checkDurable(t *testing.T, dbURL string, answers []*answer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to check durability: %v", err)
	}
	defer conn.Close(ctx)
	checked, missing := 0, 0
	for _, a := range answers {
		if (a.status != 200 && a.status != 201) || a.op == "me" || a.op == "challenge" || a.op == "setup" {
			continue
		}
		if a.userID == "" || a.token == "" {
			t.Errorf("%v: a 2xx login without user id or token", a)
			continue
		}
		checked++
		var users, sessions int
		h := sha256.Sum256([]byte(a.token))
		err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM users WHERE id = $1), (SELECT count(*) FROM sessions WHERE token_hash = $2 AND user_id = $1)`,
			a.userID, h[:]).Scan(&users, &sessions)
		if err != nil {
			t.Fatalf("durability query: %v", err)
		}
		if users != 1 || sessions != 1 {
			missing++
			if missing <= 10 {
				t.Errorf("answered %d but not durable: user %s rows=%d, its session rows=%d (%v)", a.status, a.userID, users, sessions, a)
			}
		}
	}
	t.Logf("durability: %d successful logins checked in the database, %d missing", checked, missing)
}

// poller records /healthz and /readyz every 100 ms until ctx ends.
type poller struct {
	mu      sync.Mutex
	answers []*answer
}

func (p *poller) run(ctx context.Context, c *client, in *instance) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			for _, path := range []string{"/healthz", "/readyz"} {
				a := c.do(context.Background(), in, path, "GET", path, nil, "")
				p.mu.Lock()
				p.answers = append(p.answers, a)
				p.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return &wg
}

func (p *poller) snapshot() []*answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*answer(nil), p.answers...)
}

// ---- setup ----

// newUsers signs up n email users on in and returns their emails and tokens.
func newUsers(t *testing.T, c *client, in *instance, n int) (emails, tokens []string) {
	t.Helper()
	for i := 0; i < n; i++ {
		e := uniqueEmail(t)
		a := c.mustDo(t, in, "POST", "/v1/auth/email/signup", map[string]string{"email": e, "password": password}, "", 201)
		emails, tokens = append(emails, e), append(tokens, a.token)
	}
	return emails, tokens
}

func wantNoLogProblems(t *testing.T, ins ...*instance) {
	t.Helper()
	for _, in := range ins {
		for i, line := range in.logProblems() {
			if i == 10 {
				t.Errorf("instance %s: more problem lines in its log", in.name)
				break
			}
			t.Errorf("instance %s logged: %s", in.name, tail(line, 1500))
		}
	}
}

// ---- PostgreSQL down ----

// TestFaultPostgresDown stops PostgreSQL for a few seconds under load: every
// answer is one of the contract (503 unavailable for what needs the
// database, within the request deadline, never a 500 or a hang), /healthz
// stays 200 and /readyz answers 503 while it is down, service resumes by
// itself, and every login answered 2xx is durably stored.
func TestFaultPostgresDown(t *testing.T) {
	pg := postgresCluster(t)
	dbURL := pg.NewDatabase(t)
	rd := startRedis(t)
	in := startInstance(t, "A", baseEnv(dbURL, rd.URL()))
	c := newClient(clientTimeout, true)
	defer c.close()

	emails, tokens := newUsers(t, c, in, 6)
	l := &load{c: c, ins: []*instance{in}, emails: emails, tokens: tokens}
	var p poller
	ctx, stop := context.WithTimeout(context.Background(), 90*time.Second)
	defer stop()
	pc := newClient(clientTimeout, true)
	defer pc.close()
	pollers := p.run(ctx, pc, in)
	workers := l.run(ctx, t, 6, 5000)

	time.Sleep(1500 * time.Millisecond)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	// "Down" starts when the port refuses connections.
	if !waitFor(10*time.Second, 10*time.Millisecond, func() bool {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", pg.port), 200*time.Millisecond)
		if err == nil {
			_ = conn.Close()
		}
		return err != nil
	}) {
		t.Fatal("PostgreSQL still accepts connections 10 s after it was stopped")
	}
	down := time.Now()
	t.Logf("postgres stopped")
	time.Sleep(4 * time.Second)
	// The outage ends when the restart begins, not when Start returns: the
	// server accepts connections while Start is still polling for it (a
	// /readyz 200 in that gap made this test flaky).
	restarting := time.Now()
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	t.Logf("postgres restarted after %v down", up.Sub(down).Round(time.Millisecond))

	// Service resumes by itself: each kind of request succeeds again.
	probe := newClient(clientTimeout, true)
	defer probe.close()
	var last *answer
	recovered := waitFor(20*time.Second, 200*time.Millisecond, func() bool {
		last = probe.do(context.Background(), in, "probe", "POST", "/v1/auth/email/signup",
			map[string]string{"email": uniqueEmail(t), "password": password}, "")
		if last.status != 201 {
			return false
		}
		last = probe.do(context.Background(), in, "probe", "POST", "/v1/auth/email/login",
			map[string]string{"email": emails[0], "password": password}, "")
		if last.status != 200 {
			return false
		}
		last = probe.do(context.Background(), in, "probe", "GET", "/readyz", nil, "")
		return last.status == 200
	})
	if !recovered {
		t.Errorf("no recovery within 20s of PostgreSQL's restart; last probe: %v", last)
	} else {
		t.Logf("recovered %v after the restart", time.Since(up).Round(time.Millisecond))
	}
	recoveredAt := time.Now()
	time.Sleep(time.Second) // load on the recovered service
	stop()
	workers.Wait()
	pollers.Wait()

	answers := l.snapshot()
	summarize(t, "all", answers)
	checkAnswers(t, answers)

	var during, after []*answer
	for _, a := range answers {
		switch {
		case a.start.After(down) && a.start.Add(a.dur).Before(restarting):
			during = append(during, a)
		case a.start.After(recoveredAt):
			after = append(after, a)
		}
	}
	summarize(t, "while down", during)
	summarize(t, "after recovery", after)
	unavailable := 0
	for _, a := range during {
		if a.status == 503 {
			unavailable++
		}
	}
	if unavailable == 0 {
		t.Errorf("no 503 while PostgreSQL was down: was the fault injected?")
	}
	if recovered {
		for _, a := range after {
			if a.err != nil || a.status >= 500 {
				t.Errorf("after recovery: %v", a)
			}
		}
		if len(after) == 0 {
			t.Errorf("no request answered after recovery")
		}
	}

	// /healthz always 200; /readyz 503 while down.
	ready503, ready200Down := 0, 0
	for _, a := range p.snapshot() {
		if a.op == "/healthz" && (a.err != nil || a.status != 200 || a.dur > requestTimeout+answerSlack) {
			t.Errorf("/healthz while PostgreSQL went down and up: %v", a)
		}
		if a.op != "/readyz" {
			continue
		}
		if v := contractViolation(a, requestTimeout+answerSlack, 200); v != "" {
			t.Errorf("/readyz: %v: %s", a, v)
		}
		if a.start.After(down) && a.start.Add(a.dur).Before(restarting) {
			switch a.status {
			case 503:
				ready503++
			case 200:
				ready200Down++
				t.Errorf("/readyz answered 200 while PostgreSQL was down: %v", a)
			}
		}
	}
	if ready503 == 0 {
		t.Errorf("/readyz never answered 503 while PostgreSQL was down")
	}

	checkDurable(t, dbURL, answers)
	wantNoLogProblems(t, in)
}

// ---- Redis down ----

// TestFaultRedisDown stops Redis under two instances: challenge, nonce,
// wallet login and email login (rate-limit counters) fail closed with 503
// unavailable, never 200; token checks keep working from the database; a
// token revoked (logout) or an account deleted during the outage is refused
// on both instances; after Redis is back everything works again and the
// revocations still hold.
func TestFaultRedisDown(t *testing.T) {
	pg := postgresCluster(t)
	dbURL := pg.NewDatabase(t)
	rd := startRedis(t)
	env := baseEnv(dbURL, rd.URL())
	a := startInstance(t, "A", env)
	b := startInstance(t, "B", env)
	c := newClient(clientTimeout, true)
	defer c.close()
	bg := context.Background()
	bound := requestTimeout + answerSlack

	email := uniqueEmail(t)
	keep := c.mustDo(t, a, "POST", "/v1/auth/email/signup", map[string]string{"email": email, "password": password}, "", 201).token
	revoke := c.mustDo(t, b, "POST", "/v1/auth/email/login", map[string]string{"email": email, "password": password}, "", 200).token
	doomed := c.mustDo(t, a, "POST", "/v1/auth/email/signup", map[string]string{"email": uniqueEmail(t), "password": password}, "", 201).token
	for _, in := range []*instance{a, b} {
		for _, tok := range []string{keep, revoke, doomed} {
			c.mustDo(t, in, "GET", "/v1/users/me", nil, tok, 200) // cached now
			c.mustDo(t, in, "GET", "/v1/users/me", nil, tok, 200)
		}
	}
	// A challenge issued and signed before the outage.
	s := newSigner(t)
	ch := c.mustDo(t, a, "GET", "/v1/auth/wallet/challenge?address="+s.addr.Hex(), nil, "", 200)
	msg := challengeMessage(ch)
	full := map[string]string{"message": msg, "signature": s.sign(msg)}
	short := map[string]string{"address": s.addr.Hex(), "signature": s.sign(msg)}

	if err := rd.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("redis stopped")

	// Fails closed: 503 unavailable, never a success.
	wantUnavailable := func(in *instance, op, method, path string, body any) {
		t.Helper()
		r := c.do(bg, in, op, method, path, body, "")
		if v := contractViolation(r, bound); r.status != 503 || v != "" {
			t.Errorf("with Redis down: %v; want 503 unavailable within %v", r, bound)
		}
	}
	for _, in := range []*instance{a, b} {
		for i := 0; i < 2; i++ {
			s2 := newSigner(t)
			wantUnavailable(in, "challenge", "GET", "/v1/auth/wallet/challenge?address="+s2.addr.Hex(), nil)
			wantUnavailable(in, "challenge", "POST", "/v1/auth/wallet/challenge", map[string]string{"address": s2.addr.Hex()})
			wantUnavailable(in, "nonce", "GET", "/v1/auth/wallet/nonce", nil)
			wantUnavailable(in, "wallet-login", "POST", "/v1/auth/wallet/login", full)
			wantUnavailable(in, "wallet-login", "POST", "/v1/auth/wallet/login", short)
			wantUnavailable(in, "login", "POST", "/v1/auth/email/login", map[string]string{"email": email, "password": password})
		}
		r := c.do(bg, in, "/readyz", "GET", "/readyz", nil, "")
		if r.status != 503 || !errorShape(r.body, "unavailable") {
			t.Errorf("/readyz with Redis down: %v; want 503 unavailable", r)
		}
		if r := c.do(bg, in, "/healthz", "GET", "/healthz", nil, ""); r.status != 200 {
			t.Errorf("/healthz with Redis down: %v", r)
		}
		// Signup needs the signup limiter's counters in Redis: whatever it
		// answers must be of the contract.
		r = c.do(bg, in, "signup", "POST", "/v1/auth/email/signup", map[string]string{"email": uniqueEmail(t), "password": password}, "")
		if v := contractViolation(r, bound, 201); v != "" {
			t.Errorf("signup with Redis down: %v: %s", r, v)
		}
	}

	// An instance started while Redis is down starts (Redis is not pinged
	// at start) and fails closed like the others.
	c2 := startInstance(t, "C", env)
	wantUnavailable(c2, "challenge", "GET", "/v1/auth/wallet/challenge?address="+s.addr.Hex(), nil)
	wantUnavailable(c2, "wallet-login", "POST", "/v1/auth/wallet/login", full)
	if r := c.do(bg, c2, "/readyz", "GET", "/readyz", nil, ""); r.status != 503 {
		t.Errorf("/readyz on an instance started with Redis down: %v; want 503", r)
	}

	// Token checks keep working from the database.
	for _, in := range []*instance{a, b, c2} {
		for _, tok := range []string{keep, revoke, doomed} {
			if r := c.do(bg, in, "me", "GET", "/v1/users/me", nil, tok); r.status != 200 {
				t.Errorf("GET /v1/users/me with a valid token and Redis down: %v; want 200", r)
			}
		}
	}
	// Revocations made during the outage hold everywhere.
	if r := c.do(bg, a, "logout", "POST", "/v1/auth/logout", nil, revoke); r.status != 204 {
		t.Errorf("logout on A with Redis down: %v; want 204", r)
	}
	if r := c.do(bg, b, "delete", "DELETE", "/v1/users/me", nil, doomed); r.status != 204 {
		t.Errorf("account deletion on B with Redis down: %v; want 204", r)
	}
	for _, in := range []*instance{a, b, c2} {
		for _, tok := range []string{revoke, doomed} {
			if r := c.do(bg, in, "me", "GET", "/v1/users/me", nil, tok); r.status != 401 || !errorShape(r.body, "unauthorized") {
				t.Errorf("a token revoked while Redis is down: %v; want 401 unauthorized", r)
			}
		}
	}

	time.Sleep(2 * time.Second) // an outage of a few seconds
	if err := rd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("redis restarted")

	// Everything works again, on every instance.
	for _, in := range []*instance{a, b, c2} {
		var last *answer
		ok := waitFor(15*time.Second, 200*time.Millisecond, func() bool {
			s3 := newSigner(t)
			last = c.do(bg, in, "challenge", "GET", "/v1/auth/wallet/challenge?address="+s3.addr.Hex(), nil, "")
			if last.status != 200 {
				return false
			}
			m := challengeMessage(last)
			last = c.do(bg, in, "wallet-login", "POST", "/v1/auth/wallet/login", map[string]string{"message": m, "signature": s3.sign(m)}, "")
			if last.status != 200 {
				return false
			}
			last = c.do(bg, in, "login", "POST", "/v1/auth/email/login", map[string]string{"email": email, "password": password}, "")
			if last.status != 200 {
				return false
			}
			last = c.do(bg, in, "/readyz", "GET", "/readyz", nil, "")
			return last.status == 200
		})
		if !ok {
			t.Errorf("instance %s: no recovery within 15s of Redis's restart; last: %v", in.name, last)
		}
	}
	// The nonce issued before the outage died with Redis (no persistence):
	// it must not be accepted unchecked now.
	for _, body := range []map[string]string{full, short} {
		r := c.do(bg, b, "wallet-login", "POST", "/v1/auth/wallet/login", body, "")
		if r.status != 401 || !errorShape(r.body, "nonce_invalid") {
			t.Errorf("a pre-outage challenge after Redis lost it: %v; want 401 nonce_invalid", r)
		}
	}
	// Revocations still hold once the caches are trusted again (give the
	// buses time to resubscribe), and the kept token still works.
	time.Sleep(3 * time.Second)
	for _, in := range []*instance{a, b, c2} {
		for _, tok := range []string{revoke, doomed} {
			if r := c.do(bg, in, "me", "GET", "/v1/users/me", nil, tok); r.status != 401 {
				t.Errorf("after Redis is back, a token revoked during the outage: %v; want 401", r)
			}
		}
		if r := c.do(bg, in, "me", "GET", "/v1/users/me", nil, keep); r.status != 200 {
			t.Errorf("after Redis is back, a valid token: %v; want 200", r)
		}
	}
	// And new revocations propagate again.
	tok := c.mustDo(t, a, "POST", "/v1/auth/email/login", map[string]string{"email": email, "password": password}, "", 200).token
	c.mustDo(t, b, "GET", "/v1/users/me", nil, tok, 200)
	c.mustDo(t, b, "GET", "/v1/users/me", nil, tok, 200)
	c.mustDo(t, c2, "GET", "/v1/users/me", nil, tok, 200)
	c.mustDo(t, c2, "GET", "/v1/users/me", nil, tok, 200)
	c.mustDo(t, a, "POST", "/v1/auth/logout", nil, tok, 204)
	wantRefusedWithin(t, c, b, tok, time.Second)
	wantRefusedWithin(t, c, c2, tok, time.Second)
	wantNoLogProblems(t, a, b, c2)
}

// wantRefusedWithin polls GET /v1/users/me on in until tok is refused,
// failing the test if that takes longer than d.
func wantRefusedWithin(t *testing.T, c *client, in *instance, tok string, d time.Duration) {
	t.Helper()
	start := time.Now()
	var last *answer
	ok := waitFor(d, 20*time.Millisecond, func() bool {
		last = c.do(context.Background(), in, "me", "GET", "/v1/users/me", nil, tok)
		return last.status == 401
	})
	if !ok {
		t.Errorf("instance %s still accepts a revoked token %v after the revocation was answered: %v", in.name, time.Since(start).Round(time.Millisecond), last)
	}
}

// ---- Redis hung ----

// TestFaultRedisHung freezes Redis (SIGSTOP: connections stay open but
// nothing answers, as in a network partition): requests that need it answer
// 503 within the request deadline, and a logout on A holds on B within one
// second although B's cache cannot hear the invalidation.
func TestFaultRedisHung(t *testing.T) {
	pg := postgresCluster(t)
	dbURL := pg.NewDatabase(t)
	rd := startRedis(t)
	env := baseEnv(dbURL, rd.URL())
	a := startInstance(t, "A", env)
	b := startInstance(t, "B", env)
	c := newClient(clientTimeout, true)
	defer c.close()
	bg := context.Background()
	bound := requestTimeout + answerSlack

	email := uniqueEmail(t)
	keep := c.mustDo(t, a, "POST", "/v1/auth/email/signup", map[string]string{"email": email, "password": password}, "", 201).token
	revoke := c.mustDo(t, a, "POST", "/v1/auth/email/login", map[string]string{"email": email, "password": password}, "", 200).token
	for _, tok := range []string{keep, revoke} {
		c.mustDo(t, b, "GET", "/v1/users/me", nil, tok, 200) // cached on B
		c.mustDo(t, b, "GET", "/v1/users/me", nil, tok, 200)
	}

	rd.Freeze()
	frozen := time.Now()
	t.Logf("redis frozen")
	defer rd.Thaw()

	r := c.do(bg, a, "logout", "POST", "/v1/auth/logout", nil, revoke)
	if r.status != 204 || r.dur > bound {
		t.Errorf("logout on A with Redis hung: %v; want 204 within %v", r, bound)
	}
	t.Logf("logout answered %v after the freeze", time.Since(frozen).Round(time.Millisecond))
	wantRefusedWithin(t, c, b, revoke, time.Second)
	if r := c.do(bg, a, "me", "GET", "/v1/users/me", nil, revoke); r.status != 401 {
		t.Errorf("the revoked token on A with Redis hung: %v; want 401", r)
	}

	s := newSigner(t)
	for _, in := range []*instance{a, b} {
		for _, q := range []struct{ op, method, path string }{
			{"challenge", "GET", "/v1/auth/wallet/challenge?address=" + s.addr.Hex()},
			{"nonce", "GET", "/v1/auth/wallet/nonce"},
		} {
			r := c.do(bg, in, q.op, q.method, q.path, nil, "")
			if v := contractViolation(r, bound); r.status != 503 || v != "" {
				t.Errorf("with Redis hung: %v; want 503 unavailable within %v", r, bound)
			}
		}
		if r := c.do(bg, in, "me", "GET", "/v1/users/me", nil, keep); r.status != 200 || r.dur > bound {
			t.Errorf("GET /v1/users/me with a valid token and Redis hung: %v; want 200 within %v", r, bound)
		}
	}

	rd.Thaw()
	for _, in := range []*instance{a, b} {
		var last *answer
		if !waitFor(15*time.Second, 200*time.Millisecond, func() bool {
			last = c.do(bg, in, "challenge", "GET", "/v1/auth/wallet/challenge?address="+s.addr.Hex(), nil, "")
			return last.status == 200
		}) {
			t.Errorf("instance %s: no recovery within 15s of Redis thawing; last: %v", in.name, last)
		}
	}
	time.Sleep(2 * time.Second)
	for _, in := range []*instance{a, b} {
		if r := c.do(bg, in, "me", "GET", "/v1/users/me", nil, revoke); r.status != 401 {
			t.Errorf("after Redis thawed, the token revoked while it hung: %v; want 401", r)
		}
	}
	wantNoLogProblems(t, a, b)
}

// ---- SIGTERM ----

// TestFaultSIGTERM sends SIGTERM under a load of slow requests (email
// logins: argon2id, queued behind the hashing limit): requests already
// accepted finish with their normal answer, new connections are refused
// once shutdown has started, and the process exits 0 within
// WALLETAUTH_SHUTDOWN_TIMEOUT.
func TestFaultSIGTERM(t *testing.T) {
	pg := postgresCluster(t)
	dbURL := pg.NewDatabase(t)
	rd := startRedis(t)
	const shutdownTimeout = 10 * time.Second
	env := baseEnv(dbURL, rd.URL())
	env["WALLETAUTH_REQUEST_TIMEOUT"] = "10s"
	env["WALLETAUTH_SHUTDOWN_TIMEOUT"] = shutdownTimeout.String()
	in := startInstance(t, "A", env)
	setup := newClient(clientTimeout, true)
	defer setup.close()
	emails, tokens := newUsers(t, setup, in, 4)

	// One connection per request, so that new connections are attempted
	// all through the shutdown.
	c := newClient(20*time.Second, false)
	defer c.close()
	var (
		mu      sync.Mutex
		answers []*answer
	)
	ctx, stop := context.WithTimeout(context.Background(), 60*time.Second)
	defer stop()
	var wg sync.WaitGroup
	for w := 0; w < 24; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000 && ctx.Err() == nil; i++ {
				var a *answer
				if (w+i)%4 == 3 {
					a = c.do(context.Background(), in, "me", "GET", "/v1/users/me", nil, tokens[(w+i)%len(tokens)])
				} else {
					a = c.do(context.Background(), in, "login", "POST", "/v1/auth/email/login",
						map[string]string{"email": emails[(w+i)%len(emails)], "password": password}, "")
				}
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
				if a.err != nil && isRefused(a.err) {
					// The listener is closed: stop hammering.
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}

	time.Sleep(1500 * time.Millisecond)
	sigAt := time.Now()
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// New connections are refused soon after shutdown starts, and stay so.
	var refusedAt time.Time
	accepted := 0
	for i := 0; i < 2000 && !in.exited(); i++ {
		conn, err := net.DialTimeout("tcp", in.addr, time.Second)
		if err == nil {
			_ = conn.Close()
			if !refusedAt.IsZero() {
				accepted++
			}
		} else if refusedAt.IsZero() && isRefused(err) {
			refusedAt = time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	if refusedAt.IsZero() {
		t.Errorf("new connections were never refused during the shutdown")
	} else {
		t.Logf("connections refused %v after SIGTERM", refusedAt.Sub(sigAt).Round(time.Millisecond))
		if refusedAt.Sub(sigAt) > time.Second {
			t.Errorf("new connections still accepted %v after SIGTERM", refusedAt.Sub(sigAt).Round(time.Millisecond))
		}
	}
	if accepted > 0 {
		t.Errorf("%d connections accepted after connections had been refused", accepted)
	}

	select {
	case <-in.done:
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatalf("the process has not exited %v after SIGTERM", shutdownTimeout+5*time.Second)
	}
	exitAfter := time.Since(sigAt)
	t.Logf("exited %v after SIGTERM: %v", exitAfter.Round(time.Millisecond), in.err)
	if in.err != nil {
		t.Errorf("exit after SIGTERM: %v; want status 0", in.err)
	}
	if exitAfter > shutdownTimeout+time.Second {
		t.Errorf("exited %v after SIGTERM, past WALLETAUTH_SHUTDOWN_TIMEOUT=%v", exitAfter.Round(time.Millisecond), shutdownTimeout)
	}
	stop()
	wg.Wait()

	// Requests written well before SIGTERM (the server had time to accept
	// their connection) must get their normal answer; any 5xx is a bug.
	const acceptMargin = 100 * time.Millisecond
	inflight, finishedOK, ambiguous := 0, 0, 0
	for _, a := range answers {
		wrote := time.Unix(0, a.wroteAt.Load())
		if a.status >= 500 {
			t.Errorf("during shutdown: %v", a)
		}
		if a.wroteAt.Load() == 0 || !wrote.Before(sigAt) {
			continue
		}
		if a.start.Add(a.dur).Before(sigAt) {
			continue // finished before the signal
		}
		if wrote.After(sigAt.Add(-acceptMargin)) {
			if a.err != nil {
				ambiguous++
			}
			continue
		}
		inflight++
		want := 200
		if a.err != nil || a.status != want {
			t.Errorf("a request in flight at SIGTERM (written %v before it) did not finish: %v", sigAt.Sub(wrote).Round(time.Millisecond), a)
		} else {
			finishedOK++
		}
	}
	t.Logf("%d requests in flight at SIGTERM, %d finished with 200; %d written within %v of SIGTERM got no answer (accept race, not counted)",
		inflight, finishedOK, ambiguous, acceptMargin)
	if inflight == 0 {
		t.Errorf("no request was in flight at SIGTERM: the test did not test the drain")
	}
	summarize(t, "shutdown load", answers)
	if testing.Verbose() {
		t.Logf("instance log from the shutdown on:\n%s", fromLine(in.log.String(), "shutting down"))
	}
	if !strings.Contains(in.log.String(), `"msg":"stopped"`) {
		t.Errorf("the log has no \"stopped\" line")
	}
	wantNoLogProblems(t, in)
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// fromLine returns log from the first line containing s.
func fromLine(log, s string) string {
	if i := strings.Index(log, s); i >= 0 {
		if j := strings.LastIndex(log[:i], "\n"); j >= 0 {
			return log[j+1:]
		}
	}
	return ""
}

// ---- PostgreSQL hung ----

// TestFaultPostgresHung freezes every PostgreSQL process (SIGSTOP:
// connections open, nothing answers) under load: every answer still comes
// within the request deadline (503 unavailable for what needs the
// database), /healthz stays 200 and /readyz answers 503, and service resumes
// once PostgreSQL answers again, with every 2xx login durably stored.
func TestFaultPostgresHung(t *testing.T) {
	pg := postgresCluster(t)
	dbURL := pg.NewDatabase(t)
	defer pg.Thaw()
	rd := startRedis(t)
	in := startInstance(t, "A", baseEnv(dbURL, rd.URL()))
	c := newClient(clientTimeout, true)
	defer c.close()

	emails, tokens := newUsers(t, c, in, 4)
	l := &load{c: c, ins: []*instance{in}, emails: emails, tokens: tokens}
	var p poller
	ctx, stop := context.WithTimeout(context.Background(), 90*time.Second)
	defer stop()
	pc := newClient(clientTimeout, true)
	defer pc.close()
	pollers := p.run(ctx, pc, in)
	workers := l.run(ctx, t, 4, 5000)

	time.Sleep(time.Second)
	// The window is taken inside the outage (after Freeze, before Thaw) so
	// an answer on either edge is not mistaken for one during it.
	pg.Freeze()
	frozen := time.Now()
	t.Logf("postgres frozen")
	time.Sleep(5 * time.Second)
	thawed := time.Now()
	pg.Thaw()
	t.Logf("postgres thawed")

	probe := newClient(clientTimeout, true)
	defer probe.close()
	var last *answer
	if !waitFor(20*time.Second, 200*time.Millisecond, func() bool {
		last = probe.do(context.Background(), in, "probe", "POST", "/v1/auth/email/signup",
			map[string]string{"email": uniqueEmail(t), "password": password}, "")
		if last.status != 201 {
			return false
		}
		last = probe.do(context.Background(), in, "probe", "GET", "/readyz", nil, "")
		return last.status == 200
	}) {
		t.Errorf("no recovery within 20s of PostgreSQL thawing; last probe: %v", last)
	} else {
		t.Logf("recovered %v after the thaw", time.Since(thawed).Round(time.Millisecond))
	}
	time.Sleep(500 * time.Millisecond)
	stop()
	workers.Wait()
	pollers.Wait()

	answers := l.snapshot()
	summarize(t, "all", answers)
	checkAnswers(t, answers)
	unavailable := 0
	for _, a := range answers {
		if end := a.start.Add(a.dur); end.After(frozen) && end.Before(thawed) && a.status == 503 {
			unavailable++
		}
	}
	if unavailable == 0 {
		t.Errorf("no 503 answered while PostgreSQL was frozen: was the fault injected?")
		for i, a := range answers {
			if i == 80 {
				break
			}
			t.Logf("%+.3fs %v", a.start.Sub(frozen).Seconds(), a)
		}
	}
	ready503 := 0
	for _, a := range p.snapshot() {
		if a.op == "/healthz" && (a.err != nil || a.status != 200 || a.dur > time.Second) {
			t.Errorf("/healthz with PostgreSQL frozen: %v", a)
		}
		if a.op == "/readyz" {
			if v := contractViolation(a, requestTimeout+answerSlack, 200); v != "" {
				t.Errorf("/readyz: %v: %s", a, v)
			}
			if a.start.After(frozen) && a.start.Add(a.dur).Before(thawed) {
				switch a.status {
				case 200:
					t.Errorf("/readyz answered 200 with PostgreSQL frozen: %v", a)
				case 503:
					ready503++
				}
			}
		}
	}
	if ready503 == 0 {
		t.Errorf("/readyz never answered 503 while PostgreSQL was frozen")
	}
	checkDurable(t, dbURL, answers)
	wantNoLogProblems(t, in)
}

// ---- Redis partitioned from one instance ----

// TestFaultRedisPartition cuts instance B off from Redis (a proxy between
// them holds every byte) while A still reaches it: a logout on A (whose
// broadcast B cannot hear) must still be refused on B within one second,
// and B's requests that need Redis answer 503 within the deadline.
func TestFaultRedisPartition(t *testing.T) {
	pg := postgresCluster(t)
	dbURL := pg.NewDatabase(t)
	rd := startRedis(t)
	proxy := startProxy(t, fmt.Sprintf("127.0.0.1:%d", rd.port))
	a := startInstance(t, "A", baseEnv(dbURL, rd.URL()))
	b := startInstance(t, "B", baseEnv(dbURL, "redis://"+proxy.Addr()+"/0"))
	c := newClient(clientTimeout, true)
	defer c.close()
	bg := context.Background()
	bound := requestTimeout + answerSlack

	email := uniqueEmail(t)
	keep := c.mustDo(t, a, "POST", "/v1/auth/email/signup", map[string]string{"email": email, "password": password}, "", 201).token
	var toks []string
	for i := 0; i < 3; i++ {
		toks = append(toks, c.mustDo(t, a, "POST", "/v1/auth/email/login", map[string]string{"email": email, "password": password}, "", 200).token)
	}
	// Through the proxy, revocations reach B in time while it is healthy.
	c.mustDo(t, b, "GET", "/v1/users/me", nil, toks[0], 200)
	c.mustDo(t, a, "POST", "/v1/auth/logout", nil, toks[0], 204)
	wantRefusedWithin(t, c, b, toks[0], time.Second)

	for _, tok := range append([]string{keep}, toks[1:]...) {
		c.mustDo(t, b, "GET", "/v1/users/me", nil, tok, 200) // cached on B
		c.mustDo(t, b, "GET", "/v1/users/me", nil, tok, 200)
	}
	time.Sleep(600 * time.Millisecond) // B's bus has just had a pong

	proxy.Pause()
	paused := time.Now()
	t.Logf("B partitioned from Redis")
	r := c.do(bg, a, "logout", "POST", "/v1/auth/logout", nil, toks[1])
	if r.status != 204 {
		t.Fatalf("logout on A: %v; want 204", r)
	}
	t.Logf("logout on A answered %v after the partition", time.Since(paused).Round(time.Millisecond))
	wantRefusedWithin(t, c, b, toks[1], time.Second)

	// logout-all too.
	r = c.do(bg, a, "logout-all", "POST", "/v1/auth/logout-all", nil, toks[2])
	if r.status != 204 {
		t.Fatalf("logout-all on A: %v; want 204", r)
	}
	wantRefusedWithin(t, c, b, keep, time.Second)

	s := newSigner(t)
	ch := c.do(bg, b, "challenge", "GET", "/v1/auth/wallet/challenge?address="+s.addr.Hex(), nil, "")
	if v := contractViolation(ch, bound); ch.status != 503 || v != "" {
		t.Errorf("challenge on B, partitioned from Redis: %v; want 503 unavailable within %v", ch, bound)
	}

	proxy.Resume()
	var last *answer
	if !waitFor(15*time.Second, 200*time.Millisecond, func() bool {
		last = c.do(bg, b, "challenge", "GET", "/v1/auth/wallet/challenge?address="+s.addr.Hex(), nil, "")
		return last.status == 200
	}) {
		t.Errorf("B: no recovery within 15s of the partition's end; last: %v", last)
	}
	for _, tok := range append([]string{keep}, toks...) {
		if r := c.do(bg, b, "me", "GET", "/v1/users/me", nil, tok); r.status != 401 {
			t.Errorf("after the partition, a revoked token on B: %v; want 401", r)
		}
	}
	wantNoLogProblems(t, a, b)
}
