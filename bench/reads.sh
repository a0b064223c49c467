#!/usr/bin/env bash
# Cached product reads against a bare axum server, in one invocation.
#
#   bench/reads.sh [seconds=10] [connections=64]
#
# wrk -t2 -c<connections> against: the bare server (bench/hello, the ceiling); orderly's
# GET /v1/products/{id} with the cache on (auth, request ids and request logging on, logs to
# a file); the same with request logging off (RUST_LOG=warn); and uncached (cache off) on
# SQLite and PostgreSQL. Installs wrk from Debian if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }; }

cargo build --release --quiet -p orderly -p bench-hello
target="${CARGO_TARGET_DIR:-target}/release"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Prints "requests/s p99" from a wrk run; fails on any answer that is not 2xx (a 429 from the
# rate limiter, say, is not a read).
measure() {
  wrk -t2 -c"$connections" -d"${seconds}s" --latency "$@" >"$work/wrk.out"
  if grep -q "Non-2xx" "$work/wrk.out"; then echo "non-2xx answers:" >&2; cat "$work/wrk.out" >&2; exit 1; fi
  local rps p99
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.out")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.out")
  echo "$rps $p99"
}

# Starts orderly on $1 with extra environment $2…; sets url and key.
start_orderly() {
  local db=$1; shift
  ORDERLY_DATABASE_URL=$db "$target/orderly" migrate 2>/dev/null
  key=$(ORDERLY_DATABASE_URL=$db "$target/orderly" keys create --role admin --name bench 2>/dev/null)
  # Rate limits off: one key reading as fast as it can is what they are there to stop.
  env ORDERLY_DATABASE_URL="$db" ORDERLY_LISTEN=127.0.0.1:18080 ORDERLY_LOG_FORMAT=json \
    ORDERLY_RATE_LIMITS__ENABLED=false "$@" \
    "$target/orderly" api >"$work/orderly.log" 2>&1 &
  pids+=($!)
  until curl -sf -o /dev/null http://127.0.0.1:18080/healthz; do sleep 0.05; done
  local id
  id=$(curl -sf http://127.0.0.1:18080/v1/products -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' \
    -d '{"sku": "MUG-BLUE", "name": "Blue mug", "price": 1250, "stock": 40}' |
    sed -E 's/^\{"id":"([^"]+)".*/\1/')
  url="http://127.0.0.1:18080/v1/products/$id"
}

stop_orderly() { kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }

"$target/hello" 18090 & pids+=($!)
sleep 0.3
read -r hello_rps hello_p99 < <(measure http://127.0.0.1:18090/)
kill "${pids[-1]}"; unset 'pids[-1]'

start_orderly "sqlite://$work/reads.db"
read -r cached_rps cached_p99 < <(measure -H "Authorization: Bearer $key" "$url")
stop_orderly

start_orderly "sqlite://$work/reads-quiet.db" RUST_LOG=warn
read -r quiet_rps quiet_p99 < <(measure -H "Authorization: Bearer $key" "$url")
stop_orderly

start_orderly "sqlite://$work/reads-uncached.db" ORDERLY_CACHE__ENABLED=false
read -r sqlite_rps sqlite_p99 < <(measure -H "Authorization: Bearer $key" "$url")
stop_orderly

psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS orderly_bench_reads" -c "CREATE DATABASE orderly_bench_reads" 2>/dev/null
start_orderly "$pg/orderly_bench_reads" ORDERLY_CACHE__ENABLED=false
read -r pg_rps pg_p99 < <(measure -H "Authorization: Bearer $key" "$url")
stop_orderly
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS orderly_bench_reads" 2>/dev/null

printf '%-46s %12s %10s\n' "server" "requests/s" "p99"
printf '%-46s %12s %10s\n' "bare axum hello (ceiling)" "$hello_rps" "$hello_p99"
printf '%-46s %12s %10s\n' "orderly, cached, request logs on" "$cached_rps" "$cached_p99"
printf '%-46s %12s %10s\n' "orderly, cached, request logs off" "$quiet_rps" "$quiet_p99"
printf '%-46s %12s %10s\n' "orderly, uncached, SQLite" "$sqlite_rps" "$sqlite_p99"
printf '%-46s %12s %10s\n' "orderly, uncached, PostgreSQL" "$pg_rps" "$pg_p99"
python3 -c "print('cached / ceiling: %.2fx requests/s' % ($cached_rps / $hello_rps))"
