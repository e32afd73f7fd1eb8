// Command walletauth-load is a bounded, loopback-only load generator for
// walletauth, and the reference points its figures are divided by.
//
//	walletauth-load -scenario wallet -target http://127.0.0.1:8080 -c 64 -duration 10s -keys 10000
//	walletauth-load -scenario burst  -target http://127.0.0.1:8080 -c 64 -duration 60s -keys 20000 (key i for op i: every sign-in a new user)
//	walletauth-load -scenario me     -target http://127.0.0.1:8080 -c 64 -duration 10s
//	walletauth-load -scenario me-access -target http://127.0.0.1:8080 -c 64 -duration 10s (the access token, a JWT)
//	walletauth-load -scenario email  -target http://127.0.0.1:8080 -c 64 -duration 10s
//	walletauth-load -scenario bare   -target http://127.0.0.1:8081 -path /bare -c 64 -duration 10s
//	walletauth-load -scenario challenge -target http://127.0.0.1:8080 -c 64 -duration 10s
//	walletauth-load -scenario signrecover -c 64 -duration 10s
//	walletauth-load -serve-bare 127.0.0.1:8081     (gin.New(), one GET route, no middleware)
//	walletauth-load -scenario gotrue-web3 -target http://127.0.0.1:9999 -keys 10000   (supabase/auth, gotrue.go)
//	walletauth-load -scenario gotrue-user -target http://127.0.0.1:9999
//
// Every run stops at -n operations or after -duration, whichever comes
// first, and refuses any target that is not on the loopback interface.
//
// It is a module of its own (tools/loadtest/go.mod), so fasthttp and
// fastjson stay out of the service's dependencies; build it with
// `cd tools/loadtest && go build -o walletauth-load .` (scripts/bench.sh does).
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/gin-gonic/gin"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"
)

// Hard bounds: no flag value may exceed them.
const (
	maxDuration    = 10 * time.Minute
	maxConcurrency = 4096
	maxKeys        = 1_000_000
)

type options struct {
	target   string
	scenario string
	n        int64
	duration time.Duration
	c        int
	keys     int
	path     string
	jsonOut  bool
	timeout  time.Duration
	warmup   time.Duration
	seed     string
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "walletauth-load:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("walletauth-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.target, "target", "http://127.0.0.1:8080", "base URL of the server (loopback only)")
	fs.StringVar(&o.scenario, "scenario", "bare", "wallet, burst, me, me-access, email, bare, challenge, signrecover, gotrue-web3 or gotrue-user")
	fs.Int64Var(&o.n, "n", 1_000_000, "stop after this many operations (an operation of wallet is challenge+login)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "stop after this long (at most 10m)")
	fs.IntVar(&o.c, "c", 64, "concurrent workers")
	fs.IntVar(&o.keys, "keys", 10000, "distinct wallet keys for the wallet, challenge and gotrue-web3 scenarios; burst: sign-ins to run, one new key each")
	fs.StringVar(&o.path, "path", "/healthz", "path of the bare scenario")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.StringVar(&o.seed, "seed", "", "derive the wallet keys from this seed (keccak256(seed, i)) instead of crypto.GenerateKey, so a second run signs in the same addresses again (returning logins)")
	fs.DurationVar(&o.warmup, "warmup", 0, "run the scenario this long first, unmeasured (counts against nothing)")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's own CPU profile of the measured run to this file")
	serveBare := fs.String("serve-bare", "", "serve a bare Gin constant handler on this loopback address (GET /bare and GET /healthz) until SIGINT/SIGTERM")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *serveBare != "" {
		return serveBareGin(*serveBare, stdout)
	}
	if o.duration <= 0 || o.duration > maxDuration {
		return fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	}
	if o.warmup < 0 || o.warmup > time.Minute {
		return fmt.Errorf("-warmup must be in [0, 1m]")
	}
	if o.n <= 0 {
		return errors.New("-n must be positive")
	}
	if o.c < 1 || o.c > maxConcurrency {
		return fmt.Errorf("-c must be in [1, %d]", maxConcurrency)
	}
	if o.keys < 1 || o.keys > maxKeys {
		return fmt.Errorf("-keys must be in [1, %d]", maxKeys)
	}

	var sc scenario
	var err error
	if o.scenario == "signrecover" {
		sc, err = newSignRecover(o)
	} else {
		base, err2 := checkTarget(o.target)
		if err2 != nil {
			return err2
		}
		cl := newClient(base, o)
		switch o.scenario {
		case "wallet":
			sc, err = newWalletScenario(cl, o, false)
		case "challenge":
			sc, err = newWalletScenario(cl, o, true)
		case "burst":
			sc, err = newBurstScenario(cl, o)
		case "me", "me-access":
			sc, err = newMeScenario(cl, o.scenario == "me-access")
		case "email":
			sc, err = newEmailScenario(cl)
		case "bare":
			sc = &bareScenario{cl: cl, path: o.path}
		case "gotrue-web3":
			sc, err = newGotrueWeb3Scenario(cl, o)
		case "gotrue-user":
			sc, err = newGotrueUserScenario(cl)
		default:
			return fmt.Errorf("unknown -scenario %q", o.scenario)
		}
	}
	if err != nil {
		return fmt.Errorf("%s setup: %w", o.scenario, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.warmup > 0 {
		_ = drive(ctx, sc, o.c, o.n, o.warmup)
	}
	var profile *os.File
	if *cpuProfile != "" {
		if profile, err = os.Create(*cpuProfile); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(profile); err != nil {
			_ = profile.Close()
			return fmt.Errorf("-cpuprofile: %w", err)
		}
	}
	n := o.n
	if l, ok := sc.(interface{ limit() int64 }); ok {
		n = min(n, l.limit())
	}
	cpu0 := cpuTime()
	res := drive(ctx, sc, o.c, n, o.duration)
	cpu := cpuTime() - cpu0
	if profile != nil {
		pprof.StopCPUProfile()
		if err := profile.Close(); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
	}
	res.ClientCPUms = float64(cpu.Microseconds()) / 1000
	if res.Ops > 0 {
		res.ClientCPUusPerOp = float64(cpu.Microseconds()) / float64(res.Ops)
	}
	res.Scenario, res.Target, res.Concurrency = o.scenario, o.target, o.c
	if o.scenario == "signrecover" {
		res.Target = ""
	}
	if p := firstError.Load(); p != nil {
		res.FirstError = *p
	}
	if ex, ok := sc.(interface{ extra() map[string]int64 }); ok {
		res.Extra = ex.extra()
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.print(stdout)
	return nil
}

// checkTarget parses the base URL and refuses a host off the loopback.
func checkTarget(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-target %q: want http://host:port", raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("-target %q: only loopback hosts (127.0.0.0/8, ::1, localhost) are allowed", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// ---------------------------------------------------------------- driver

// scenario is one kind of operation. do runs one; it returns the HTTP
// status of the operation's last request (0 for a transport error, 200 for
// a non-HTTP op) and whether it succeeded.
type scenario interface {
	do(ctx context.Context, worker int, i int64) (status int, ok bool)
}

type result struct {
	Scenario    string           `json:"scenario"`
	Target      string           `json:"target,omitempty"`
	Concurrency int              `json:"concurrency"`
	Ops         int64            `json:"ops"`
	OK          int64            `json:"ok"`
	Errors      map[string]int64 `json:"errors_by_status"`
	Seconds     float64          `json:"seconds"`
	OpsPerSec   float64          `json:"ops_per_sec"`
	OKPerSec    float64          `json:"ok_per_sec"`
	P50ms       float64          `json:"p50_ms"`
	P90ms       float64          `json:"p90_ms"`
	P99ms       float64          `json:"p99_ms"`
	Maxms       float64          `json:"max_ms"`
	Extra       map[string]int64 `json:"extra,omitempty"`
	FirstError  string           `json:"first_error,omitempty"`
	// ClientCPUms is the CPU time (user+system) this process spent during
	// the measured phase; ClientCPUusPerOp divides it by Ops.
	ClientCPUms      float64 `json:"client_cpu_ms"`
	ClientCPUusPerOp float64 `json:"client_cpu_us_per_op"`
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// firstError keeps the first transport or decoding error, for the report.
var firstError atomic.Pointer[string]

func noteError(err error) {
	if err != nil {
		s := err.Error()
		firstError.CompareAndSwap(nil, &s)
	}
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "scenario=%s c=%d target=%s\n", r.Scenario, r.Concurrency, r.Target)
	fmt.Fprintf(w, "  ops %d (ok %d) in %.2fs: %.1f ops/s, %.1f ok/s\n", r.Ops, r.OK, r.Seconds, r.OpsPerSec, r.OKPerSec)
	fmt.Fprintf(w, "  latency p50 %.3fms p90 %.3fms p99 %.3fms max %.3fms\n", r.P50ms, r.P90ms, r.P99ms, r.Maxms)
	fmt.Fprintf(w, "  client CPU %.0fms (%.1fµs/op)\n", r.ClientCPUms, r.ClientCPUusPerOp)
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprint(w, "  errors:")
		for _, k := range keys {
			fmt.Fprintf(w, " %s=%d", k, r.Errors[k])
		}
		fmt.Fprintln(w)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", r.FirstError)
	}
	if len(r.Extra) > 0 {
		keys := make([]string, 0, len(r.Extra))
		for k := range r.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprint(w, "  extra:")
		for _, k := range keys {
			fmt.Fprintf(w, " %s=%d", k, r.Extra[k])
		}
		fmt.Fprintln(w)
	}
}

// drive runs c workers until n operations were started or d elapsed. Each
// worker keeps its own latency slice and error counts; they are merged and
// sorted at the end (exact percentiles).
func drive(parent context.Context, sc scenario, c int, n int64, d time.Duration) *result {
	ctx, cancel := context.WithTimeout(parent, d)
	defer cancel()
	var next atomic.Int64
	lat := make([][]time.Duration, c)
	errs := make([]map[string]int64, c)
	oks := make([]int64, c)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			l := make([]time.Duration, 0, 4096)
			e := map[string]int64{}
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= n {
					break
				}
				t0 := time.Now()
				status, ok := sc.do(ctx, w, i)
				if ctx.Err() != nil && !ok {
					break // cut off by the deadline: not counted
				}
				l = append(l, time.Since(t0))
				if ok {
					oks[w]++
				} else if status == 0 {
					e["transport"]++
				} else {
					e[fmt.Sprint(status)]++
				}
			}
			lat[w], errs[w] = l, e
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	r := &result{Errors: map[string]int64{}, Seconds: elapsed.Seconds()}
	for w := 0; w < c; w++ {
		all = append(all, lat[w]...)
		r.OK += oks[w]
		for k, v := range errs[w] {
			r.Errors[k] += v
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r.Ops = int64(len(all))
	r.OpsPerSec = float64(r.Ops) / elapsed.Seconds()
	r.OKPerSec = float64(r.OK) / elapsed.Seconds()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		i := int(p * float64(len(all)-1))
		return all[i]
	}
	r.P50ms, r.P90ms, r.P99ms = ms(pct(0.50)), ms(pct(0.90)), ms(pct(0.99))
	if len(all) > 0 {
		r.Maxms = ms(all[len(all)-1])
	}
	return r
}

// ---------------------------------------------------------------- client

type client struct {
	base string
	http *fasthttp.Client
}

// newClient is an HTTP/1.1 keep-alive client with at most -c connections.
// It is fasthttp's, not net/http's: the load generator shares the cores
// with the server, and net/http's client spends about twice the CPU per
// request (two goroutines per connection, channel hand-offs), which would
// be measured as the server's slowness.
func newClient(base *url.URL, o options) *client {
	return &client{base: strings.TrimSuffix(base.String(), "/"), http: &fasthttp.Client{
		MaxConnsPerHost:               o.c,
		MaxIdleConnDuration:           90 * time.Second,
		MaxConnWaitTimeout:            o.timeout,
		MaxIdemponentCallAttempts:     1, // a failed request is an error, not silently sent again
		ReadTimeout:                   o.timeout,
		WriteTimeout:                  o.timeout,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		Dial: func(addr string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).Dial("tcp", addr)
		},
	}}
}

// call sends a request and reads the whole answer; out, when not nil and
// the status is 2xx, receives the decoded JSON body. Redirects are not
// followed (never off the checked host).
func (cl *client) call(ctx context.Context, method, path, token string, body any, out any) (int, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(cl.base + path)
	req.Header.SetMethod(method)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(b)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// Bounded by the client's read and write timeouts (-timeout); the
	// run's end does not cut a request short: it waits for its answer.
	// (DoDeadline was tried: fasthttp v1.78 then fails ~1 request in 3 at
	// once with ErrTimeout under this concurrency.)
	if err := cl.http.Do(req, resp); err != nil {
		if ctx.Err() == nil {
			noteError(err)
		}
		return 0, err
	}
	status := resp.StatusCode()
	if out != nil && status/100 == 2 {
		if err := decode(resp.Body(), out); err != nil {
			err = fmt.Errorf("decode %s %s: %w", method, path, err)
			noteError(err)
			return status, err
		}
	}
	return status, nil
}

func okStatus(s int) bool { return s/100 == 2 }

// fastDecoder is a response read with fastjson: on the shared cores the
// client's encoding/json decoding of every answer cost ~15 % of its CPU,
// taken from the server under test.
type fastDecoder interface {
	decodeFast(v *fastjson.Value) error
}

var parsers fastjson.ParserPool

// decode reads body into out: with fastjson when out is a fastDecoder
// (the body must parse as one JSON value with the fields read; fastjson's
// parser does not check UTF-8 or every escape), else encoding/json.
func decode(body []byte, out any) error {
	fd, ok := out.(fastDecoder)
	if !ok {
		return json.Unmarshal(body, out)
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		return err
	}
	return fd.decodeFast(v)
}

// str is the string field key of the object v: an error when it is
// missing or not a string.
func str(v *fastjson.Value, key string) (string, error) {
	f := v.Get(key)
	if f == nil {
		return "", fmt.Errorf("no %q in the answer", key)
	}
	b, err := f.StringBytes()
	if err != nil {
		return "", fmt.Errorf("%q: %w", key, err)
	}
	return string(b), nil
}

// ---------------------------------------------------------------- bare

type bareScenario struct {
	cl   *client
	path string
}

func (b *bareScenario) do(ctx context.Context, _ int, _ int64) (int, bool) {
	s, err := b.cl.call(ctx, http.MethodGet, b.path, "", nil, nil)
	return s, err == nil && okStatus(s)
}

// ---------------------------------------------------------------- wallet

type benchKey struct {
	priv    *ecdsa.PrivateKey
	addr    string         // EIP-55
	address common.Address // the same, as bytes
}

// generateKeys makes n keys on every core, before any timer starts: with
// crypto.GenerateKey, or derived from seed when it is not empty.
func generateKeys(n int, seed string) ([]benchKey, error) {
	keys := make([]benchKey, n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				k, err := newKey(seed, i)
				if err != nil {
					firstErr.Store(err)
					return
				}
				a := crypto.PubkeyToAddress(k.PublicKey)
				keys[i] = benchKey{priv: k, addr: a.Hex(), address: a}
			}
		}(w)
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return nil, err
	}
	return keys, nil
}

func newKey(seed string, i int) (*ecdsa.PrivateKey, error) {
	if seed == "" {
		return crypto.GenerateKey()
	}
	for ctr := 0; ; ctr++ {
		d := crypto.Keccak256([]byte(fmt.Sprintf("walletauth-load/%s/%d/%d", seed, i, ctr)))
		if k, err := crypto.ToECDSA(d); err == nil {
			return k, nil
		}
	}
}

type challengeResp struct {
	Message string `json:"message"`
	Nonce   string `json:"nonce"`
}

func (c *challengeResp) decodeFast(v *fastjson.Value) (err error) {
	if c.Message, err = str(v, "message"); err != nil {
		return err
	}
	c.Nonce, err = str(v, "nonce")
	return err
}

type loginResp struct {
	AuthToken   string `json:"auth_token"`
	AccessToken string `json:"access_token"`
	Created     bool   `json:"created"`
}

func (l *loginResp) decodeFast(v *fastjson.Value) (err error) {
	if l.AuthToken, err = str(v, "auth_token"); err != nil {
		return err
	}
	if v.Get("access_token") != nil { // v1.1; the me-access scenario needs it
		if l.AccessToken, err = str(v, "access_token"); err != nil {
			return err
		}
	}
	f := v.Get("created")
	if f == nil {
		return errors.New(`no "created" in the answer`)
	}
	l.Created, err = f.Bool()
	return err
}

// walletLoginBody is the login request (a struct: encoding a map sorts it).
type walletLoginBody struct {
	Message   string `json:"message"`
	Signature string `json:"signature"`
}

type walletScenario struct {
	cl            *client
	keys          []benchKey
	challengeOnly bool
	created       atomic.Int64
	returning     atomic.Int64
}

func newWalletScenario(cl *client, o options, challengeOnly bool) (*walletScenario, error) {
	t0 := time.Now()
	keys, err := generateKeys(o.keys, o.seed)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "generated %d keys in %s\n", len(keys), time.Since(t0).Round(time.Millisecond))
	return &walletScenario{cl: cl, keys: keys, challengeOnly: challengeOnly}, nil
}

func signEIP191(k *ecdsa.PrivateKey, msg string) (string, error) {
	sig, err := crypto.Sign(hashEIP191([]byte(msg)).Bytes(), k)
	if err != nil {
		return "", err
	}
	sig[64] += 27
	return "0x" + hex.EncodeToString(sig), nil
}

// walletLogin is one sign-in: challenge, sign, login.
func walletLogin(ctx context.Context, cl *client, k benchKey) (int, *loginResp, error) {
	var ch challengeResp
	s, err := cl.call(ctx, http.MethodGet, "/v1/auth/wallet/challenge?address="+k.addr, "", nil, &ch)
	if err != nil || !okStatus(s) {
		return s, nil, err
	}
	sig, err := signEIP191(k.priv, ch.Message)
	if err != nil {
		return 0, nil, err
	}
	var lr loginResp
	s, err = cl.call(ctx, http.MethodPost, "/v1/auth/wallet/login", "",
		walletLoginBody{Message: ch.Message, Signature: sig}, &lr)
	if err != nil || !okStatus(s) {
		return s, nil, err
	}
	return s, &lr, nil
}

func (w *walletScenario) do(ctx context.Context, _ int, i int64) (int, bool) {
	k := w.keys[i%int64(len(w.keys))]
	if w.challengeOnly {
		s, err := w.cl.call(ctx, http.MethodGet, "/v1/auth/wallet/challenge?address="+k.addr, "", nil, nil)
		return s, err == nil && okStatus(s)
	}
	s, lr, err := walletLogin(ctx, w.cl, k)
	if err != nil || lr == nil {
		return s, false
	}
	if lr.Created {
		w.created.Add(1)
	} else {
		w.returning.Add(1)
	}
	return s, true
}

func (w *walletScenario) extra() map[string]int64 {
	if w.challengeOnly {
		return map[string]int64{"http_requests_per_op": 1}
	}
	return map[string]int64{"created": w.created.Load(), "returning": w.returning.Load(), "http_requests_per_op": 2}
}

// ---------------------------------------------------------------- me

type meScenario struct {
	cl    *client
	token string
}

// newMeScenario signs in once with a fresh wallet key (no argon2 on the
// setup path) and reuses its auth token, or its access token (a JWT) when
// access is true.
func newMeScenario(cl *client, access bool) (*meScenario, error) {
	keys, err := generateKeys(1, "")
	if err != nil {
		return nil, err
	}
	s, lr, err := walletLogin(context.Background(), cl, keys[0])
	if err != nil {
		return nil, err
	}
	if lr == nil {
		return nil, fmt.Errorf("wallet login answered %d", s)
	}
	if access {
		return &meScenario{cl: cl, token: lr.AccessToken}, nil
	}
	return &meScenario{cl: cl, token: lr.AuthToken}, nil
}

func (m *meScenario) do(ctx context.Context, _ int, _ int64) (int, bool) {
	s, err := m.cl.call(ctx, http.MethodGet, "/v1/users/me", m.token, nil, nil)
	return s, err == nil && okStatus(s)
}

// ---------------------------------------------------------------- email

type emailScenario struct {
	cl              *client
	email, password string
}

func newEmailScenario(cl *client) (*emailScenario, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tag := hex.EncodeToString(rnd[:])
	e := &emailScenario{cl: cl, email: "load-" + tag + "@example.com", password: "Load-test " + tag + " pw!"}
	var lr loginResp
	s, err := cl.call(context.Background(), http.MethodPost, "/v1/auth/email/signup", "",
		map[string]string{"email": e.email, "password": e.password}, &lr)
	if err != nil {
		return nil, err
	}
	if s != http.StatusCreated {
		return nil, fmt.Errorf("signup answered %d", s)
	}
	return e, nil
}

func (e *emailScenario) do(ctx context.Context, _ int, _ int64) (int, bool) {
	s, err := e.cl.call(ctx, http.MethodPost, "/v1/auth/email/login", "",
		map[string]string{"email": e.email, "password": e.password}, nil)
	return s, err == nil && okStatus(s)
}

// ---------------------------------------------------------------- signrecover

// signRecover is the machine's bound for a wallet sign-in with no HTTP and
// no storage: sign (what the client does) + recover (what the server does)
// over the same EIP-191 hash of a typical challenge, on the same cores.
type signRecover struct {
	keys []benchKey
	msgs [][]byte
}

const sampleMessage = "127.0.0.1:8080 wants you to sign in with your Ethereum account:\n%s\n\nSign in with your wallet.\n\nURI: http://127.0.0.1:8080\nVersion: 1\nChain ID: 1\nNonce: %s\nIssued At: 2026-01-22T08:36:58Z\nExpiration Time: 2026-01-22T08:41:58Z"

func newSignRecover(o options) (*signRecover, error) {
	n := o.keys
	if n > 1024 {
		n = 1024
	}
	keys, err := generateKeys(n, "")
	if err != nil {
		return nil, err
	}
	sr := &signRecover{keys: keys}
	for i, k := range keys {
		sr.msgs = append(sr.msgs, []byte(fmt.Sprintf(sampleMessage, k.addr, fmt.Sprintf("benchNonce%014d", i))))
	}
	return sr, nil
}

func (sr *signRecover) do(_ context.Context, _ int, i int64) (int, bool) {
	j := i % int64(len(sr.keys))
	k, msg := sr.keys[j], sr.msgs[j]
	hash := hashEIP191(msg)
	sig, err := crypto.Sign(hash.Bytes(), k.priv)
	if err != nil {
		return 0, false
	}
	// The server's side: hash again (it has only the text) and recover.
	got, err := recoverAddress(hashEIP191(msg), sig)
	if err != nil || got != k.address { // bytes, as the server compares: no EIP-55 text
		return 0, false
	}
	return 200, true
}

// ---------------------------------------------------------------- bare Gin

// serveBareGin is ratio 2's denominator: gin.New() (no middleware at all)
// with one GET route answering a constant JSON body.
func serveBareGin(addr string, stdout io.Writer) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || !isLoopbackHost(host) {
		return fmt.Errorf("-serve-bare %q: want a loopback host:port", addr)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	h := func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }
	r.GET("/bare", h)
	r.GET("/healthz", h)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
