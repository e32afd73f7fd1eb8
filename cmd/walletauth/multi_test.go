package main

// TestMultiProcess runs two real walletauth server processes (the binary
// built from this package) against one PostgreSQL schema and one Redis, and
// checks the contract's "Many instances and outages" promises across them:
// a nonce is consumed once across both, revocations (logout, logout-all,
// account deletion) hold on the other instance within one second, and rate
// limits count across both.
//
// It needs WALLETAUTH_TEST_DATABASE_URL and WALLETAUTH_TEST_REDIS_URL; it is
// skipped without them, and fails when CI=true and they are unset or
// unreachable. Identifiers here start with "mp" so that they do not collide
// with the other tests of package main.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/wallet"
)

// mpRevocationBound is how soon a revocation made on one instance must hold
// on the other (the contract's "within one second").
const mpRevocationBound = time.Second

const mpPassword = "kiwi-Lantern-42-orbit-mp"

func TestMultiProcess(t *testing.T) {
	dbBase, redisBase := mpBackends(t)
	bin := mpBuild(t)
	dbURL := mpSchema(t, dbBase)

	env := []string{
		"WALLETAUTH_DATABASE_URL=" + dbURL,
		"WALLETAUTH_REDIS_URL=" + redisBase,
		// Instances share one server key (and no key file in the working directory).
		"WALLETAUTH_SECRET_KEY=d2FsbGV0YXV0aC10ZXN0LXNlcnZlci1rZXktMzJieXQ=",
		"WALLETAUTH_HTTP_ADDR=127.0.0.1:0",
		// Both instances must name the same domain in their challenges.
		"WALLETAUTH_SIWE_DOMAIN=walletauth.test",
		"WALLETAUTH_EMAIL_FAIL_PER_ACCOUNT=3/15m",
		// Every request comes from 127.0.0.1 and the Redis is shared with
		// other tests and runs: per-IP limits would trip across runs.
		"WALLETAUTH_EMAIL_FAIL_PER_IP=0",
		"WALLETAUTH_SIGNUP_PER_IP=0",
		"WALLETAUTH_WALLET_PER_IP=0",
		"WALLETAUTH_CHALLENGE_PER_IP=0",
		"WALLETAUTH_REQUEST_TIMEOUT=10s",
		"WALLETAUTH_SHUTDOWN_TIMEOUT=10s",
	}
	// A first, so that it migrates the schema alone; then B.
	a := mpStart(t, bin, "A", env)
	b := mpStart(t, bin, "B", env)
	c := &mpClient{t: t, http: &http.Client{Timeout: 15 * time.Second}}

	t.Run("nonce consumed once across instances", func(t *testing.T) {
		c := c.with(t)
		key, addr := mpKey(t)
		var ch struct{ Message, Nonce string }
		c.wantJSON(c.do(a, "GET", "/v1/auth/wallet/challenge?address="+addr.Hex(), nil, ""), 200, &ch)
		body := map[string]string{"message": ch.Message, "signature": mpSign(t, key, ch.Message)}
		var login mpLogin
		c.wantJSON(c.do(b, "POST", "/v1/auth/wallet/login", body, ""), 200, &login)
		if login.AuthToken == "" || !login.Created {
			t.Fatalf("login at B: want a token and created:true, got %+v", login)
		}
		c.wantError(c.do(a, "POST", "/v1/auth/wallet/login", body, ""), 401, "nonce_invalid")
		c.wantError(c.do(b, "POST", "/v1/auth/wallet/login", body, ""), 401, "nonce_invalid")
		// The session made at B works at A.
		c.wantStatus(c.do(a, "GET", "/v1/users/me", nil, login.AuthToken), 200)

		// The {address, signature} form: challenge at B, login at A.
		c.wantJSON(c.do(b, "GET", "/v1/auth/wallet/challenge?address="+addr.Hex(), nil, ""), 200, &ch)
		short := map[string]string{"address": addr.Hex(), "signature": mpSign(t, key, ch.Message)}
		var again mpLogin
		c.wantJSON(c.do(a, "POST", "/v1/auth/wallet/login", short, ""), 200, &again)
		if again.Created || again.User.ID != login.User.ID {
			t.Fatalf("second login at A: want created:false for user %s, got %+v", login.User.ID, again)
		}
		c.wantError(c.do(b, "POST", "/v1/auth/wallet/login", short, ""), 401, "nonce_invalid")
	})

	t.Run("logout-all on A holds on B", func(t *testing.T) {
		c := c.with(t)
		email := mpEmail(t)
		up := c.signup(a, email)
		other := c.login(b, email, mpPassword)
		for _, tok := range []string{up.AuthToken, other.AuthToken} {
			c.wantStatus(c.do(b, "GET", "/v1/users/me", nil, tok), 200) // now cached on B
			c.wantStatus(c.do(b, "GET", "/v1/users/me", nil, tok), 200)
		}
		c.wantStatus(c.do(a, "POST", "/v1/auth/logout-all", nil, up.AuthToken), 204)
		c.wantRevoked(b, up.AuthToken, other.AuthToken)
		c.wantRevoked(a, up.AuthToken, other.AuthToken)
	})

	t.Run("logout on A holds on B", func(t *testing.T) {
		c := c.with(t)
		email := mpEmail(t)
		keep := c.signup(a, email)
		tok := c.login(a, email, mpPassword).AuthToken
		c.wantStatus(c.do(b, "GET", "/v1/users/me", nil, tok), 200)
		c.wantStatus(c.do(b, "GET", "/v1/users/me", nil, keep.AuthToken), 200)
		c.wantStatus(c.do(a, "POST", "/v1/auth/logout", nil, tok), 204)
		c.wantRevoked(b, tok)
		c.wantRevoked(a, tok)
		// Only that token: the user's other session still works.
		c.wantStatus(c.do(b, "GET", "/v1/users/me", nil, keep.AuthToken), 200)
	})

	t.Run("account deletion on A holds on B", func(t *testing.T) {
		c := c.with(t)
		email := mpEmail(t)
		u := c.signup(a, email)
		second := c.login(b, email, mpPassword)
		c.wantStatus(c.do(b, "GET", "/v1/users/me", nil, u.AuthToken), 200)
		c.wantStatus(c.do(b, "GET", "/v1/users/me", nil, second.AuthToken), 200)
		c.wantStatus(c.do(a, "DELETE", "/v1/users/me", nil, u.AuthToken), 204)
		c.wantRevoked(b, u.AuthToken, second.AuthToken)
		c.wantRevoked(a, u.AuthToken, second.AuthToken)
		c.wantError(c.do(b, "POST", "/v1/auth/email/login", map[string]string{"email": email, "password": mpPassword}, ""), 401, "invalid_credentials")
	})

	t.Run("rate limit counts across instances", func(t *testing.T) {
		c := c.with(t)
		email := mpEmail(t)
		c.signup(a, email)
		wrong := map[string]string{"email": email, "password": "not-the-password-1"}
		for _, s := range []*mpServer{a, a, b} {
			c.wantError(c.do(s, "POST", "/v1/auth/email/login", wrong, ""), 401, "invalid_credentials")
		}
		for _, s := range []*mpServer{a, b} {
			r := c.do(s, "POST", "/v1/auth/email/login", wrong, "")
			c.wantError(r, 429, "rate_limited")
			if r.header.Get("Retry-After") == "" {
				t.Errorf("429 from %s has no Retry-After", s.name)
			}
			// The right password is refused too while the account is locked.
			r = c.do(s, "POST", "/v1/auth/email/login", map[string]string{"email": email, "password": mpPassword}, "")
			c.wantError(r, 429, "rate_limited")
		}
	})
}

// ---- backends ----

// mpBackends returns the test PostgreSQL and Redis URLs: it skips when they
// are unset, and fails when CI=true and they are unset or unreachable.
func mpBackends(t *testing.T) (db, redis string) {
	t.Helper()
	db = os.Getenv("WALLETAUTH_TEST_DATABASE_URL")
	redis = os.Getenv("WALLETAUTH_TEST_REDIS_URL")
	if db == "" || redis == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but WALLETAUTH_TEST_DATABASE_URL or WALLETAUTH_TEST_REDIS_URL is not set: the multi-process test is required in CI")
		}
		t.Skip("WALLETAUTH_TEST_DATABASE_URL and WALLETAUTH_TEST_REDIS_URL are needed")
	}
	u, err := url.Parse(redis)
	if err != nil || u.Host == "" {
		t.Fatalf("WALLETAUTH_TEST_REDIS_URL %q: want redis://host:port/db", redis)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "6379")
	}
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatalf("Redis at WALLETAUTH_TEST_REDIS_URL is not reachable: %v", err)
	}
	_ = conn.Close()
	return db, redis
}

// mpSchema creates a throwaway schema in the test database, dropped when
// the test ends (after the servers, whose cleanups run first), and returns a
// URL whose search_path is that schema.
func mpSchema(t *testing.T, base string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := storage.Open(ctx, base, storage.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatalf("PostgreSQL at WALLETAUTH_TEST_DATABASE_URL is not reachable: %v", err)
	}
	schema := "mp_" + mpHex(t, 6)
	if err := admin.WithContext(ctx).Exec("CREATE SCHEMA " + schema).Error; err != nil {
		_ = admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := admin.Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
		_ = admin.Close()
	})
	return storagetest.WithSearchPath(t, base, schema)
}

// mpBuild builds the walletauth binary into the test's temporary directory.
func mpBuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "walletauth")
	// go test puts its own GOROOT/bin first on the PATH of tests.
	gobin := "go"
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", bin, ".")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out.String())
	}
	t.Logf("built walletauth in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// ---- server processes ----

type mpServer struct {
	name string
	url  string
	cmd  *exec.Cmd
	logs *mpLog
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done closes
}

// mpLog keeps a process's output (the last 256 KiB) for failure reports.
type mpLog struct {
	mu  sync.Mutex
	buf []byte
}

func (l *mpLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - 256<<10; over > 0 {
		l.buf = append([]byte(nil), l.buf[over:]...)
	}
	return len(p), nil
}

func (l *mpLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// mpStart starts `walletauth serve` with env (the process's own
// environment minus every WALLETAUTH_ variable, plus env) and waits for its
// "listening on" line. The process is stopped with SIGTERM when the test
// ends; its log is shown if the test failed.
func mpStart(t *testing.T, bin, name string, env []string) *mpServer {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WALLETAUTH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	s := &mpServer{name: name, cmd: cmd, logs: &mpLog{}, done: make(chan struct{})}
	cmd.Stderr = s.logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			_, _ = fmt.Fprintf(s.logs, "[stdout] %s\n", line)
			if addr, ok := strings.CutPrefix(line, "listening on "); ok {
				select {
				case listening <- strings.TrimSpace(addr):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("---- log of instance %s ----\n%s", name, s.logs.String())
		}
	})
	select {
	case u := <-listening:
		s.url = u
	case <-s.done:
		t.Fatalf("instance %s exited before listening: %v\n%s", name, s.err, s.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("instance %s did not print its listening line within 60s\n%s", name, s.logs.String())
	}
	return s
}

// stop sends SIGTERM and waits (bounded) for the process to exit.
func (s *mpServer) stop(t *testing.T) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.err != nil {
			t.Errorf("instance %s exited with %v after SIGTERM", s.name, s.err)
		}
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("instance %s did not exit within 30s of SIGTERM; killed", s.name)
	}
}

// ---- HTTP ----

type mpClient struct {
	t    *testing.T
	http *http.Client
}

func (c *mpClient) with(t *testing.T) *mpClient { return &mpClient{t: t, http: c.http} }

type mpResponse struct {
	method, path, server string
	status               int
	header               http.Header
	body                 []byte
}

func (r *mpResponse) String() string {
	return fmt.Sprintf("%s %s at %s: %d %s", r.method, r.path, r.server, r.status, bytes.TrimSpace(r.body))
}

// do sends a request (body nil or JSON-encoded; token "" for none).
func (c *mpClient) do(s *mpServer, method, path string, body any, token string) *mpResponse {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s at %s: %v", method, path, s.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s at %s: reading the body: %v", method, path, s.name, err)
	}
	return &mpResponse{method: method, path: path, server: s.name, status: resp.StatusCode, header: resp.Header, body: b}
}

func (c *mpClient) wantStatus(r *mpResponse, status int) {
	c.t.Helper()
	if r.status != status {
		c.t.Fatalf("%v; want status %d", r, status)
	}
}

func (c *mpClient) wantJSON(r *mpResponse, status int, v any) {
	c.t.Helper()
	c.wantStatus(r, status)
	if err := json.Unmarshal(r.body, v); err != nil {
		c.t.Fatalf("%v: not the expected JSON: %v", r, err)
	}
}

// wantError checks the status and that the body is exactly the contract's
// error shape with the given code.
func (c *mpClient) wantError(r *mpResponse, status int, code string) {
	c.t.Helper()
	c.wantStatus(r, status)
	var e map[string]map[string]any
	if err := json.Unmarshal(r.body, &e); err != nil || len(e) != 1 || e["error"] == nil {
		c.t.Fatalf("%v: not the contract's error shape", r)
	}
	msg, _ := e["error"]["message"].(string)
	if got, _ := e["error"]["code"].(string); got != code || msg == "" {
		c.t.Fatalf("%v: want error code %q with a message", r, code)
	}
}

// wantRevoked checks that every token is refused on s within
// mpRevocationBound of now (the revocation has just been answered), and
// stays refused.
func (c *mpClient) wantRevoked(s *mpServer, tokens ...string) {
	c.t.Helper()
	deadline := time.Now().Add(mpRevocationBound)
	for _, tok := range tokens {
		var last *mpResponse
		for i := 0; i < 200; i++ {
			last = c.do(s, "GET", "/v1/users/me", nil, tok)
			if last.status == http.StatusUnauthorized || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if last.status != http.StatusUnauthorized {
			c.t.Fatalf("a revoked token is still accepted by instance %s %v after the revocation was answered: %v",
				s.name, mpRevocationBound, last)
		}
		c.wantError(last, 401, "unauthorized")
		c.wantError(c.do(s, "GET", "/v1/users/me", nil, tok), 401, "unauthorized")
	}
}

type mpLogin struct {
	AuthToken string `json:"auth_token"`
	Created   bool   `json:"created"`
	User      struct {
		ID string `json:"id"`
	} `json:"user"`
}

func (c *mpClient) signup(s *mpServer, email string) mpLogin {
	c.t.Helper()
	var out mpLogin
	c.wantJSON(c.do(s, "POST", "/v1/auth/email/signup", map[string]string{"email": email, "password": mpPassword}, ""), 201, &out)
	if out.AuthToken == "" || out.User.ID == "" {
		c.t.Fatalf("signup at %s: no token or user id: %+v", s.name, out)
	}
	return out
}

func (c *mpClient) login(s *mpServer, email, password string) mpLogin {
	c.t.Helper()
	var out mpLogin
	c.wantJSON(c.do(s, "POST", "/v1/auth/email/login", map[string]string{"email": email, "password": password}, ""), 200, &out)
	if out.AuthToken == "" {
		c.t.Fatalf("login at %s: no token: %+v", s.name, out)
	}
	return out
}

// ---- wallets and randomness ----

func mpKey(t *testing.T) (*ecdsa.PrivateKey, common.Address) {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return key, crypto.PubkeyToAddress(key.PublicKey)
}

// mpSign is personal_sign: the 65-byte signature (v = 27/28) of the
// EIP-191 hash of msg, 0x-hex.
func mpSign(t *testing.T, key *ecdsa.PrivateKey, msg string) string {
	t.Helper()
	h := wallet.HashEIP191([]byte(msg))
	sig, err := crypto.Sign(h[:], key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	return "0x" + hex.EncodeToString(sig)
}

func mpHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func mpEmail(t *testing.T) string { return "mp" + mpHex(t, 6) + "@example.com" }
