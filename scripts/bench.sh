#!/usr/bin/env bash
# scripts/bench.sh — bounded, loopback-only load benchmarks of walletauth.
#
# Builds the server and the load tool (tools/loadtest, a module of its own), then for each backend
# (SQLite + in-process store; PostgreSQL + Redis on a fresh bench database)
# starts the server with every rate limit off, runs each scenario for DUR
# at concurrency C, samples the server's peak RSS (VmHWM, reset before each
# scenario through /proc/PID/clear_refs) and prints a table. The two ratios
# of issue 7 are computed from figures of the same run:
#   ratio 1 = wallet logins/s ÷ sign+recover ops/s (same cores, same -c):
#             burst (first sign-ins, new users only, on the fresh
#             database), first (the wallet scenario's first pass), returning
#   ratio 2 = GET /v1/users/me req/s ÷ bare Gin constant req/s (same -c)
#
# Everything talks to 127.0.0.1 only; every load run is bounded by -n and
# -duration. Only the database $BENCH_DB (default walletauth_bench) is
# dropped and re-created, and only Redis db $REDIS_DB (default 5) is flushed.
#
# Settings (environment): DUR=10s C=64 KEYS=10000 PORT=18080 BARE_PORT=18081
#   BACKENDS="sqlite pg" LOGLEVELS="info warn" OUT=/tmp/walletauth-bench
#   PG_ADMIN=postgres://postgres@127.0.0.1:5432 BENCH_DB=walletauth_bench
#   REDIS_HOST=127.0.0.1 REDIS_PORT=6379 REDIS_DB=5 EMAIL=1 (0 skips email)
#   REPEAT=1 (measure each ratio's pair this many times, alternating, and
#   report the median: on a shared machine one pair is noisy)
#   BURST=20000 (first sign-ins, one new key each, on the fresh database;
#   0 skips) BURST_DUR=120s (the burst's time bound)
#   USERS=100000 (then sign in this many more new users and run me and
#   wallet-returning again, as *-after-users: the token check and the peak
#   RSS once the caches have seen that many users; 0 skips) USERS_DUR=10m
#   SERVER_ENV="" (extra environment of the server, e.g. "GOGC=200
#   GOMEMLIMIT=96MiB"; recorded in the header)
#   PG_STATS=0 (1: run the pg backend on a throwaway cluster of its own,
#   initdb'd under $OUT/pgdata on PG_STATS_PORT=5433 with pg_stat_statements,
#   and report the statements and PostgreSQL time per sign-in of the burst,
#   the users' sign-ins and wallet-returning; stopped and removed at exit)
#   SMOKE=0 (1: a CI smoke of well under a minute: DUR=2s C=16 REPEAT=1
#   EMAIL=0 BURST=2000 BURST_DUR=5s USERS=0 LOGLEVELS=info BACKENDS="sqlite pg" KEYS=2000,
#   no healthz/challenge/wallet-first rows (wallet-returning signs the
#   burst's users in again), OUT a throwaway directory under /tmp removed at
#   exit; each of them can still be set)
set -euo pipefail

SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
	: "${DUR:=2s}" "${C:=16}" "${REPEAT:=1}" "${EMAIL:=0}" "${BURST:=2000}" "${BURST_DUR:=5s}" "${USERS:=0}" "${KEYS:=2000}"
	: "${LOGLEVELS:=info}" "${BACKENDS:=sqlite pg}"
	[ -n "${OUT:-}" ] || SMOKE_TMP_OUT=1 # a throwaway OUT, made below
fi
DUR=${DUR:-10s}
C=${C:-64}
KEYS=${KEYS:-10000}
N=${N:-2000000}
PORT=${PORT:-18080}
BARE_PORT=${BARE_PORT:-18081}
BACKENDS=${BACKENDS:-"sqlite pg"}
LOGLEVELS=${LOGLEVELS:-"info warn"}
OUT=${OUT:-/tmp/walletauth-bench}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432}
BENCH_DB=${BENCH_DB:-walletauth_bench}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_DB=${REDIS_DB:-5}
EMAIL=${EMAIL:-1}
REPEAT=${REPEAT:-1} # ratio pairs measured this many times (alternating); the median is reported
BURST=${BURST:-20000}
BURST_DUR=${BURST_DUR:-120s}
USERS=${USERS:-100000}
USERS_DUR=${USERS_DUR:-10m}
SERVER_ENV=${SERVER_ENV:-}
PG_STATS=${PG_STATS:-0}
PG_STATS_PORT=${PG_STATS_PORT:-5433}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
read -r -a SERVER_ENV_ARR <<< "$SERVER_ENV"
for e in "${SERVER_ENV_ARR[@]}"; do
	case "$e" in [A-Za-z_]*=*) ;; *) echo "SERVER_ENV: $e is not NAME=value" >&2; exit 2 ;; esac
done
for t in jq bc curl column psql createdb redis-cli; do
	command -v "$t" > /dev/null || { echo "bench.sh needs $t" >&2; exit 2; }
done

case "$BENCH_DB" in test|postgres|template0|template1) echo "refusing BENCH_DB=$BENCH_DB" >&2; exit 2 ;; esac
case "$REDIS_HOST" in 127.*|localhost|::1) ;; *) echo "REDIS_HOST must be loopback" >&2; exit 2 ;; esac
case "$PG_ADMIN" in postgres://*@127.*|postgres://*@localhost*|postgres://127.*) ;; *) echo "PG_ADMIN must be loopback" >&2; exit 2 ;; esac
if [ "$PG_STATS" = 1 ]; then
	# Never the main cluster: a port of its own, refused when anything answers there.
	case "$PG_STATS_PORT" in 5432|'') echo "PG_STATS_PORT must not be the main cluster's (5432)" >&2; exit 2 ;; esac
	if pg_isready -h 127.0.0.1 -p "$PG_STATS_PORT" -q 2>/dev/null; then
		echo "PG_STATS_PORT=$PG_STATS_PORT: a PostgreSQL already answers there; refusing to use it" >&2
		exit 2
	fi
	PG_ADMIN=postgres://postgres@127.0.0.1:$PG_STATS_PORT
fi

SERVER_PID=""
BARE_PID=""
PGDATA_STATS=""
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() { # idempotent: runs on a signal and again at exit
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
	[ -n "$BARE_PID" ] && kill "$BARE_PID" 2>/dev/null && wait "$BARE_PID" 2>/dev/null || true
	SERVER_PID="" BARE_PID=""
	if [ -n "$PGDATA_STATS" ]; then
		as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_STATS" -m fast -w stop > /dev/null 2>&1 || true
		rm -rf "$PGDATA_STATS"
		PGDATA_STATS=""
	fi
	[ -n "${SMOKE_RM_OUT:-}" ] && rm -rf "$SMOKE_RM_OUT"
	return 0
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM # stop here, not after the handler
if [ -n "${SMOKE_TMP_OUT:-}" ]; then
	OUT=$(mktemp -d /tmp/walletauth-bench-smoke.XXXXXX)
	chmod 755 "$OUT" # PG_STATS: the postgres user reaches $OUT/pgdata
	SMOKE_RM_OUT=$OUT
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT/bin" "$OUT/results"
cd "$ROOT"
echo "== build ($(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty'))"
go build -tags nomsgpack -o "$OUT/bin/walletauth" ./cmd/walletauth # as make build
(cd tools/loadtest && go build -o "$OUT/bin/walletauth-load" .)
LOAD="$OUT/bin/walletauth-load"
BUILD_S=$SECONDS
TARGET="http://127.0.0.1:$PORT"

# port_free port — refuses a port something already answers on: the
# scenarios would measure that instead.
port_free() {
	if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" 2>/dev/null; then
		echo "port $1 is in use (set PORT / BARE_PORT)" >&2
		exit 2
	fi
}

wait_up() { # url
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "server at $1 did not come up" >&2
	return 1
}

# CPU ticks (user+system, 1/CLK_TCK s) of one process, and of every
# PostgreSQL backend serving $BENCH_DB, and of redis-server (shared with
# whatever else uses that Redis: an upper bound).
ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
PG_PARENT="" # with PG_STATS, the throwaway postmaster: only its backends count
pg_ticks() {
	local t=0 p
	for p in $(pgrep ${PG_PARENT:+-P "$PG_PARENT"} -f "postgres: .* $BENCH_DB " 2>/dev/null); do t=$((t + $(ticks "$p"))); done
	echo "$t"
}
redis_ticks() {
	local t=0 p
	for p in $(pgrep -x redis-server 2>/dev/null); do t=$((t + $(ticks "$p"))); done
	echo "$t"
}
HZ=$(getconf CLK_TCK)

anon_peak() { # pid file: writes the highest RssAnon (kB) seen until killed
	local p=0 a
	echo 0 > "$2"
	while kill -0 "$1" 2>/dev/null; do
		a=$(awk '/^RssAnon/ {print $2}' "/proc/$1/status" 2>/dev/null); a=${a:-0}
		[ "$a" -gt "$p" ] && { p=$a; echo "$p" > "$2"; }
		sleep 0.05
	done
}
reset_hwm() { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || true; }
hwm_mib() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }

ROWS=()
# run_scn label pid scenario [args…] — runs one scenario, records a row.
run_scn() {
	local label=$1 pid=$2 scn=$3; shift 3
	local f="$OUT/results/$label.json"
	[ -n "$pid" ] && reset_hwm "$pid"
	local load1; load1=$(cut -d' ' -f1 /proc/loadavg)
	local s0=0 p0 r0; [ -n "$pid" ] && s0=$(ticks "$pid"); p0=$(pg_ticks); r0=$(redis_ticks)
	# The peak of the anonymous part of RSS (the process's own memory; VmHWM
	# also counts the binary's file pages), sampled every 50 ms.
	local sampler=""; [ -n "$pid" ] && { anon_peak "$pid" "$OUT/results/$label.anon" & sampler=$!; }
	"$LOAD" -scenario "$scn" -c "$C" -n "$N" -duration "$DUR" -json "$@" > "$f"
	local s1=0 p1 r1; [ -n "$pid" ] && s1=$(ticks "$pid"); p1=$(pg_ticks); r1=$(redis_ticks)
	[ -n "$sampler" ] && { kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true; }
	local rss="-"; [ -n "$pid" ] && rss="$(hwm_mib "$pid")/$(awk '{printf "%.0f", $1/1024}' "$OUT/results/$label.anon" 2>/dev/null || echo '?')"
	# CPU µs per operation: server, PostgreSQL backends, Redis, load client.
	local cpu
	cpu=$(jq -r --argjson hz "$HZ" --argjson s "$((s1 - s0))" --argjson p "$((p1 - p0))" --argjson r "$((r1 - r0))" \
		'def per(t): if .ops > 0 then (t * 1e6 / $hz / .ops | floor) else 0 end;
		 "srv=\(per($s)) pg=\(per($p)) redis=\(per($r)) client=\(.client_cpu_us_per_op|floor)"' "$f")
	echo "$cpu" > "$OUT/results/$label.cpu"
	local row
	row=$(jq -r --arg l "$label" --arg rss "$rss" --arg la "$load1" --arg cpu "$cpu" \
		'[$l, (.ok_per_sec|floor), (.p50_ms|tostring), (.p99_ms|tostring), (.max_ms|tostring),
		  (.errors_by_status|to_entries|map("\(.key)=\(.value)")|join(",")|if . == "" then "-" else . end),
		  ((.extra // {})|to_entries|map("\(.key)=\(.value)")|join(",")|if . == "" then "-" else . end), $rss, $la, $cpu] | @tsv' "$f")
	ROWS+=("$row")
	printf '%s\n' "$row" | awk -F'\t' '{printf "  %-34s %9s ok/s  p50 %8sms  p99 %8sms  max %8sms  rss/anon %7s MiB  load %s  cpu-us/op %s  %s %s\n", $1,$2,$3,$4,$5,$8,$9,$10,$6,$7}'
}
okps() { jq -r '.ok_per_sec' "$OUT/results/$1.json"; }
srv_us() { sed -n 's/^srv=\([0-9]*\) .*/\1/p' "$OUT/results/$1.cpu"; } # the server's CPU µs per op of a row

# start_server label env… — starts walletauth serve with the given env.
start_server() {
	local label=$1; shift
	env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
		WALLETAUTH_HTTP_ADDR="127.0.0.1:$PORT" \
		WALLETAUTH_WALLET_PER_IP=0 WALLETAUTH_WALLET_PER_ADDRESS=0 WALLETAUTH_CHALLENGE_PER_IP=0 WALLETAUTH_MEMORY_CHALLENGES_MAX=0 \
		WALLETAUTH_EMAIL_FAIL_PER_IP=0 WALLETAUTH_EMAIL_FAIL_PER_ACCOUNT=0 \
		WALLETAUTH_SIGNUP_PER_IP=0 WALLETAUTH_PARTNER_RATE=0 \
		"$@" "${SERVER_ENV_ARR[@]}" "$OUT/bin/walletauth" serve > "$OUT/$label.stdout" 2> "$OUT/$label.stderr" &
	SERVER_PID=$!
	wait_up "$TARGET/healthz"
	kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited: $(tail -3 "$OUT/$label.stderr")" >&2; exit 1; }
}
stop_server() {
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
}

# ---- PG_STATS: a throwaway cluster with pg_stat_statements
# start_stats_cluster initdb's $OUT/pgdata (trust auth, loopback TCP only,
# its socket in its own directory) with the main cluster's CI settings
# (autovacuum off, fsync on, initdb's defaults otherwise) and
# pg_stat_statements tracking nested statements too (track=all; utility
# statements such as BEGIN and COMMIT are tracked: track_utility's default).
start_stats_cluster() {
	PGDATA_STATS="$OUT/pgdata"
	rm -rf "$PGDATA_STATS"
	mkdir -p "$PGDATA_STATS"
	: > "$OUT/pgdata.log"
	[ "$(id -u)" = 0 ] && chown postgres "$PGDATA_STATS" "$OUT/pgdata.log"
	as_postgres "$PG_BIN/initdb" -D "$PGDATA_STATS" -U postgres --auth=trust -E UTF8 --no-sync > "$OUT/pgdata-initdb.log"
	cat >> "$PGDATA_STATS/postgresql.conf" <<-CONF
		# scripts/bench.sh PG_STATS=1
		listen_addresses = '127.0.0.1'
		port = $PG_STATS_PORT
		unix_socket_directories = '$PGDATA_STATS'
		autovacuum = off
		fsync = on
		shared_preload_libraries = 'pg_stat_statements'
		pg_stat_statements.track = all
		pg_stat_statements.max = 10000
	CONF
	as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_STATS" -l "$OUT/pgdata.log" -w start > /dev/null
	PG_PARENT=$(head -1 "$PGDATA_STATS/postmaster.pid")
	echo "== PG_STATS: throwaway cluster $PGDATA_STATS on 127.0.0.1:$PG_STATS_PORT (postmaster $PG_PARENT), pg_stat_statements track=all"
}
pgq() { psql "$PG_ADMIN/$BENCH_DB?sslmode=disable" -X -qAt -v ON_ERROR_STOP=1 "$@"; }
pgss_on() { [ "$PG_STATS" = 1 ] && [ "$be" = pg ]; }
pgss_reset() { pgss_on && pgq -c 'SELECT pg_stat_statements_reset()' > /dev/null; return 0; }
# pgss_report label — the statements run in the bench database since
# pgss_reset, divided by the sign-ins (ok operations) of $label's run. Two
# counts: the statements the server sent (pg_stat_statements' toplevel:
# BEGIN and COMMIT included, and the server's background work in that
# window, e.g. the webhook poller: a few calls) and the statements PostgreSQL
# ran inside them (toplevel = false: the foreign-key checks of the INSERTs,
# "SELECT 1 FROM ONLY users … FOR KEY SHARE", which the server's statement
# tests do not see). The time is the top-level statements' total_exec_time
# (it includes their nested statements; wall time in the executor, not
# CPU: CPU is the pg= column of the scenario's row). All rows, by calls, go
# to results/$label-statements.tsv.
pgss_report() {
	pgss_on || return 0
	local label=$1 n f="$OUT/results/$1-statements.tsv"
	n=$(jq -r '.ok' "$OUT/results/$label.json")
	[ "$n" -gt 0 ] || { echo "  $label: no sign-in, no statements per sign-in"; return 0; }
	{
		printf 'toplevel\tcalls\tcalls_per_signin\ttotal_exec_ms\texec_us_per_signin\trows\tquery\n'
		pgq -F $'\t' -c "SELECT toplevel, calls, round(calls::numeric / $n, 3), round(total_exec_time::numeric, 1),
			round((total_exec_time * 1000 / $n)::numeric, 1), rows, regexp_replace(query, '\\s+', ' ', 'g')
			FROM pg_stat_statements
			WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
			  AND query NOT LIKE '%pg_stat_statements%'
			ORDER BY calls DESC, total_exec_time DESC"
	} > "$f"
	local sum
	sum=$(awk -F'\t' -v n="$n" '
		NR > 1 && $1 == "t" { c += $2; t += $4; q = tolower($7); if (q == "begin" || q == "commit" || q == "rollback") bc += $2 }
		NR > 1 && $1 == "f" { nested += $2 }
		END { printf "%.2f statements sent per sign-in (%.2f of them BEGIN/COMMIT), %.2f nested (FK checks, triggers), %.0f µs PostgreSQL exec time per sign-in; %d sent, %d nested, %.0f ms, %d sign-ins",
			c / n, bc / n, nested / n, t * 1000 / n, c, nested, t, n }' "$f")
	echo "  $label: $sum"
	awk -F'\t' 'NR > 1 && NR <= 13 {q = $7; if (length(q) > 100) q = substr(q, 1, 97) "..."; printf "    %8s calls %7s/sign-in %7s µs/sign-in  %s%s\n", $2, $3, $5, ($1 == "f" ? "(nested) " : ""), q}' "$f"
	STATS_ROWS+=("$(printf '%s-statements\t%s' "$label" "$sum")")
}
STATS_ROWS=()

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== DUR=$DUR C=$C KEYS=$KEYS BURST=$BURST USERS=$USERS REPEAT=$REPEAT PG_STATS=$PG_STATS SMOKE=$SMOKE SERVER_ENV=\"$SERVER_ENV\""
[ "$PG_STATS" = 1 ] && start_stats_cluster
port_free "$PORT"
port_free "$BARE_PORT"
case " $BACKENDS " in *" pg "*)
	psql "$PG_ADMIN/postgres?sslmode=disable" -X -qAtc 'SELECT 1' > /dev/null \
		|| { echo "PostgreSQL at $PG_ADMIN does not answer" >&2; exit 2; }
	[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] \
		|| { echo "Redis at $REDIS_HOST:$REDIS_PORT does not answer" >&2; exit 2; }
esac

# The bare Gin reference server, up for the whole run.
"$LOAD" -serve-bare "127.0.0.1:$BARE_PORT" > "$OUT/bare.stdout" 2>&1 &
BARE_PID=$!
wait_up "http://127.0.0.1:$BARE_PORT/bare"

for be in $BACKENDS; do
	for ll in $LOGLEVELS; do
		tag="$be-log$ll"
		case $be in
		sqlite)
			rm -rf "$OUT/sqlite" && mkdir -p "$OUT/sqlite"
			BE_ENV=(WALLETAUTH_DATABASE_URL="sqlite://$OUT/sqlite/bench.db") ;;
		pg)
			dropdb --if-exists --maintenance-db="$PG_ADMIN/postgres?sslmode=disable" "$BENCH_DB"
			createdb --maintenance-db="$PG_ADMIN/postgres?sslmode=disable" "$BENCH_DB"
			[ "$PG_STATS" = 1 ] && pgq -c 'CREATE EXTENSION pg_stat_statements'
			redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB" flushdb > /dev/null
			# PostgreSQL needs the server key (a throwaway one for the bench).
			BE_ENV=(WALLETAUTH_DATABASE_URL="$PG_ADMIN/$BENCH_DB?sslmode=disable"
				WALLETAUTH_SECRET_KEY=d2FsbGV0YXV0aC10ZXN0LXNlcnZlci1rZXktMzJieXQ=
				WALLETAUTH_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT/$REDIS_DB") ;;
		*) echo "unknown backend $be" >&2; exit 2 ;;
		esac
		echo "== $tag"
		# References first, in this same run, right before what they divide.
		run_scn "$tag-signrecover" "" signrecover -keys 1024
		run_scn "$tag-bare-gin" "$BARE_PID" bare -target "http://127.0.0.1:$BARE_PORT" -path /bare
		start_server "$tag" "${BE_ENV[@]}" WALLETAUTH_LOG_LEVEL="$ll"
		seed="bench-$tag-$$"
		# First sign-ins on the fresh database: every operation a new user.
		if [ "$BURST" -gt 0 ]; then
			pgss_reset
			run_scn "$tag-burst" "$SERVER_PID" burst -target "$TARGET" -keys "$BURST" -duration "$BURST_DUR" -seed "$seed-burst"
			pgss_report "$tag-burst"
		fi
		[ "$SMOKE" = 1 ] || run_scn "$tag-healthz" "$SERVER_PID" bare -target "$TARGET" -path /healthz
		run_scn "$tag-me" "$SERVER_PID" me -target "$TARGET"
		run_scn "$tag-me-access" "$SERVER_PID" me-access -target "$TARGET"
		# Challenges nobody signs stay in the store for their lifetime (without
		# Redis: in the server's heap), so this row is bounded in count, not
		# only in time, lest its leftovers weigh on every later row.
		[ "$SMOKE" = 1 ] || run_scn "$tag-challenge" "$SERVER_PID" challenge -target "$TARGET" -keys "$KEYS" -n $((KEYS * 4))
		if [ "$SMOKE" = 1 ] && [ "$BURST" -gt 0 ]; then
			# The smoke's returning users are the burst's (its keys come from
			# a seed too): no wallet-first row, ratio1's first is the burst's.
			seed="$seed-burst"
			created=$(jq -r '.extra.created' "$OUT/results/$tag-burst.json")
			have_first=0
		else
			have_first=1
			run_scn "$tag-wallet-first" "$SERVER_PID" wallet -target "$TARGET" -keys "$KEYS" -seed "$seed"
			created=$(jq -r '.extra.created' "$OUT/results/$tag-wallet-first.json")
		fi
		[ "$created" -gt 0 ] || created=1
		# The same addresses again: every login a returning one.
		pgss_reset
		run_scn "$tag-wallet-returning" "$SERVER_PID" wallet -target "$TARGET" -keys "$created" -seed "$seed"
		pgss_report "$tag-wallet-returning"
		if [ "$EMAIL" = 1 ]; then
			run_scn "$tag-email" "$SERVER_PID" email -target "$TARGET"
		fi
		r1f=- r1b=- # burst: first sign-ins only, on the fresh database
		[ "$have_first" = 1 ] && r1f=$(printf '%.3f' "$(echo "$(okps "$tag-wallet-first") / $(okps "$tag-signrecover")" | bc -l)")
		[ "$BURST" -gt 0 ] && r1b=$(printf '%.3f' "$(echo "$(okps "$tag-burst") / $(okps "$tag-signrecover")" | bc -l)")
		R1=("$(echo "$(okps "$tag-wallet-returning") / $(okps "$tag-signrecover")" | bc -l)")
		R2=("$(echo "$(okps "$tag-me") / $(okps "$tag-bare-gin")" | bc -l)")
		R3=("$(echo "$(okps "$tag-me-access") / $(okps "$tag-bare-gin")" | bc -l)")
		for rep in $(seq 2 "$REPEAT"); do
			run_scn "$tag-signrecover-r$rep" "" signrecover -keys 1024
			run_scn "$tag-wallet-returning-r$rep" "$SERVER_PID" wallet -target "$TARGET" -keys "$created" -seed "$seed"
			run_scn "$tag-bare-gin-r$rep" "$BARE_PID" bare -target "http://127.0.0.1:$BARE_PORT" -path /bare
			run_scn "$tag-me-r$rep" "$SERVER_PID" me -target "$TARGET"
			run_scn "$tag-me-access-r$rep" "$SERVER_PID" me-access -target "$TARGET"
			R1+=("$(echo "$(okps "$tag-wallet-returning-r$rep") / $(okps "$tag-signrecover-r$rep")" | bc -l)")
			R2+=("$(echo "$(okps "$tag-me-r$rep") / $(okps "$tag-bare-gin-r$rep")" | bc -l)")
			R3+=("$(echo "$(okps "$tag-me-access-r$rep") / $(okps "$tag-bare-gin-r$rep")" | bc -l)")
		done
		# Many users later: is the token check as fast, and how much memory
		# do the caches hold?
		if [ "$USERS" -gt 0 ]; then
			pgss_reset
			run_scn "$tag-users" "$SERVER_PID" burst -target "$TARGET" -keys "$USERS" -duration "$USERS_DUR"
			pgss_report "$tag-users"
			echo "  $(jq -r '.extra.created' "$OUT/results/$tag-users.json") more users signed in; server RSS now $(awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' "/proc/$SERVER_PID/status")"
			run_scn "$tag-me-after-users" "$SERVER_PID" me -target "$TARGET"
			run_scn "$tag-wallet-returning-after-users" "$SERVER_PID" wallet -target "$TARGET" -keys "$created" -seed "$seed"
			ma=$(echo "$(okps "$tag-me-after-users") / $(okps "$tag-me")" | bc -l)
			wa=$(echo "$(okps "$tag-wallet-returning-after-users") / $(okps "$tag-wallet-returning")" | bc -l)
			printf '  after %s users ÷ fresh: ok/s me %.3f, wallet-returning %.3f; server CPU µs/op me %s → %s, wallet-returning %s → %s\n' \
				"$USERS" "$ma" "$wa" "$(srv_us "$tag-me")" "$(srv_us "$tag-me-after-users")" "$(srv_us "$tag-wallet-returning")" "$(srv_us "$tag-wallet-returning-after-users")"
			ROWS+=("$(printf '%s-me-after-users÷me\t%.3f' "$tag" "$ma")" "$(printf '%s-wallet-returning-after-users÷wallet-returning\t%.3f' "$tag" "$wa")")
		fi
		echo "  server log: $(wc -l < "$OUT/$tag.stderr") lines, $(du -h "$OUT/$tag.stderr" | cut -f1)"
		stop_server
		median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
		all() { printf '%.3f ' "$@"; }
		r1r=$(median "${R1[@]}")
		r2=$(median "${R2[@]}")
		r3=$(median "${R3[@]}")
		printf '  ratio1 (wallet logins/s ÷ sign+recover/s): burst %s, first %s, returning median %.3f [%s]   ratio2 (me ÷ bare gin): median %.3f [%s], with the access token %.3f [%s]\n' \
			"$r1b" "$r1f" "$r1r" "$(all "${R1[@]}")" "$r2" "$(all "${R2[@]}")" "$r3" "$(all "${R3[@]}")"
		[ "$BURST" -gt 0 ] && ROWS+=("$(printf '%s-ratio1-burst\t%s' "$tag" "$r1b")")
		[ "$have_first" = 1 ] && ROWS+=("$(printf '%s-ratio1-first\t%s' "$tag" "$r1f")")
		ROWS+=("$(printf '%s-ratio1-returning\t%.3f\t[%s]' "$tag" "$r1r" "$(all "${R1[@]}")")" "$(printf '%s-ratio2\t%.3f\t[%s]' "$tag" "$r2" "$(all "${R2[@]}")")" "$(printf '%s-ratio2-access\t%.3f\t[%s]' "$tag" "$r3" "$(all "${R3[@]}")")")
	done
done

echo
echo "== table (ok/s, p50 ms, p99 ms, max ms, errors, extra, peak RSS/peak anonymous RSS MiB, load1 at start, CPU µs per op)"
printf '%s\n' "${ROWS[@]}" | column -t -s $'\t'
if [ ${#STATS_ROWS[@]} -gt 0 ]; then
	echo "== statements per sign-in (pg_stat_statements; results/*-statements.tsv)"
	printf '%s\n' "${STATS_ROWS[@]}" | column -t -s $'\t'
fi
echo "== done in ${SECONDS}s (build ${BUILD_S}s), load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${SMOKE_RM_OUT:-}" ]; then
	echo "results: $OUT (throwaway, removed at exit)"
else
	echo "results: $OUT/results/*.json"
fi
