package main

// End-to-end tests: the whole program through run, over real HTTP on port 0.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/storage"
)

// lockedBuffer is an io.Writer safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runningServer is `walletauth serve` started by startServer.
type runningServer struct {
	base   string // http://127.0.0.1:PORT
	addr   string
	stderr *lockedBuffer
	cancel context.CancelFunc
	done   chan error // run's result
}

// startServer calls run(ctx, ["serve"], …) in a goroutine on 127.0.0.1:0 with
// a temporary SQLite file (env adds or overrides variables), reads the
// "listening on" line from stdout, and waits for /healthz to answer 200. The
// server is stopped when the test ends.
func startServer(t *testing.T, env ...string) *runningServer {
	t.Helper()
	vars := map[string]string{
		"WALLETAUTH_HTTP_ADDR":    "127.0.0.1:0",
		"WALLETAUTH_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "e2e.db"),
		"WALLETAUTH_LOG_FORMAT":   "text",
	}
	for i := 0; i+1 < len(env); i += 2 {
		vars["WALLETAUTH_"+strings.TrimPrefix(env[i], "WALLETAUTH_")] = env[i+1]
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &runningServer{stderr: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := run(ctx, []string{"serve"}, mapEnv(vars), pw, s.stderr, environOf(vars)...)
		_ = pw.CloseWithError(fmt.Errorf("run returned: %v", err)) //nolint:errorlint // err is nil on a clean return
		s.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Errorf("run did not return 30s after its context was cancelled")
		}
	})

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(line, "listening on http://")
		if !ok {
			t.Fatalf("first stdout line = %q, want \"listening on http://ADDR\"", line)
		}
		s.addr = addr
		s.base = "http://" + addr
	case err := <-s.done:
		s.done <- err
		t.Fatalf("run returned before listening: %v\nstderr:\n%s", err, s.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("no \"listening on\" line within 60s\nstderr:\n%s", s.stderr)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer 200 within 30s: %v\nstderr:\n%s", err, s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// stop cancels run's context and returns run's result.
func (s *runningServer) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not return within 30s of its context's end\nstderr:\n%s", s.stderr)
		return nil
	}
}

// call makes a request to the server and decodes a JSON answer into out
// (when not nil); it returns the status.
func (s *runningServer) call(t *testing.T, method, path, token string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

func TestEndToEnd(t *testing.T) {
	s := startServer(t)

	if code := s.call(t, http.MethodGet, "/readyz", "", nil, nil); code != http.StatusOK {
		t.Errorf("/readyz = %d, want 200", code)
	}

	email := apitest.UniqueEmail(t)
	var up apitest.Login
	if code := s.call(t, http.MethodPost, "/v1/auth/email/signup", "", map[string]string{"email": email, "password": apitest.Password, "username": "e2e_user"}, &up); code != http.StatusCreated {
		t.Fatalf("signup = %d, want 201", code)
	}
	if !up.IsCreated() || up.AuthToken == "" || up.User.Username != "e2e_user" {
		t.Fatalf("signup answered %+v", up)
	}

	var me apitest.User
	if code := s.call(t, http.MethodGet, "/v1/users/me", up.AuthToken, nil, &me); code != http.StatusOK {
		t.Fatalf("/me = %d, want 200", code)
	}
	if me.ID != up.User.ID || me.Email == nil || *me.Email != email {
		t.Errorf("/me = %+v, want the signed-up user", me)
	}

	var in apitest.Login
	if code := s.call(t, http.MethodPost, "/v1/auth/email/login", "", map[string]string{"email": email, "password": apitest.Password}, &in); code != http.StatusOK {
		t.Fatalf("login = %d, want 200", code)
	}
	if in.IsCreated() || in.User.ID != up.User.ID {
		t.Errorf("login answered %+v", in)
	}

	if code := s.call(t, http.MethodPost, "/v1/auth/logout", up.AuthToken, nil, nil); code != http.StatusNoContent {
		t.Fatalf("logout = %d, want 204", code)
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if code := s.call(t, http.MethodGet, "/v1/users/me", up.AuthToken, nil, &e); code != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
		t.Errorf("/me after logout = %d %q, want 401 unauthorized", code, e.Error.Code)
	}
	if code := s.call(t, http.MethodGet, "/v1/users/me", in.AuthToken, nil, nil); code != http.StatusOK {
		t.Errorf("/me with the other token after logout = %d, want 200", code)
	}

	if err := s.stop(t); err != nil {
		t.Fatalf("run after cancel = %v, want nil (graceful shutdown)\nstderr:\n%s", err, s.stderr)
	}
	if _, err := http.Get(s.base + "/healthz"); err == nil {
		t.Error("the server still answers after run returned")
	}
	// The access log has one line per request, with its request ID.
	if log := s.stderr.String(); !strings.Contains(log, "request_id=") || !strings.Contains(log, "/v1/auth/email/signup") {
		t.Errorf("stderr has no access log lines with request IDs:\n%s", log)
	}
}

// A request in flight when the context ends (SIGTERM in production) is
// finished before run returns nil. The request is held in flight by its
// body: with "Expect: 100-continue" the server says "100 Continue" only once
// the handler reads the body, so the test knows the handler is running.
func TestEndToEndShutdownFinishesInFlightRequest(t *testing.T) {
	s := startServer(t)

	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body, _ := json.Marshal(map[string]string{"email": apitest.UniqueEmail(t), "password": apitest.Password})
	fmt.Fprintf(conn, "POST /v1/auth/email/signup HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", s.addr, len(body))
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading 100 Continue: %v", err)
	}
	if resp.StatusCode != http.StatusContinue {
		t.Fatalf("got %d before the body, want 100 Continue", resp.StatusCode)
	}

	// The handler is now waiting for the body. Stop the server and wait until
	// it no longer accepts connections.
	s.cancel()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections 30s after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-s.done:
		t.Fatalf("run returned (%v) with a request in flight", err)
	default:
	}

	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the in-flight request got no answer: %v\nstderr:\n%s", err, s.stderr)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		data, _ := io.ReadAll(resp.Body)
		t.Fatalf("in-flight signup = %d %s, want 201", resp.StatusCode, data)
	}
	var out apitest.Login
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AuthToken == "" {
		t.Fatalf("in-flight signup body: %v", err)
	}

	if err := s.stop(t); err != nil {
		t.Fatalf("run = %v, want nil\nstderr:\n%s", err, s.stderr)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		env := map[string]string{}
		pairs := b.env(t)
		for i := 0; i+1 < len(pairs); i += 2 {
			env["WALLETAUTH_"+pairs[i]] = pairs[i+1]
		}
		for i := 0; i < 2; i++ {
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{"migrate"}, mapEnv(env), &stdout, &stderr); err != nil {
				t.Fatalf("migrate #%d: %v\nstderr: %s", i+1, err, &stderr)
			}
			// The first run names what it applied; the second has nothing to do.
			want := "applied migration " + storage.Migrations()[0].ID
			if i == 1 {
				want = "up to date"
			}
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("migrate #%d printed %q, want it to say %q", i+1, &stdout, want)
			}
		}
		// The migrated database serves.
		a := newTestApp(t, withEnv(pairs...))
		a.Signup(t, apitest.UniqueEmail(t))
	})
}

func TestRunRefusesBadConfiguration(t *testing.T) {
	for _, cmd := range []string{"serve", "migrate"} {
		t.Run(cmd, func(t *testing.T) {
			env := map[string]string{
				"WALLETAUTH_HTTP_ADDR":    "127.0.0.1:0",
				"WALLETAUTH_DATABASE_URL": sqliteURL(t),
				"WALLETAUTH_CHAIN_IDS":    "1,abc",
			}
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := run(ctx, []string{cmd}, mapEnv(env), &stdout, &stderr)
			if err == nil {
				t.Fatal("run with WALLETAUTH_CHAIN_IDS=1,abc returned nil")
			}
			if !strings.Contains(err.Error(), "WALLETAUTH_CHAIN_IDS") {
				t.Errorf("error %q does not name WALLETAUTH_CHAIN_IDS", err)
			}
			if strings.Contains(stdout.String(), "listening") {
				t.Error("serve listened despite the bad configuration")
			}
		})
	}
}

func TestRunCommands(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), nil, mapEnv(nil), &stdout, &stderr); err == nil {
		t.Error("run with no command returned nil")
	}
	if !strings.Contains(stderr.String(), "usage") {
		t.Errorf("no usage on stderr: %q", &stderr)
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"bogus"}, mapEnv(nil), &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("run bogus = %v, want an error naming the command", err)
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"help"}, mapEnv(nil), &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "serve") {
		t.Errorf("run help = %v, stdout %q", err, &stdout)
	}
}
