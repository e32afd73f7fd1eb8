#!/usr/bin/env bash
# scripts/bench-gotrue.sh — walletauth side by side with supabase/auth (GoTrue):
# bounded, loopback-only, one run, one machine (issue 19's "first wallet
# sign-ins ≥ 10× supabase/auth's rate").
#
#   GOTRUE_BIN=/path/to/built/gotrue scripts/bench-gotrue.sh
#
# It neither fetches nor builds GoTrue: GOTRUE_BIN must be a GoTrue binary
# (its `migrate` and `serve` commands are used). It builds walletauth and the
# load tool (tools/loadtest) from this checkout, then:
#   - creates a throwaway PostgreSQL cluster (initdb under $OUT/pg, port
#     $PG_PORT, 127.0.0.1 only, trust auth; stopped at exit) with two
#     databases: $WA_DB for walletauth and $GT_DB for GoTrue, the latter
#     prepared as GoTrue's hack/init_postgres.sql does (roles supabase_admin
#     and supabase_auth_admin, schema auth owned by supabase_auth_admin) and
#     migrated with `$GOTRUE_BIN migrate`;
#   - starts walletauth (PostgreSQL + Redis db $REDIS_DB, flushed; every rate
#     limit off as scripts/bench.sh does) and GoTrue (Ethereum web3 sign-in on,
#     SITE_URL http://localhost:$GT_PORT, no rate limit, walletauth's pool
#     size: see gotrue_env);
#   - for each concurrency in $CS, REPEAT times, alternating walletauth then
#     GoTrue (ABAB): first sign-ins (fresh keys: a new seed each pass, at most
#     $KEYS sign-ins so that none is a repeat), returning sign-ins (the keys
#     that pass created), and the token check (walletauth GET /v1/users/me
#     with an auth token, GoTrue GET /user with its access token);
#   - samples each server's CPU per operation (/proc/PID/stat user+system
#     ticks ÷ ops), its PostgreSQL backends' CPU and statements per operation
#     (pg_stat_statements, reset for its database before each run), and its peak
#     RSS (VmHWM, reset through /proc/PID/clear_refs before each run), and
#     prints every run, then the medians and the walletauth/GoTrue ratios.
#
# A walletauth sign-in is two requests (challenge, login: a server-issued
# single-use nonce); GoTrue's is one (POST /token?grant_type=web3 with a
# message the client writes; GoTrue keeps no nonce). Rates are sign-ins/s.
#
# Settings (environment): GOTRUE_BIN (required) DUR=8s CS="16 64" REPEAT=3
#   KEYS=40000 OUT=/tmp/walletauth-bench-gotrue PG_PORT=5434 WA_PORT=18180
#   GT_PORT=18190 REDIS_HOST=127.0.0.1 REDIS_PORT=6379 REDIS_DB=7
#   LOGLEVEL=info (both servers) PGBIN=/usr/lib/postgresql/15/bin
#   WA_DB=walletauth_vs_gotrue GT_DB=gotrue_bench GT_POOL=20
set -euo pipefail

DUR=${DUR:-8s}
CS=${CS:-"16 64"}
REPEAT=${REPEAT:-3}
KEYS=${KEYS:-40000}
N=${N:-2000000}
OUT=${OUT:-/tmp/walletauth-bench-gotrue}
PG_PORT=${PG_PORT:-5434}
WA_PORT=${WA_PORT:-18180}
GT_PORT=${GT_PORT:-18190}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_DB=${REDIS_DB:-7}
LOGLEVEL=${LOGLEVEL:-info}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
WA_DB=${WA_DB:-walletauth_vs_gotrue}
GT_DB=${GT_DB:-gotrue_bench}
GT_POOL=${GT_POOL:-20} # GoTrue's PostgreSQL pool, open and idle; walletauth's default is 20

if [ -z "${GOTRUE_BIN:-}" ] || [ ! -x "$GOTRUE_BIN" ]; then
	echo "GOTRUE_BIN must name a built supabase/auth (GoTrue) binary; this script neither fetches nor builds it" >&2
	exit 2
fi
GOTRUE_BIN=$(cd "$(dirname "$GOTRUE_BIN")" && pwd)/$(basename "$GOTRUE_BIN")
case "$REDIS_HOST" in 127.*|localhost|::1) ;; *) echo "REDIS_HOST must be loopback" >&2; exit 2 ;; esac
case "$OUT" in /|/tmp|/tmp/|"$HOME"|"") echo "refusing OUT=$OUT (it is emptied)" >&2; exit 2 ;; esac
[ "$PG_PORT" = 5432 ] && { echo "PG_PORT 5432 is the machine's PostgreSQL; pick another" >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/results" "$OUT/run"
cd "$ROOT"
echo "== build ($(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty'))"
go build -tags nomsgpack -o "$OUT/bin/walletauth" ./cmd/walletauth # as make build
(cd tools/loadtest && go build -o "$OUT/bin/walletauth-load" .)
LOAD="$OUT/bin/walletauth-load"
WA="http://127.0.0.1:$WA_PORT"
GT="http://127.0.0.1:$GT_PORT"

# PostgreSQL runs as user postgres when this script runs as root.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PSQL=(psql -v ON_ERROR_STOP=1 -qtA -h 127.0.0.1 -p "$PG_PORT" -U postgres)

WA_PID=""
GT_PID=""
PG_UP=""
cleanup() {
	[ -n "$WA_PID" ] && kill "$WA_PID" 2>/dev/null && wait "$WA_PID" 2>/dev/null || true
	[ -n "$GT_PID" ] && kill "$GT_PID" 2>/dev/null && wait "$GT_PID" 2>/dev/null || true
	[ -n "$PG_UP" ] && as_pg "$PGBIN/pg_ctl" -D "$OUT/pg/data" -m fast -w stop > /dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

wait_up() { # url
	for _ in $(seq 1 200); do
		curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "server at $1 did not come up" >&2
	return 1
}

echo "== throwaway PostgreSQL on 127.0.0.1:$PG_PORT ($OUT/pg)"
mkdir -p "$OUT/pg/sock"
[ "$(id -u)" = 0 ] && chown -R postgres "$OUT/pg"
as_pg "$PGBIN/initdb" -D "$OUT/pg/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 > "$OUT/pg/initdb.log" 2>&1
as_pg "$PGBIN/pg_ctl" -D "$OUT/pg/data" -l "$OUT/pg/server.log" -w \
	-o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $OUT/pg/sock -c max_connections=300 -c shared_preload_libraries=pg_stat_statements" start > /dev/null
PG_UP=1
"${PSQL[@]}" -c "CREATE EXTENSION pg_stat_statements"
"${PSQL[@]}" -c "CREATE DATABASE $WA_DB" -c "CREATE DATABASE $GT_DB"
# GoTrue's hack/init_postgres.sql, on $GT_DB (trust auth: no password).
"${PSQL[@]}" -c "CREATE ROLE supabase_admin LOGIN CREATEROLE CREATEDB REPLICATION BYPASSRLS" \
	-c "CREATE ROLE supabase_auth_admin NOINHERIT CREATEROLE LOGIN NOREPLICATION" \
	-c "GRANT CREATE ON DATABASE $GT_DB TO supabase_auth_admin" \
	-c "ALTER ROLE supabase_auth_admin SET search_path = 'auth'"
"${PSQL[@]}" -d "$GT_DB" -c "CREATE SCHEMA IF NOT EXISTS auth AUTHORIZATION supabase_auth_admin"
redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB" flushdb > /dev/null

# gotrue_env: GoTrue's settings. No GOTRUE_RATE_LIMIT_HEADER and no
# Sb-Forwarded-For header means GoTrue applies no per-IP limit at all; the
# web3 and token limits are raised as well, so that no setting can bite.
# Its pool is given walletauth's (20 open, 20 idle): GoTrue's default idle
# pool is 0, and database/sql then opens a new PostgreSQL connection for
# every query (~40 GET /user per second here instead of ~1000).
gotrue_env=(
	GOTRUE_DB_DRIVER=postgres
	GOTRUE_DB_DATABASE_URL="postgres://supabase_auth_admin@127.0.0.1:$PG_PORT/$GT_DB?sslmode=disable"
	GOTRUE_DB_MAX_POOL_SIZE="$GT_POOL" GOTRUE_DB_MAX_IDLE_POOL_SIZE="$GT_POOL"
	GOTRUE_API_HOST=127.0.0.1 PORT="$GT_PORT"
	API_EXTERNAL_URL="http://localhost:$GT_PORT" GOTRUE_SITE_URL="http://localhost:$GT_PORT"
	GOTRUE_JWT_SECRET=throwaway-bench-jwt-secret-0123456789abcdef
	GOTRUE_EXTERNAL_WEB3_ETHEREUM_ENABLED=true
	GOTRUE_RATE_LIMIT_WEB3=1000000 GOTRUE_RATE_LIMIT_TOKEN_REFRESH=1000000
	GOTRUE_LOG_LEVEL="$LOGLEVEL"
)
echo "== GoTrue $("$GOTRUE_BIN" version 2>/dev/null || echo '?'): migrate"
(cd "$OUT/run" && env -i PATH="$PATH" HOME="$OUT/run" "${gotrue_env[@]}" "$GOTRUE_BIN" migrate > "$OUT/gotrue-migrate.log" 2>&1) || {
	tail -5 "$OUT/gotrue-migrate.log" >&2
	exit 1
}

# Both servers stay up for the whole run; the idle one waits.
env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
	WALLETAUTH_HTTP_ADDR="127.0.0.1:$WA_PORT" \
	WALLETAUTH_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/$WA_DB?sslmode=disable" \
	WALLETAUTH_SECRET_KEY=d2FsbGV0YXV0aC10ZXN0LXNlcnZlci1rZXktMzJieXQ= \
	WALLETAUTH_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT/$REDIS_DB" \
	WALLETAUTH_WALLET_PER_IP=0 WALLETAUTH_WALLET_PER_ADDRESS=0 WALLETAUTH_CHALLENGE_PER_IP=0 WALLETAUTH_MEMORY_CHALLENGES_MAX=0 \
	WALLETAUTH_EMAIL_FAIL_PER_IP=0 WALLETAUTH_EMAIL_FAIL_PER_ACCOUNT=0 \
	WALLETAUTH_SIGNUP_PER_IP=0 WALLETAUTH_PARTNER_RATE=0 \
	WALLETAUTH_LOG_LEVEL="$LOGLEVEL" \
	"$OUT/bin/walletauth" serve > "$OUT/walletauth.stdout" 2> "$OUT/walletauth.stderr" &
WA_PID=$!
# GoTrue reads a .env of its working directory: $OUT/run has none.
(cd "$OUT/run" && exec env -i PATH="$PATH" HOME="$OUT/run" "${gotrue_env[@]}" "$GOTRUE_BIN" serve) \
	> "$OUT/gotrue.stdout" 2> "$OUT/gotrue.stderr" &
GT_PID=$!
wait_up "$WA/healthz"
wait_up "$GT/health"

ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() { # db — every backend serving that database
	local t=0 p
	for p in $(pgrep -f "postgres: [^ ]+ $1 " 2>/dev/null); do t=$((t + $(ticks "$p"))); done
	echo "$t"
}
HZ=$(getconf CLK_TCK)
# Statements run in one database (BEGIN and COMMIT included), since the reset.
stmts_reset() { "${PSQL[@]}" -c "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = '$1'), 0)" > /dev/null; }
stmts() { "${PSQL[@]}" -c "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$1')"; }
reset_hwm() { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || true; }
hwm_mib() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }

RUNS="$OUT/results/runs.tsv" # c kind server rep ok/s p50 p99 srv-µs/op pg-µs/op client-µs/op rss-MiB load1 errors extra statements/op
: > "$RUNS"
# run_scn c kind server rep scenario [args…] — one bounded load run, one row.
run_scn() {
	local c=$1 kind=$2 srv=$3 rep=$4 scn=$5; shift 5
	local pid db target
	if [ "$srv" = walletauth ]; then pid=$WA_PID db=$WA_DB target=$WA; else pid=$GT_PID db=$GT_DB target=$GT; fi
	local f="$OUT/results/c$c-$kind-$srv-r$rep.json"
	reset_hwm "$pid"
	stmts_reset "$db"
	local load1; load1=$(cut -d' ' -f1 /proc/loadavg)
	local s0 p0 s1 p1
	s0=$(ticks "$pid"); p0=$(pg_ticks "$db")
	"$LOAD" -scenario "$scn" -target "$target" -c "$c" -duration "$DUR" -json "$@" > "$f" 2> "$f.stderr"
	s1=$(ticks "$pid"); p1=$(pg_ticks "$db")
	local st; st=$(stmts "$db")
	local row
	row=$(jq -r --arg c "$c" --arg k "$kind" --arg s "$srv" --arg r "$rep" --arg rss "$(hwm_mib "$pid")" --arg la "$load1" \
		--argjson hz "$HZ" --argjson st "$((s1 - s0))" --argjson pt "$((p1 - p0))" --argjson q "$st" \
		'def per(t): if .ops > 0 then (t * 1e6 / $hz / .ops | floor) else 0 end;
		 [$c, $k, $s, $r, (.ok_per_sec|floor), .p50_ms, .p99_ms, per($st), per($pt), (.client_cpu_us_per_op|floor), $rss, $la,
		  (.errors_by_status|to_entries|map("\(.key)=\(.value)")|join(",")|if . == "" then "-" else . end),
		  ((.extra // {})|to_entries|map("\(.key)=\(.value)")|join(",")|if . == "" then "-" else . end),
		  (if .ops > 0 then ($q / .ops * 10 | round / 10) else 0 end)] | @tsv' "$f")
	printf '%s\n' "$row" >> "$RUNS"
	printf '%s\n' "$row" | awk -F'\t' '{printf "  c=%-3s %-9s %-10s r%s %7s ok/s  p50 %7sms p99 %8sms  cpu-µs/op srv %5s pg %5s client %4s  stmts/op %4s  rss %4s MiB  load %5s  %s %s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$15,$11,$12,$13,$14}'
}
extra() { jq -r ".extra.$2 // 0" "$OUT/results/$1.json"; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== DUR=$DUR CS=\"$CS\" REPEAT=$REPEAT KEYS=$KEYS LOGLEVEL=$LOGLEVEL"
for c in $CS; do
	for rep in $(seq 1 "$REPEAT"); do
		echo "== c=$c pass $rep/$REPEAT"
		for srv in walletauth gotrue; do
			if [ "$srv" = walletauth ]; then scn=wallet; else scn=gotrue-web3; fi
			seed="vs-gotrue-$srv-c$c-r$rep-$$"
			# -n KEYS: no key signs in twice, every sign-in a first one.
			run_scn "$c" first "$srv" "$rep" "$scn" -keys "$KEYS" -n "$KEYS" -seed "$seed"
			created=$(extra "c$c-first-$srv-r$rep" created)
			[ "$created" -gt 0 ] || created=1
			[ "$created" -lt "$KEYS" ] || echo "  warning: $srv signed in all $KEYS keys before $DUR: raise KEYS" >&2
			echo "$c $srv $rep $seed $created" >> "$OUT/results/seeds"
		done
		for srv in walletauth gotrue; do
			if [ "$srv" = walletauth ]; then scn=wallet; else scn=gotrue-web3; fi
			read -r _ _ _ seed created < <(grep "^$c $srv $rep " "$OUT/results/seeds")
			run_scn "$c" returning "$srv" "$rep" "$scn" -keys "$created" -n "$N" -seed "$seed"
		done
		run_scn "$c" token walletauth "$rep" me -n "$N"
		run_scn "$c" token gotrue "$rep" gotrue-user -n "$N"
	done
done
echo "  logs: walletauth $(wc -l < "$OUT/walletauth.stderr") lines, gotrue $(wc -l < "$OUT/gotrue.stderr") lines"

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print 0; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
col() { # c kind server column → that column of every pass, one a line
	awk -F'\t' -v c="$1" -v k="$2" -v s="$3" -v n="$4" '$1 == c && $2 == k && $3 == s {print $n}' "$RUNS"
}
echo
echo "== medians of $REPEAT passes (ok/s = sign-ins or token checks per second; cpu = µs per operation; stmts = PostgreSQL statements per operation; rss = peak MiB, max of the passes)"
{
	printf 'c\tscenario\twalletauth ok/s\tGoTrue ok/s\tratio\tper-pass ratios\twa srv/pg cpu\tgt srv/pg cpu\twa/gt stmts\twa rss\tgt rss\terrors wa/gt\n'
	for c in $CS; do
		for kind in first returning token; do
			wa=$(col "$c" "$kind" walletauth 5 | median)
			gt=$(col "$c" "$kind" gotrue 5 | median)
			ratios=$(paste <(col "$c" "$kind" walletauth 5) <(col "$c" "$kind" gotrue 5) | awk '{printf "%s%.2f", (NR > 1 ? " " : ""), ($2 > 0 ? $1 / $2 : 0)}')
			ratio=$(awk -v a="$wa" -v b="$gt" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
			errs() { col "$c" "$kind" "$1" 13 | grep -v '^-$' | paste -sd';' | sed 's/^$/-/'; }
			printf '%s\t%s\t%s\t%s\t%s×\t[%s]\t%s/%s\t%s/%s\t%s/%s\t%s\t%s\t%s/%s\n' "$c" "$kind" "$wa" "$gt" "$ratio" "$ratios" \
				"$(col "$c" "$kind" walletauth 8 | median)" "$(col "$c" "$kind" walletauth 9 | median)" \
				"$(col "$c" "$kind" gotrue 8 | median)" "$(col "$c" "$kind" gotrue 9 | median)" \
				"$(col "$c" "$kind" walletauth 15 | median)" "$(col "$c" "$kind" gotrue 15 | median)" \
				"$(col "$c" "$kind" walletauth 11 | sort -g | tail -1)" "$(col "$c" "$kind" gotrue 11 | sort -g | tail -1)" \
				"$(errs walletauth)" "$(errs gotrue)"
		done
	done
} | column -t -s $'\t'
echo "ratio = walletauth median ÷ GoTrue median; first/returning are sign-ins (walletauth: challenge + login, GoTrue: one web3 grant)"
echo "results: $RUNS and $OUT/results/*.json; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
