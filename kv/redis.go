package kv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the key prefix OpenRedis uses.
const DefaultPrefix = "walletauth:"

// Timeouts given to a client when its URL does not set them, so that an
// unreachable Redis answers within about two seconds rather than hanging.
const (
	defaultDialTimeout   = time.Second
	defaultDialerRetries = 1 // dial attempts per command attempt
	defaultIOTimeout     = time.Second
	defaultMaxRetries    = 1
	defaultPoolTimeout   = time.Second
)

// Lua scripts, each on a single key so they also run on a cluster.
const (
	// incrScript returns {count, pttl}; it sets the expiry whenever the key
	// has none, so a counter never outlives its window.
	incrScript = `
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}`
	// countScript returns {value, pttl}, or {0, 0} when the key is absent.
	countScript = `
local v = redis.call('GET', KEYS[1])
if not v then return {0, 0} end
return {v, redis.call('PTTL', KEYS[1])}`
	// compareAndDeleteScript returns 1 when it deleted the key.
	compareAndDeleteScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`
	// compareAndDeleteListScript deletes the list KEYS[1] if it is [ARGV[1]]
	// (LLEN of a plain key is a WRONGTYPE error).
	compareAndDeleteListScript = `
if redis.call('LLEN', KEYS[1]) == 1 and redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`
	// pushScript prepends ARGV[1], keeps the newest ARGV[2] values and sets
	// the expiry to ARGV[3] ms (none for 0).
	pushScript = `
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if tonumber(ARGV[3]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('PERSIST', KEYS[1])
end
return 1`
)

// Redis is a Store on Redis (a single node, a cluster or a Sentinel-managed
// primary), shared by every instance. Every key is prefixed. A missing key is
// ErrNotFound; every other failure wraps ErrUnavailable and keeps its cause.
// It needs Redis 6.2 or later (GETDEL).
type Redis struct {
	client           redis.UniversalClient
	ap               *redis.AutoPipeliner // client's, deferred face; nil: commands go one by one
	prefix           string
	incr             script
	count            script
	compareAndDelete script
	deleteList       script
	push             script
}

// script is a Lua script run by EVALSHA, loaded by EVAL when Redis does not
// have it yet.
type script struct{ src, sha string }

func newScript(src string) script { return script{src: src, sha: redis.NewScript(src).Hash()} }

var _ Store = (*Redis)(nil)

// NewRedis returns a Store on client, prefixing every key with prefix (e.g.
// DefaultPrefix, or a unique one per test). The Store owns client: Close
// closes it.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	// Commands of concurrent requests go out together (go-redis's
	// auto-pipelining): one write and one read for a batch instead of a
	// round trip each, which is most of what a command costs on a loaded
	// host (see BENCHMARKS.md). do keeps each caller's deadline.
	ap, err := client.AsyncAutoPipeline()
	if err != nil {
		ap = nil
	}
	return &Redis{
		client:           client,
		ap:               ap,
		prefix:           prefix,
		incr:             newScript(incrScript),
		count:            newScript(countScript),
		compareAndDelete: newScript(compareAndDeleteScript),
		deleteList:       newScript(compareAndDeleteListScript),
		push:             newScript(pushScript),
	}
}

// OpenRedis connects to the Redis that rawURL names (see NewRedisClient),
// checks that it answers, and returns a Store with DefaultPrefix. An invalid
// URL is a plain error; a Redis that does not answer is an error wrapping
// ErrUnavailable (the client is closed then). To start while Redis is down,
// use NewRedisClient and NewRedis, whose calls fail with ErrUnavailable until
// Redis is back.
func OpenRedis(ctx context.Context, rawURL string) (*Redis, error) {
	client, err := NewRedisClient(rawURL)
	if err != nil {
		return nil, err
	}
	r := NewRedis(client, DefaultPrefix)
	if err := r.Ping(ctx); err != nil {
		_ = client.Close() // the ping error is the one that matters
		return nil, fmt.Errorf("kv: open redis: %w", err)
	}
	return r, nil
}

// NewRedisClient returns a client (it does not connect yet) for one of these
// URL forms:
//
//	redis://[user:password@]host[:port][/db][?option=value&…]       one node
//	rediss://…                                                      the same over TLS
//	unix://[user:password@]/path/to/redis.sock[?db=N&…]              one node, Unix socket
//	redis+cluster://[user:password@]host:port[,host:port…][?…]      Redis Cluster, seed nodes
//	rediss+cluster://…                                              the same over TLS
//	redis+sentinel://[user:password@]host:port[,host:port…][/db]?master_name=NAME[&…]
//	rediss+sentinel://…                                             the same over TLS
//
// Examples: redis://127.0.0.1:6379/0, rediss://:secret@cache.internal:6380,
// redis+cluster://10.0.0.1:7000,10.0.0.2:7001,
// redis+sentinel://:secret@10.0.0.1:26379,10.0.0.2:26379/0?master_name=mymaster.
//
// The port defaults to 6379. For Sentinel the hosts are the sentinels; the
// user and password authenticate to them and, unless the query gives
// username= and password= for the data nodes, to the primary as well.
// Options are go-redis's, in snake case (dial_timeout=2s, read_timeout=1s,
// pool_size=20, max_retries=2, skip_verify=true, …; a bare number is seconds);
// unknown options are an error. Unless the URL sets them, dial, read, write
// and pool timeouts are 1 s with one retry, and a context deadline bounds
// every call.
func NewRedisClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, redactURLError(err)
	}
	base, mode, _ := strings.Cut(u.Scheme, "+")
	switch {
	case mode == "" && strings.Contains(u.Host, ","):
		return nil, fmt.Errorf("several hosts need the %s+cluster:// or %s+sentinel:// scheme", base, base)
	case mode == "":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, err
		}
		applyDefaults(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.DialerRetries, &o.MaxRetries)
		o.ContextTimeoutEnabled = true
		return redis.NewClient(o), nil
	case base != "redis" && base != "rediss":
		return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
	case mode == "cluster":
		if u.Path != "" && u.Path != "/" && u.Path != "/0" {
			return nil, errors.New("a cluster has only database 0")
		}
		u.Path = ""
		o, err := redis.ParseClusterURL(seedURL(u, base))
		if err != nil {
			return nil, err
		}
		applyDefaults(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.DialerRetries, &o.MaxRetries)
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), nil
	case mode == "sentinel":
		o, err := redis.ParseFailoverURL(seedURL(u, base))
		if err != nil {
			return nil, err
		}
		if o.MasterName == "" {
			return nil, errors.New("sentinel needs ?master_name=NAME")
		}
		if o.Username == "" && o.Password == "" {
			o.Username, o.Password = o.SentinelUsername, o.SentinelPassword
		}
		applyDefaults(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.DialerRetries, &o.MaxRetries)
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), nil
	default:
		return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
}

// seedURL rewrites a comma-separated host list into go-redis's form: the
// first host in the authority, the others as addr= parameters.
func seedURL(u *url.URL, scheme string) string {
	hosts := strings.Split(u.Host, ",")
	v := *u
	v.Scheme = scheme
	v.Host = hosts[0]
	q := u.Query()
	for _, h := range hosts[1:] {
		if h != "" {
			q.Add("addr", h)
		}
	}
	v.RawQuery = q.Encode()
	return v.String()
}

// redactURLError drops the URL (and any password in it) from a parse error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func applyDefaults(dial, read, write, pool *time.Duration, dialerRetries, maxRetries *int) {
	if *dial == 0 {
		*dial = defaultDialTimeout
	}
	if *dialerRetries == 0 {
		*dialerRetries = defaultDialerRetries
	}
	if *read == 0 {
		*read = defaultIOTimeout
	}
	if *write == 0 {
		*write = defaultIOTimeout
	}
	if *pool == 0 {
		*pool = defaultPoolTimeout
	}
	if *maxRetries == 0 {
		*maxRetries = defaultMaxRetries
	}
}

func (r *Redis) key(k string) string { return r.prefix + k }

// do runs cmds, batched with other callers' commands, and waits for their
// replies or for ctx; the error is the first command's that failed. A
// queued command no longer sees its caller's context (its batch runs on the
// pipeliner's), so the wait is what keeps a deadline; a command given up
// on may still run later, and every caller treats that outcome as unknown
// (a nonce consumed stays consumed, an extra count errs towards limiting),
// as with a reply lost on the wire.
func (r *Redis) do(ctx context.Context, cmds ...redis.Cmder) error {
	if r.ap == nil {
		if len(cmds) == 1 {
			return r.client.Process(ctx, cmds[0])
		}
		_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, c := range cmds {
				_ = p.Process(ctx, c)
			}
			return nil
		})
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(cmds) == 1 {
		return r.ap.Submit(ctx, cmds[0]).WaitContext(ctx)
	}
	futures := make([]redis.AutoFuture, len(cmds))
	for i, c := range cmds {
		futures[i] = r.ap.Submit(ctx, c)
	}
	for _, f := range futures {
		if err := f.WaitContext(ctx); err != nil {
			return err
		}
	}
	return nil
}

// eval runs s on keys and args: EVALSHA, then EVAL if Redis lacks it.
// before are sent ahead of it in the same round trip (and not again).
func (r *Redis) eval(ctx context.Context, s script, keys []string, args []any, before ...redis.Cmder) (*redis.Cmd, error) {
	run := func(verb, body string, before []redis.Cmder) (*redis.Cmd, error) {
		a := make([]any, 0, 3+len(keys)+len(args))
		a = append(a, verb, body, len(keys))
		for _, k := range keys {
			a = append(a, k)
		}
		a = append(a, args...)
		cmd := redis.NewCmd(ctx, a...)
		// The script last: do answers the first error, so a NOSCRIPT
		// means every command before it has its reply.
		return cmd, r.do(ctx, append(before, cmd)...)
	}
	cmd, err := run("evalsha", s.sha, before)
	if err != nil && cmd.Err() != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		return run("eval", s.src, nil)
	}
	return cmd, err
}

// setArgs is SET key value [PX ms] (at least 1 ms for a positive ttl).
func (r *Redis) setArgs(key string, value []byte, ttl time.Duration) []any {
	args := make([]any, 3, 6)
	args[0], args[1], args[2] = "set", r.key(key), value
	if ttl > 0 {
		args = append(args, "px", max(ttl.Milliseconds(), 1))
	}
	return args
}

func (r *Redis) fail(op string, err error) error {
	if errors.Is(err, redis.Nil) {
		return ErrNotFound
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && strings.Contains(rerr.Error(), "WRONGTYPE") {
		return fmt.Errorf("kv: %s: %w", op, errWrongType)
	}
	return unavailable(op, err)
}

// Set implements Store. A negative ttl is an error.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("kv: set: %w: %v", errInvalidTTL, ttl)
	}
	if err := r.do(ctx, redis.NewStatusCmd(ctx, r.setArgs(key, value, ttl)...)); err != nil {
		return r.fail("set", err)
	}
	return nil
}

// SetMany implements Store: the SETs are queued together, so they share a
// pipeline (keys in different cluster slots may go to different nodes).
func (r *Redis) SetMany(ctx context.Context, ttl time.Duration, entries ...Entry) error {
	if ttl < 0 {
		return fmt.Errorf("kv: set: %w: %v", errInvalidTTL, ttl)
	}
	cmds := make([]redis.Cmder, len(entries))
	for i, e := range entries {
		cmds[i] = redis.NewStatusCmd(ctx, r.setArgs(e.Key, e.Value, ttl)...)
	}
	if err := r.do(ctx, cmds...); err != nil {
		return r.fail("set", err)
	}
	return nil
}

// Get implements Store; ErrNotFound when absent or expired.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	cmd := redis.NewStringCmd(ctx, "get", r.key(key))
	if err := r.do(ctx, cmd); err != nil {
		return nil, r.fail("get", err)
	}
	return cmd.Bytes()
}

// SetNX implements Store. A negative ttl is an error.
func (r *Redis) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if ttl < 0 {
		return false, fmt.Errorf("kv: setnx: %w: %v", errInvalidTTL, ttl)
	}
	cmd := redis.NewBoolCmd(ctx, append(r.setArgs(key, value, ttl), "nx")...)
	err := r.do(ctx, cmd)
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, r.fail("setnx", err)
	}
	return cmd.Val(), nil
}

// Consume implements Store with GETDEL; ErrNotFound when absent, expired or
// already consumed.
func (r *Redis) Consume(ctx context.Context, key string) ([]byte, error) {
	cmd := redis.NewStringCmd(ctx, "getdel", r.key(key))
	if err := r.do(ctx, cmd); err != nil {
		return nil, r.fail("consume", err)
	}
	return cmd.Bytes()
}

// CompareAndDelete implements Store with a Lua script.
func (r *Redis) CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error) {
	cmd, err := r.eval(ctx, r.compareAndDelete, []string{r.key(key)}, []any{value})
	if err != nil {
		return false, r.fail("compare and delete", err)
	}
	n, err := cmd.Int64()
	if err != nil {
		return false, unavailable("compare and delete", err)
	}
	return n == 1, nil
}

// Delete implements Store. Keys are deleted one command each, in one
// pipeline, so that keys in different cluster slots can go together.
func (r *Redis) Delete(ctx context.Context, keys ...string) error {
	switch len(keys) {
	case 0:
		return nil
	case 1:
		if err := r.client.Del(ctx, r.key(keys[0])).Err(); err != nil {
			return r.fail("delete", err)
		}
		return nil
	}
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, r.key(k))
		}
		return nil
	})
	if err != nil {
		return r.fail("delete", err)
	}
	return nil
}

// Incr implements Store with a Lua script (INCR, then PEXPIRE when the key
// has no expiry), so the expiry is never lost. A non-positive window is an
// error; so is a key holding something other than a decimal integer.
func (r *Redis) Incr(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	if window <= 0 {
		return 0, 0, fmt.Errorf("kv: incr: %w: window %v", errInvalidTTL, window)
	}
	ms := max(window.Milliseconds(), 1)
	cmd, err := r.eval(ctx, r.incr, []string{r.key(key)}, []any{ms})
	var res []int64
	if err == nil {
		res, err = cmd.Int64Slice()
	}
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) && strings.Contains(rerr.Error(), "not an integer") {
			return 0, 0, fmt.Errorf("kv: incr: %w", errNotInteger)
		}
		return 0, 0, r.fail("incr", err)
	}
	if len(res) != 2 {
		return 0, 0, unavailable("incr", fmt.Errorf("unexpected reply %v", res))
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

// Count implements Store with a Lua script (GET and PTTL together); 0, 0 when
// absent.
func (r *Redis) Count(ctx context.Context, key string) (int64, time.Duration, error) {
	cmd, err := r.eval(ctx, r.count, []string{r.key(key)}, nil)
	var res []any
	if err == nil {
		res, err = cmd.Slice()
	}
	if err != nil {
		return 0, 0, r.fail("count", err)
	}
	if len(res) != 2 {
		return 0, 0, unavailable("count", fmt.Errorf("unexpected reply %v", res))
	}
	var n int64
	switch v := res[0].(type) {
	case int64:
		n = v
	case string:
		if n, err = strconv.ParseInt(v, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("kv: count: %w", errNotInteger)
		}
	default:
		return 0, 0, unavailable("count", fmt.Errorf("unexpected reply %v", res))
	}
	ms, ok := res[1].(int64)
	if !ok {
		return 0, 0, unavailable("count", fmt.Errorf("unexpected reply %v", res))
	}
	return n, time.Duration(max(ms, 0)) * time.Millisecond, nil
}

// PushList implements Store with a Lua script on the list's key (LPUSH,
// LTRIM, PEXPIRE), its entries' SETs queued ahead of it in one round trip.
// A keep under 1, a negative ttl and a key holding a plain value are errors.
func (r *Redis) PushList(ctx context.Context, key string, value []byte, keep int, ttl time.Duration, entries ...Entry) error {
	if err := pushArgs(keep, ttl); err != nil {
		return err
	}
	sets := make([]redis.Cmder, len(entries))
	for i, e := range entries {
		sets[i] = redis.NewStatusCmd(ctx, r.setArgs(e.Key, e.Value, ttl)...)
	}
	var ms int64
	if ttl > 0 {
		ms = max(ttl.Milliseconds(), 1)
	}
	if _, err := r.eval(ctx, r.push, []string{r.key(key)}, []any{value, keep, ms}, sets...); err != nil {
		return r.fail("push", err)
	}
	return nil
}

// CompareAndDeleteList implements Store with a Lua script.
func (r *Redis) CompareAndDeleteList(ctx context.Context, key string, value []byte) (bool, error) {
	cmd, err := r.eval(ctx, r.deleteList, []string{r.key(key)}, []any{value})
	if err != nil {
		return false, r.fail("compare and delete list", err)
	}
	n, err := cmd.Int64()
	if err != nil {
		return false, unavailable("compare and delete list", err)
	}
	return n == 1, nil
}

// List implements Store with LRANGE; none when absent.
func (r *Redis) List(ctx context.Context, key string) ([][]byte, error) {
	cmd := redis.NewStringSliceCmd(ctx, "lrange", r.key(key), 0, -1)
	if err := r.do(ctx, cmd); err != nil {
		return nil, r.fail("list", err)
	}
	vals := cmd.Val()
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, nil
}

// Ping implements Store.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return r.fail("ping", err)
	}
	return nil
}

// Close closes the client; later calls fail with ErrUnavailable.
func (r *Redis) Close() error {
	if err := r.client.Close(); err != nil {
		return fmt.Errorf("kv: close: %w", err)
	}
	return nil
}
