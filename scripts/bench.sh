#!/usr/bin/env bash
# scripts/bench.sh — bounded, loopback-only load benchmarks of walletauth.
#
# Builds the server and the load tool (tools/loadtest, a module of its own), then for each backend
# (SQLite + in-process store; PostgreSQL + Redis on a fresh bench database)
# starts the server with every rate limit off, runs each scenario for DUR
# at concurrency C, samples the server's peak RSS (VmHWM, reset before each
# scenario through /proc/PID/clear_refs) and prints a table. The two ratios
# of issue 7 are computed from figures of the same run:
#   ratio 1 = wallet logins/s ÷ sign+recover ops/s (same cores, same -c)
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
set -euo pipefail

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

case "$BENCH_DB" in test|postgres|template0|template1) echo "refusing BENCH_DB=$BENCH_DB" >&2; exit 2 ;; esac
case "$REDIS_HOST" in 127.*|localhost|::1) ;; *) echo "REDIS_HOST must be loopback" >&2; exit 2 ;; esac
case "$PG_ADMIN" in postgres://*@127.*|postgres://*@localhost*|postgres://127.*) ;; *) echo "PG_ADMIN must be loopback" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT/bin" "$OUT/results"
cd "$ROOT"
echo "== build ($(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty'))"
go build -o "$OUT/bin/walletauth" ./cmd/walletauth
(cd tools/loadtest && go build -o "$OUT/bin/walletauth-load" .)
LOAD="$OUT/bin/walletauth-load"
TARGET="http://127.0.0.1:$PORT"

SERVER_PID=""
BARE_PID=""
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
	[ -n "$BARE_PID" ] && kill "$BARE_PID" 2>/dev/null && wait "$BARE_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

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
pg_ticks() {
	local t=0 p
	for p in $(pgrep -f "postgres: .* $BENCH_DB " 2>/dev/null); do t=$((t + $(ticks "$p"))); done
	echo "$t"
}
redis_ticks() {
	local t=0 p
	for p in $(pgrep -x redis-server 2>/dev/null); do t=$((t + $(ticks "$p"))); done
	echo "$t"
}
HZ=$(getconf CLK_TCK)

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
	"$LOAD" -scenario "$scn" -c "$C" -n "$N" -duration "$DUR" -json "$@" > "$f"
	local s1=0 p1 r1; [ -n "$pid" ] && s1=$(ticks "$pid"); p1=$(pg_ticks); r1=$(redis_ticks)
	local rss="-"; [ -n "$pid" ] && rss=$(hwm_mib "$pid")
	# CPU µs per operation: server, PostgreSQL backends, Redis, load client.
	local cpu
	cpu=$(jq -r --argjson hz "$HZ" --argjson s "$((s1 - s0))" --argjson p "$((p1 - p0))" --argjson r "$((r1 - r0))" \
		'def per(t): if .ops > 0 then (t * 1e6 / $hz / .ops | floor) else 0 end;
		 "srv=\(per($s)) pg=\(per($p)) redis=\(per($r)) client=\(.client_cpu_us_per_op|floor)"' "$f")
	local row
	row=$(jq -r --arg l "$label" --arg rss "$rss" --arg la "$load1" --arg cpu "$cpu" \
		'[$l, (.ok_per_sec|floor), (.p50_ms|tostring), (.p99_ms|tostring), (.max_ms|tostring),
		  (.errors_by_status|to_entries|map("\(.key)=\(.value)")|join(",")|if . == "" then "-" else . end),
		  ((.extra // {})|to_entries|map("\(.key)=\(.value)")|join(",")|if . == "" then "-" else . end), $rss, $la, $cpu] | @tsv' "$f")
	ROWS+=("$row")
	printf '%s\n' "$row" | awk -F'\t' '{printf "  %-34s %9s ok/s  p50 %8sms  p99 %8sms  max %8sms  rss %5s MiB  load %s  cpu-us/op %s  %s %s\n", $1,$2,$3,$4,$5,$8,$9,$10,$6,$7}'
}
okps() { jq -r '.ok_per_sec' "$OUT/results/$1.json"; }

# start_server label env… — starts walletauth serve with the given env.
start_server() {
	local label=$1; shift
	env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
		WALLETAUTH_HTTP_ADDR="127.0.0.1:$PORT" \
		WALLETAUTH_WALLET_PER_IP=0 WALLETAUTH_WALLET_PER_ADDRESS=0 WALLETAUTH_CHALLENGE_PER_IP=0 WALLETAUTH_MEMORY_CHALLENGES_MAX=0 \
		WALLETAUTH_EMAIL_FAIL_PER_IP=0 WALLETAUTH_EMAIL_FAIL_PER_ACCOUNT=0 \
		WALLETAUTH_SIGNUP_PER_IP=0 WALLETAUTH_PARTNER_RATE=0 \
		"$@" "$OUT/bin/walletauth" serve > "$OUT/$label.stdout" 2> "$OUT/$label.stderr" &
	SERVER_PID=$!
	wait_up "$TARGET/healthz"
}
stop_server() {
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== DUR=$DUR C=$C KEYS=$KEYS"

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
			dropdb --if-exists -h 127.0.0.1 -U postgres "$BENCH_DB"
			createdb -h 127.0.0.1 -U postgres "$BENCH_DB"
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
		run_scn "$tag-healthz" "$SERVER_PID" bare -target "$TARGET" -path /healthz
		run_scn "$tag-me" "$SERVER_PID" me -target "$TARGET"
		run_scn "$tag-challenge" "$SERVER_PID" challenge -target "$TARGET" -keys "$KEYS"
		seed="bench-$tag-$$"
		run_scn "$tag-wallet-first" "$SERVER_PID" wallet -target "$TARGET" -keys "$KEYS" -seed "$seed"
		created=$(jq -r '.extra.created' "$OUT/results/$tag-wallet-first.json")
		[ "$created" -gt 0 ] || created=1
		# The same addresses again: every login a returning one.
		run_scn "$tag-wallet-returning" "$SERVER_PID" wallet -target "$TARGET" -keys "$created" -seed "$seed"
		if [ "$EMAIL" = 1 ]; then
			run_scn "$tag-email" "$SERVER_PID" email -target "$TARGET"
		fi
		r1f=$(echo "$(okps "$tag-wallet-first") / $(okps "$tag-signrecover")" | bc -l)
		R1=("$(echo "$(okps "$tag-wallet-returning") / $(okps "$tag-signrecover")" | bc -l)")
		R2=("$(echo "$(okps "$tag-me") / $(okps "$tag-bare-gin")" | bc -l)")
		for rep in $(seq 2 "$REPEAT"); do
			run_scn "$tag-signrecover-r$rep" "" signrecover -keys 1024
			run_scn "$tag-wallet-returning-r$rep" "$SERVER_PID" wallet -target "$TARGET" -keys "$created" -seed "$seed"
			run_scn "$tag-bare-gin-r$rep" "$BARE_PID" bare -target "http://127.0.0.1:$BARE_PORT" -path /bare
			run_scn "$tag-me-r$rep" "$SERVER_PID" me -target "$TARGET"
			R1+=("$(echo "$(okps "$tag-wallet-returning-r$rep") / $(okps "$tag-signrecover-r$rep")" | bc -l)")
			R2+=("$(echo "$(okps "$tag-me-r$rep") / $(okps "$tag-bare-gin-r$rep")" | bc -l)")
		done
		echo "  server log: $(wc -l < "$OUT/$tag.stderr") lines, $(du -h "$OUT/$tag.stderr" | cut -f1)"
		stop_server
		median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
		all() { printf '%.3f ' "$@"; }
		r1r=$(median "${R1[@]}")
		r2=$(median "${R2[@]}")
		printf '  ratio1 (wallet logins/s ÷ sign+recover/s): first %.3f, returning median %.3f [%s]   ratio2 (me ÷ bare gin): median %.3f [%s]\n' \
			"$r1f" "$r1r" "$(all "${R1[@]}")" "$r2" "$(all "${R2[@]}")"
		ROWS+=("$(printf '%s-ratio1-first\t%.3f' "$tag" "$r1f")" "$(printf '%s-ratio1-returning\t%.3f\t[%s]' "$tag" "$r1r" "$(all "${R1[@]}")")" "$(printf '%s-ratio2\t%.3f\t[%s]' "$tag" "$r2" "$(all "${R2[@]}")")")
	done
done

echo
echo "== table (ok/s, p50 ms, p99 ms, max ms, errors, extra, peak RSS MiB, load1 at start, CPU µs per op)"
printf '%s\n' "${ROWS[@]}" | column -t -s $'\t'
echo "results: $OUT/results/*.json"
