package main

// What the round-2 additions cost a returning wallet sign-in (issues 17
// and 19, BENCHMARKS.md "Cost of the round-2 additions"): the real wiring
// of bench_profile_test.go with each addition removed in turn, by the
// toggles of round2Remove alone (one line each, so they follow the wiring
// when it changes):
//
//	go test -c -o /tmp/walletauth.test ./cmd/walletauth/
//	for i in $(seq 10); do /tmp/walletauth.test -test.run '^$' -test.bench 'Round2' -test.benchmem; done > round2.txt
//	benchstat -col /variant -row /c round2.txt
//
// SQLite by default; PostgreSQL + Redis with WALLETAUTH_BENCH_DATABASE_URL
// and WALLETAUTH_BENCH_REDIS_URL, as for the other Profile benchmarks.

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/tokens"
	"github.com/walletauth/walletauth/users"
)

// round2Variant is a wiring with some of the round-2 additions removed.
type round2Variant struct {
	name                       string
	noActivity, noAccess, noTx bool
}

var round2Variants = []round2Variant{
	{name: "all"},
	{name: "no-activity", noActivity: true},
	{name: "no-access-token", noAccess: true},
	{name: "no-outbox", noTx: true},
	{name: "none", noActivity: true, noAccess: true, noTx: true},
}

// round2Remove takes v's additions out of a's wiring, before serving:
//   - the activity record: the sessions' activity log (the login.succeeded
//     event of every login) and the users store's event hook (wallet
//     changes; a sign-in has none);
//   - the ES256 access token: every login answers accessToken, minted once
//     by the real issuer, so the answer keeps its bytes and only the
//     signature and claims of each login are gone (the access token cannot
//     be configured off);
//   - the outbox: the users store's transaction hook (the partner
//     webhooks' Outbox.Enqueue).
func round2Remove(a *app, v round2Variant, accessToken string) {
	if v.noActivity {
		a.sessions.UseActivity(nil)
		a.users.SetEventHook(nil)
	}
	if v.noAccess {
		a.sessions.UseAccessTokens(fixedAccessToken{accessToken}, a.users)
	}
	if v.noTx {
		a.users.SetTxHook(nil)
	}
}

// fixedAccessToken answers every Mint with the same token.
type fixedAccessToken struct{ token string }

func (f fixedAccessToken) Mint(tokens.Subject) (string, int64, error) { return f.token, 900, nil }
func (fixedAccessToken) Parse(string) (*tokens.Claims, error) {
	return nil, errors.New("bench: access tokens are not checked here")
}

// round2App is the real wiring with 256 users signed in twice (caches
// warm), then v's additions removed.
func round2App(tb testing.TB, v round2Variant, logLevel string) (*app, []benchProfKey, func() map[string]int) {
	a, counts := benchProfApp(tb, logLevel)
	keys := benchProfKeys(tb, 256)
	var access string
	for _, k := range keys {
		_, access, _ = benchProfLoginTokens(tb, a.router, k)
	}
	if !strings.HasPrefix(access, "ey") {
		tb.Fatalf("no access token in the login answer: %q", access)
	}
	round2Remove(a, v, access)
	for _, k := range keys {
		if _, created := benchProfLogin(tb, a.router, k); created {
			tb.Fatal("a returning sign-in created its user")
		}
	}
	return a, keys, counts
}

// BenchmarkProfileWalletReturningRound2: BenchmarkProfileWalletReturning
// for each variant. On PostgreSQL it also reports the CPU of the
// database's backends serving this benchmark (pg-cpu-ns/op, from
// /proc/PID/schedstat; the server must be on this machine).
func BenchmarkProfileWalletReturningRound2(b *testing.B) {
	// c: the sign-ins in flight. 2 goroutines on 2 cores, as
	// BenchmarkProfileWalletReturning; 64, scripts/bench.sh's load, where
	// concurrent session rows share an INSERT and a commit.
	for _, c := range []int{2, 64} {
		b.Run("c="+strconv.Itoa(c), func(b *testing.B) {
			for _, v := range round2Variants {
				b.Run("variant="+v.name, func(b *testing.B) { benchRound2(b, v, c) })
			}
		})
	}
}

func benchRound2(b *testing.B, v round2Variant, c int) {
	a, keys, _ := round2App(b, v, "info")
	pg := a.db.Dialect == storage.Postgres
	var pg0 int64
	if pg {
		pg0 = pgBackendsCPU(b, a.db)
	}
	var i atomic.Int64
	b.SetParallelism(max(1, c/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchProfLogin(b, a.router, keys[i.Add(1)%int64(len(keys))])
		}
	})
	b.StopTimer()
	if pg {
		b.ReportMetric(float64(pgBackendsCPU(b, a.db)-pg0)/float64(b.N), "pg-cpu-ns/op")
	}
}

// pgBackendsCPU is the CPU time (ns) the PostgreSQL backends connected to
// db's database have used: db's pool alone when the database is the
// benchmark's own.
func pgBackendsCPU(tb testing.TB, db *storage.DB) int64 {
	var pids []int
	if err := db.Raw(`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`).Scan(&pids).Error; err != nil {
		tb.Fatal(err)
	}
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/schedstat")
		if err != nil {
			tb.Fatalf("PostgreSQL backend %d: %v (is the server on this machine?)", pid, err)
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			tb.Fatalf("PostgreSQL backend %d: schedstat %q", pid, b)
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			tb.Fatal(err)
		}
		sum += ns
	}
	return sum
}

// TestRound2StatementsPerSignIn counts the statements of returning wallet
// sign-ins with each round-2 addition on and off (GORM callbacks, as
// TestStatementsPerSignIn; on PostgreSQL the session INSERT goes around
// GORM and is not counted) and the events written, and holds them to what
// BENCHMARKS.md reports: the activity record is one event row per sign-in,
// written by the session INSERT on PostgreSQL and by one more INSERT in its
// transaction on SQLite; the access token and the outbox write nothing.
// -v logs them.
func TestRound2StatementsPerSignIn(t *testing.T) {
	const n = 20
	perSignIn := map[string]map[string]int{}
	events := map[string]int64{}
	var dialect storage.Dialect
	for _, v := range round2Variants {
		a, keys, counts := round2App(t, v, "warn")
		dialect = a.db.Dialect
		var ids []string // the users signing in (the database may be shared)
		for _, k := range keys[:n] {
			u, err := a.users.GetByWallet(t.Context(), crypto.PubkeyToAddress(k.priv.PublicKey).Bytes())
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, u.ID)
		}
		var before, after int64
		if err := a.db.Table("activity_events").Where("user_id IN ?", ids).Count(&before).Error; err != nil {
			t.Fatal(err)
		}
		counts() // from here on
		for _, k := range keys[:n] {
			benchProfLogin(t, a.router, k)
		}
		c := counts()
		// The signing keys' reload runs on its own schedule in the
		// background (tokens.Keys.Run), not per sign-in: it may fall in
		// the window of any variant.
		for k := range c {
			if strings.Contains(k, "signing_keys") {
				delete(c, k)
			}
		}
		if err := a.db.Table("activity_events").Where("user_id IN ?", ids).Count(&after).Error; err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v and %d events over %d returning sign-ins", v.name, c, after-before, n)
		perSignIn[v.name], events[v.name] = c, after-before
	}
	all := perSignIn["all"]
	for _, name := range []string{"no-access-token", "no-outbox"} {
		if !equalCounts(perSignIn[name], all) || events[name] != n {
			t.Errorf("%s: %v statements, %d events; want those of all on: %v, %d", name, perSignIn[name], events[name], all, n)
		}
	}
	// Without the activity record: no event, and on SQLite one INSERT fewer
	// per sign-in (on PostgreSQL the session INSERT carries the event).
	want := map[string]int{}
	for k, c := range all {
		want[k] = c
	}
	if dialect == storage.SQLite {
		want["insert:activity_events"] -= n
	}
	if want["insert:activity_events"] == 0 {
		delete(want, "insert:activity_events")
	}
	for _, name := range []string{"no-activity", "none"} {
		if !equalCounts(perSignIn[name], want) || events[name] != 0 {
			t.Errorf("%s: %v statements, %d events; want %v, none", name, perSignIn[name], events[name], want)
		}
	}
	if events["all"] != n {
		t.Errorf("all on: %d events for %d sign-ins", events["all"], n)
	}
}

// TestWalletSignInTellsNoOutbox: a wallet sign-in, first or returning,
// changes no user a partner could hear of, so the users store's
// transaction hook (the webhooks outbox) is never called.
func TestWalletSignInTellsNoOutbox(t *testing.T) {
	a := benchProfAppT(t, &statementHook{})
	var calls atomic.Int64
	a.users.SetTxHook(func(*gorm.DB, users.Change) error { calls.Add(1); return nil })
	k := benchProfKeysT(t, 1)[0]
	if _, created := benchProfLoginT(t, a.router, k); !created {
		t.Fatal("the first sign-in did not create the user")
	}
	benchProfLoginT(t, a.router, k)
	if n := calls.Load(); n != 0 {
		t.Fatalf("the transaction hook was called %d times by a first and a returning wallet sign-in, want 0", n)
	}
	// The hook is live: a change of the user reaches it.
	u, err := a.users.GetByWallet(t.Context(), crypto.PubkeyToAddress(k.priv.PublicKey).Bytes())
	if err != nil {
		t.Fatal(err)
	}
	name := "round2"
	if _, err := a.users.Update(t.Context(), u.ID, users.Patch{Username: &name}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() == 0 {
		t.Fatal("the transaction hook was not called by a username change")
	}
}

// countStatements counts the statements db runs from now on, by kind and
// table ("insert:activity_events", "row:INSERT INTO sessions"); the
// returned function reads and resets the counts. It registers GORM
// callbacks, so it must run before db is used concurrently
// (appOptions.beforeWire).
func countStatements(db *storage.DB) func() map[string]int {
	var mu sync.Mutex
	counts := map[string]int{}
	count := func(kind string) func(*gorm.DB) {
		return func(db *gorm.DB) {
			what := db.Statement.Table
			if what == "" { // raw SQL: its first words
				what = db.Statement.SQL.String()
				if len(what) > 24 {
					what = what[:24]
				}
			}
			mu.Lock()
			counts[kind+":"+what]++
			mu.Unlock()
		}
	}
	var h statementHook
	h.register(db)
	h.set(func(kind string, d *gorm.DB) { count(kind)(d) })
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		c := counts
		counts = map[string]int{}
		return c
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, n := range a {
		if b[k] != n {
			return false
		}
	}
	return true
}
