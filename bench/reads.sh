#!/usr/bin/env bash
# Cached product reads against a bare axum server, in one invocation.
#
#   bench/reads.sh [seconds=10] [connections=64] [rounds=3]
#
# Each round, wrk -t2 -c<connections> against: the bare server (bench/hello, the ceiling);
# orderly's GET /v1/products/{id} with the cache on, as it runs by default: auth, request ids,
# request logging (to a file) and the rate limiter, whose quota for the key is set out of the
# benchmark's reach (its cost is part of the real path; a 429 would void the run); the same with
# request logging off (RUST_LOG=warn), the limiter still on. Then once, uncached (cache off) on SQLite and PostgreSQL. Prints each round,
# then each figure as a range over the rounds with its ratio to the ceiling of the same round.
# Installs wrk from Debian if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}
rounds=${3:-3}
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

# Starts orderly on $1 with extra environment $2…; sets url and key. The admin key's quota is
# the most a quota may be (a million a second), far above what wrk can ask.
start_orderly() {
  local db=$1; shift
  ORDERLY_DATABASE_URL=$db "$target/orderly" migrate 2>/dev/null
  key=$(ORDERLY_DATABASE_URL=$db "$target/orderly" keys create --role admin --name bench 2>/dev/null)
  env ORDERLY_DATABASE_URL="$db" ORDERLY_LISTEN=127.0.0.1:18080 ORDERLY_LOG_FORMAT=json \
    ORDERLY_RATE_LIMITS__ADMIN__RATE=1000000 ORDERLY_RATE_LIMITS__ADMIN__BURST=1000000 "$@" \
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

# Writes "requests/s p99" of orderly's cached read, started with extra environment $@, to
# $work/read (in this shell, which started the server and must wait for it to stop).
cached_read() {
  start_orderly "sqlite://$work/reads-$RANDOM.db" "$@"
  measure -H "Authorization: Bearer $key" "$url" >"$work/read"
  stop_orderly
}

results="$work/results"
for round in $(seq 1 "$rounds"); do
  "$target/hello" 18090 & pids+=($!)
  sleep 0.3
  read -r hello_rps hello_p99 < <(measure http://127.0.0.1:18090/)
  kill "${pids[-1]}"; unset 'pids[-1]'
  cached_read; read -r limited_rps limited_p99 <"$work/read"
  cached_read RUST_LOG=warn; read -r open_rps open_p99 <"$work/read"
  echo "round $round: hello $hello_rps/s p99 $hello_p99; cached, request logs on $limited_rps/s p99 $limited_p99; request logs off $open_rps/s p99 $open_p99"
  echo "$hello_rps $hello_p99 $limited_rps $limited_p99 $open_rps $open_p99" >>"$results"
done

start_orderly "sqlite://$work/reads-uncached.db" ORDERLY_CACHE__ENABLED=false
read -r sqlite_rps sqlite_p99 < <(measure -H "Authorization: Bearer $key" "$url")
stop_orderly
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS orderly_bench_reads" -c "CREATE DATABASE orderly_bench_reads" 2>/dev/null
start_orderly "$pg/orderly_bench_reads" ORDERLY_CACHE__ENABLED=false
read -r pg_rps pg_p99 < <(measure -H "Authorization: Bearer $key" "$url")
stop_orderly
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS orderly_bench_reads" 2>/dev/null
echo "uncached, one run each: SQLite $sqlite_rps/s p99 $sqlite_p99; PostgreSQL $pg_rps/s p99 $pg_p99"

# wrk prints latencies as 3.06ms, 812.00us or 1.02s.
python3 - "$results" <<'PY'
import sys
def ms(v):
    for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
rows = [l.split() for l in open(sys.argv[1])]
def span(values, fmt):
    return f"{fmt(min(values))}–{fmt(max(values))}" if len(values) > 1 else fmt(values[0])
count = lambda v: f"{v:,.0f}"
millis = lambda v: f"{v:.2f} ms"
ratio = lambda v: f"{v:.2f}x"
hello = [float(r[0]) for r in rows]
print(f"{'':34} {'requests/s':>20} {'p99':>20} {'÷ ceiling (same round)':>26}")
print(f"{'bare axum (ceiling)':34} {span(hello, count):>20} {span([ms(r[1]) for r in rows], millis):>20}")
for name, i in (("cached, request logs on", 2), ("cached, request logs off", 4)):
    rps = [float(r[i]) for r in rows]
    p99 = [ms(r[i + 1]) for r in rows]
    ratios = [float(r[i]) / float(r[0]) for r in rows]
    p99_ratios = [ms(r[i + 1]) / ms(r[1]) for r in rows]
    print(f"{name:34} {span(rps, count):>20} {span(p99, millis):>20} "
          f"{span(ratios, ratio) + ', p99 ' + span(p99_ratios, ratio):>26}")
PY
