//go:build faults

package faults

// The harness: a throwaway PostgreSQL cluster per package run (one database
// per test), a throwaway redis-server per test, the walletauth binary built
// once, server processes, and an HTTP client that records every answer for
// the contract checks.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/jackc/pgx/v5"

	"github.com/walletauth/walletauth/wallet"
)

// workDir holds the binary and the PostgreSQL cluster of this run.
var workDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "walletauth-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	// PostgreSQL may run as another OS user: it must reach its directory.
	_ = os.Chmod(dir, 0o755)
	workDir = dir
	code := m.Run()
	if sharedPG != nil {
		if err := sharedPG.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "faults: stop postgres:", err)
		}
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// need skips the test when a tool is missing, or fails it when CI=true.
func need(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but %s is not available: %v", what, err)
	}
	t.Skipf("%s is not available: %v", what, err)
}

// ---- the binary ----

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func walletauthBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		p := filepath.Join(workDir, "walletauth")
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		// go test puts its own GOROOT/bin first on the PATH of tests.
		cmd := exec.CommandContext(ctx, "go", "build", "-o", p, "github.com/walletauth/walletauth/cmd/walletauth")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		binPath = p
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// ---- processes ----

// procLog keeps the last 512 KiB of a process's output.
type procLog struct {
	mu  sync.Mutex
	buf []byte
}

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - 512<<10; over > 0 {
		l.buf = append([]byte(nil), l.buf[over:]...)
	}
	return len(p), nil
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// proc is a child process; done closes when it has exited.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *procLog
	done chan struct{}
	err  error
}

// startProc starts cmd; it is killed if this test process dies (Pdeathsig).
func startProc(name string, cmd *exec.Cmd, log *procLog) (*proc, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if cmd.Stdout == nil {
		cmd.Stdout = log
	}
	cmd.Stderr = log
	p := &proc{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signalWait sends sig and waits up to d for the exit, then SIGKILLs.
func (p *proc) signalWait(sig syscall.Signal, d time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %v of %v; killed", p.name, d, sig)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls ok every step until it is true or d has passed.
func waitFor(d, step time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(step)
	}
}

// ---- PostgreSQL ----

// pgCluster is a throwaway PostgreSQL cluster on 127.0.0.1:port, run as the
// postgres OS user when this process is root (initdb refuses root).
type pgCluster struct {
	bin, data, sock string
	port            int
	cred            *syscall.Credential
	log             *procLog

	mu   sync.Mutex
	proc *proc
}

var (
	pgOnce   sync.Once
	sharedPG *pgCluster
	pgErr    error
)

// postgresCluster returns the run's cluster, started (created on first use).
func postgresCluster(t *testing.T) *pgCluster {
	t.Helper()
	pgOnce.Do(func() { sharedPG, pgErr = newPGCluster(freePort(t)) })
	need(t, "a throwaway PostgreSQL (initdb, postgres)", pgErr)
	if !sharedPG.running() {
		if err := sharedPG.Start(); err != nil {
			t.Fatal(err)
		}
	}
	return sharedPG
}

func pgBinDir() (string, error) {
	if d := os.Getenv("WALLETAUTH_FAULTS_PG_BIN"); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { // highest major version first
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("initdb not found on PATH nor under /usr/lib/postgresql/*/bin (set WALLETAUTH_FAULTS_PG_BIN)")
}

func newPGCluster(port int) (*pgCluster, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(workDir, "pg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := &pgCluster{bin: bin, data: filepath.Join(dir, "data"), sock: dir, port: port, log: &procLog{}}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and no postgres OS user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(filepath.Join(bin, "initdb"), "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *pgCluster) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc != nil && !c.proc.exited()
}

// Start runs the postmaster and waits until it accepts connections.
func (c *pgCluster) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil && !c.proc.exited() {
		return nil
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), "-D", c.data, "-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+c.sock,
		"-c", "fsync=off", "-c", "max_connections=200", "-c", "shared_buffers=32MB")
	cmd.Dir = c.sock
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	p, err := startProc("postgres", cmd, c.log)
	if err != nil {
		return err
	}
	c.proc = p
	ok := waitFor(30*time.Second, 50*time.Millisecond, func() bool {
		if p.exited() {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err != nil {
			return false
		}
		_ = conn.Close(ctx)
		return true
	})
	if p.exited() {
		return fmt.Errorf("postgres exited at start: %v\n%s", p.err, c.log.String()) //nolint:errorlint // p.err may be nil (exit status 0)
	}
	if !ok {
		return fmt.Errorf("postgres does not accept connections 30s after start\n%s", c.log.String())
	}
	return nil
}

// Stop is a fast shutdown (SIGINT): sessions are terminated, then the
// postmaster exits.
func (c *pgCluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return nil
	}
	c.thaw()
	return c.proc.signalWait(syscall.SIGINT, 30*time.Second)
}

// Freeze stops every PostgreSQL process (SIGSTOP):
// connections stay open and nothing answers, as in a network partition.
func (c *pgCluster) Freeze() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil || c.proc.exited() {
		return
	}
	// The postmaster first, so that it forks no more; then its children,
	// each of which is its own process group leader (PostgreSQL's setsid).
	pm := c.proc.cmd.Process.Pid
	_ = syscall.Kill(pm, syscall.SIGSTOP)
	for _, pid := range childPIDs(pm) {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
}

// Thaw resumes a frozen cluster.
func (c *pgCluster) Thaw() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.thaw()
}

func (c *pgCluster) thaw() {
	if c.proc == nil || c.proc.exited() {
		return
	}
	pm := c.proc.cmd.Process.Pid
	for _, pid := range childPIDs(pm) {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	_ = syscall.Kill(pm, syscall.SIGCONT)
}

// childPIDs lists the processes whose parent is ppid (from /proc).
func childPIDs(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) >= 2 {
			if p, err := strconv.Atoi(f[1]); err == nil && p == ppid {
				out = append(out, pid)
			}
		}
	}
	return out
}

// URL names database db on the cluster.
func (c *pgCluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// NewDatabase creates a database for one test and drops it when the test
// ends (register it before the servers using it, so it is dropped after).
func (c *pgCluster) NewDatabase(t *testing.T) string {
	t.Helper()
	name := "f_" + randomHex(t, 6)
	c.exec(t, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		if !c.running() {
			if err := c.Start(); err != nil {
				t.Errorf("restart postgres to drop %s: %v", name, err)
				return
			}
		}
		c.exec(t, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return c.URL(name)
}

func (c *pgCluster) exec(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatalf("connect to the throwaway postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// ---- Redis ----

// redisServer is a throwaway redis-server without persistence on its own
// loopback port; Stop and Start keep the port.
type redisServer struct {
	port int
	log  *procLog
	proc *proc
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	_, err := exec.LookPath("redis-server")
	need(t, "redis-server", err)
	r := &redisServer{port: freePort(t), log: &procLog{}}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.Stop()
		if t.Failed() {
			t.Logf("---- redis log ----\n%s", tail(r.log.String(), 4000))
		}
	})
	return r
}

func (r *redisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *redisServer) Start() error {
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	p, err := startProc("redis", cmd, r.log)
	if err != nil {
		return err
	}
	r.proc = p
	if !waitFor(10*time.Second, 20*time.Millisecond, func() bool { return p.exited() || r.ping() == nil }) || p.exited() {
		return fmt.Errorf("redis-server on port %d did not start: %v\n%s", r.port, p.err, r.log.String()) //nolint:errorlint // p.err is nil when it is still running
	}
	return nil
}

// Stop shuts Redis down (SIGTERM): its clients' connections close.
func (r *redisServer) Stop() error {
	if r.proc == nil {
		return nil
	}
	r.Thaw() // in case it was frozen
	return r.proc.signalWait(syscall.SIGTERM, 10*time.Second)
}

// Freeze stops the process without closing anything (SIGSTOP): a hung
// server or a network partition, as its clients see it. Thaw resumes it.
func (r *redisServer) Freeze() { _ = r.proc.cmd.Process.Signal(syscall.SIGSTOP) }
func (r *redisServer) Thaw()   { _ = r.proc.cmd.Process.Signal(syscall.SIGCONT) }

func (r *redisServer) ping() error {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("redis answered %q", line)
	}
	return nil
}

// ---- a TCP proxy that can black-hole ----

// tcpProxy forwards loopback connections to target. Paused, it holds every
// byte in both directions without closing anything: to the client behind
// it, the target hangs (a network partition of that client alone).
type tcpProxy struct {
	ln     net.Listener
	target string
	paused atomic.Bool
	closed atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }
func (p *tcpProxy) Pause()       { p.paused.Store(true) }
func (p *tcpProxy) Resume()      { p.paused.Store(false) }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

// pipe copies from src to dst, holding data while paused; it ends when
// either side closes.
func (p *tcpProxy) pipe(src, dst net.Conn) {
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for p.paused.Load() && !p.closed.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *tcpProxy) close() {
	p.closed.Store(true)
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// ---- walletauth ----

// instance is one `walletauth serve` process.
type instance struct {
	name string
	url  string
	addr string
	*proc
}

// baseEnv is the configuration every instance gets unless overridden.
func baseEnv(dbURL, redisURL string) map[string]string {
	return map[string]string{
		"WALLETAUTH_DATABASE_URL":     dbURL,
		"WALLETAUTH_REDIS_URL":        redisURL,
		"WALLETAUTH_SECRET_KEY":       "d2FsbGV0YXV0aC10ZXN0LXNlcnZlci1rZXktMzJieXQ=", // shared by the instances
		"WALLETAUTH_HTTP_ADDR":        "127.0.0.1:0",
		"WALLETAUTH_SIWE_DOMAIN":      "walletauth.test",
		"WALLETAUTH_REQUEST_TIMEOUT":  "3s",
		"WALLETAUTH_SHUTDOWN_TIMEOUT": "10s",
		"WALLETAUTH_LOG_LEVEL":        "info",
		// Every request comes from 127.0.0.1: per-IP limits would only
		// measure the load generator.
		"WALLETAUTH_EMAIL_FAIL_PER_IP": "0",
		"WALLETAUTH_SIGNUP_PER_IP":     "0",
		"WALLETAUTH_WALLET_PER_IP":     "0",
		"WALLETAUTH_CHALLENGE_PER_IP":  "0",
	}
}

// startInstance starts the binary with env (and no other WALLETAUTH_
// variable) and waits for its "listening on" line. When the test ends it is
// SIGTERMed (if still running); its log is shown if the test failed.
func startInstance(t *testing.T, name string, env map[string]string) *instance {
	t.Helper()
	cmd := exec.Command(walletauthBinary(t), "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WALLETAUTH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	log := &procLog{}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	p, err := startProc("walletauth "+name, cmd, log)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{name: name, proc: p}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = fmt.Fprintf(log, "[stdout] %s\n", line)
			if addr, ok := strings.CutPrefix(line, "listening on "); ok {
				select {
				case listening <- strings.TrimSpace(addr):
				default:
				}
			}
		}
	}()
	go func() { <-p.done; _ = pw.Close() }()
	t.Cleanup(func() {
		if err := p.signalWait(syscall.SIGTERM, 30*time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("---- log of instance %s (tail) ----\n%s", name, tail(log.String(), 20000))
		}
	})
	select {
	case u := <-listening:
		in.url = u
		in.addr = strings.TrimPrefix(u, "http://")
	case <-p.done:
		t.Fatalf("instance %s exited before listening: %v\n%s", name, p.err, log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("instance %s did not print its listening line within 60s\n%s", name, log.String())
	}
	return in
}

// logProblems returns the log lines of the instance that show a bug
// whatever the fault: panics, data races, 500s.
func (in *instance) logProblems() []string {
	var out []string
	for _, line := range strings.Split(in.log.String(), "\n") {
		if strings.Contains(line, "panic") || strings.Contains(line, "DATA RACE") || strings.Contains(line, `"status":500`) {
			out = append(out, line)
		}
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// ---- HTTP ----

// answer is one request's outcome as a client saw it.
type answer struct {
	op      string
	method  string
	path    string
	server  string
	start   time.Time
	dur     time.Duration
	status  int // 0 when err
	code    string
	body    []byte
	header  http.Header
	err     error
	userID  string
	token   string
	wroteAt atomic.Int64 // UnixNano when the request was fully written
}

// withWroteTrace records in a when the request has been written.
func withWroteTrace(req *http.Request, a *answer) *http.Request {
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { a.wroteAt.Store(time.Now().UnixNano()) }}
	return req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
}

func (a *answer) String() string {
	if a.err != nil {
		return fmt.Sprintf("%s %s %s at %s after %v: %v", a.op, a.method, a.path, a.server, a.dur.Round(time.Millisecond), a.err)
	}
	return fmt.Sprintf("%s %s %s at %s after %v: %d %s", a.op, a.method, a.path, a.server, a.dur.Round(time.Millisecond), a.status, bytes.TrimSpace(tailBytes(a.body, 300)))
}

func tailBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// client sends requests; clientTimeout sits a bit above the service's
// request deadline, so a hang shows as a client error.
type client struct {
	http *http.Client
}

func newClient(timeout time.Duration, keepAlive bool) *client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		DisableKeepAlives:   !keepAlive,
	}
	return &client{http: &http.Client{Timeout: timeout, Transport: tr}}
}

func (c *client) close() { c.http.CloseIdleConnections() }

// do sends one request and never fails the test: the answer holds any error.
func (c *client) do(ctx context.Context, in *instance, op, method, path string, body any, token string) *answer {
	a := &answer{op: op, method: method, path: path, server: in.name, start: time.Now()}
	defer func() { a.dur = time.Since(a.start) }()
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			a.err = err
			return a
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, in.url+path, rd)
	if err != nil {
		a.err = err
		return a
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req = withWroteTrace(req, a)
	resp, err := c.http.Do(req)
	if err != nil {
		a.err = err
		return a
	}
	defer resp.Body.Close()
	a.status, a.header = resp.StatusCode, resp.Header
	a.body, a.err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if a.err != nil {
		a.status = 0
		return a
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if a.status >= 400 && json.Unmarshal(a.body, &e) == nil {
		a.code = e.Error.Code
	}
	if a.status == 200 || a.status == 201 {
		var l struct {
			AuthToken string `json:"auth_token"`
			User      struct {
				ID string `json:"id"`
			} `json:"user"`
		}
		if json.Unmarshal(a.body, &l) == nil {
			a.userID, a.token = l.User.ID, l.AuthToken
		}
	}
	return a
}

// mustDo is do for setup steps: it fails the test unless the status is want.
func (c *client) mustDo(t *testing.T, in *instance, method, path string, body any, token string, want int) *answer {
	t.Helper()
	a := c.do(context.Background(), in, "setup", method, path, body, token)
	if a.err != nil || a.status != want {
		t.Fatalf("%v; want %d", a, want)
	}
	return a
}

// errorShape reports whether body is exactly the contract's error shape
// {"error": {"code", "message"}} with code as given.
func errorShape(body []byte, code string) bool {
	var outer map[string]json.RawMessage
	if json.Unmarshal(body, &outer) != nil || len(outer) != 1 || outer["error"] == nil {
		return false
	}
	var inner map[string]any
	if json.Unmarshal(outer["error"], &inner) != nil {
		return false
	}
	c, _ := inner["code"].(string)
	m, _ := inner["message"].(string)
	return c == code && m != ""
}

// contractViolation returns why a is not an acceptable answer of the
// contract under a backend outage, or "": no transport error (hang, reset),
// never 500, every 503 is `unavailable` in the error shape, every other
// status one of allowed, and no answer slower than maxDur.
func contractViolation(a *answer, maxDur time.Duration, allowed ...int) string {
	switch {
	case a.err != nil:
		return "no answer: " + a.err.Error()
	case a.dur > maxDur:
		return fmt.Sprintf("answered after %v, past the request deadline (bound %v)", a.dur.Round(time.Millisecond), maxDur)
	case a.status == 503:
		if !errorShape(a.body, "unavailable") {
			return "503 without the contract's unavailable error"
		}
		return ""
	case a.status >= 500:
		return fmt.Sprintf("status %d", a.status)
	}
	for _, s := range allowed {
		if a.status == s {
			if s >= 400 && !errorShape(a.body, a.code) {
				return "error without the contract's shape"
			}
			return ""
		}
	}
	return fmt.Sprintf("status %d is not one of %v", a.status, allowed)
}

// ---- wallets ----

type signer struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}

func newSigner(t *testing.T) signer {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return signer{key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}
}

// sign is personal_sign: 65 bytes, v = 27/28, 0x-hex.
func (s signer) sign(msg string) string {
	h := wallet.HashEIP191([]byte(msg))
	sig, err := crypto.Sign(h[:], s.key)
	if err != nil {
		panic(err)
	}
	sig[64] += 27
	return "0x" + hex.EncodeToString(sig)
}

// challengeMessage reads the message of a 200 challenge answer.
func challengeMessage(a *answer) string {
	var ch struct{ Message string }
	_ = json.Unmarshal(a.body, &ch)
	return ch.Message
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

const password = "kiwi-Lantern-42-orbit-faults"

func uniqueEmail(t testing.TB) string { return "f" + randomHex(t, 8) + "@example.com" }
