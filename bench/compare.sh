#!/usr/bin/env bash
# Two orderly binaries side by side, in one session, on the three benchmarks a refactoring
# must not slow: orders (the shared yardstick, `run` role, receipts included), the queue's drain
# (`orderly bench queue`) and cached product reads (wrk against GET /v1/products/{id}). Each
# round runs both binaries back to back, alternating which goes first, so the machine's drift
# falls on both alike.
#
#   bench/compare.sh BEFORE_BIN AFTER_BIN [rounds=3]
#
# Needs PostgreSQL on 127.0.0.1:5432 (ORDERLY_BENCH_POSTGRES overrides); installs wrk.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[[ $# -ge 2 ]] || { echo "usage: bench/compare.sh BEFORE_BIN AFTER_BIN [rounds]" >&2; exit 2; }
before=$1 after=$2 rounds=${3:-3}
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
work=$(mktemp -d)
server=
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The yardstick's orders/s and its ratio to pgbench, one round.
orders() {
  ORDERLY_BIN=$1 bench/yardstick.sh run 20 1 2>/dev/null |
    grep -E 'orderly run:|pgbench:|ratio:' | sed -E 's/^ +//' | tr '\n' ' '
}

# Jobs drained per second: 50,000 no-op jobs, concurrency 10, on a fresh database.
queue() {
  psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS orderly_compare_queue" \
    -c "CREATE DATABASE orderly_compare_queue" >/dev/null 2>&1
  "$1" bench queue --database-url "$pg/orderly_compare_queue" --jobs 50000 --concurrency 10 \
    --latency-samples 50 --json 2>/dev/null
}

# Cached reads: requests/s and p99 of wrk -t2 -c64 for 10 s, on SQLite, rate limits off.
reads() {
  local bin=$1 db="sqlite://$work/reads-$RANDOM.db" key id
  ORDERLY_DATABASE_URL=$db "$bin" migrate 2>/dev/null
  key=$(ORDERLY_DATABASE_URL=$db "$bin" keys create --role admin --name bench 2>/dev/null)
  env ORDERLY_DATABASE_URL="$db" ORDERLY_LISTEN=127.0.0.1:18081 ORDERLY_LOG_FORMAT=json \
    ORDERLY_RATE_LIMITS__ENABLED=false "$bin" api >"$work/orderly.log" 2>&1 &
  server=$!
  until curl -sf -o /dev/null http://127.0.0.1:18081/healthz; do sleep 0.05; done
  id=$(curl -sf http://127.0.0.1:18081/v1/products -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' \
    -d '{"sku": "MUG-BLUE", "name": "Blue mug", "price": 1250, "stock": 40}' |
    sed -E 's/^\{"id":"([^"]+)".*/\1/')
  wrk -t2 -c64 -d10s --latency -H "Authorization: Bearer $key" \
    "http://127.0.0.1:18081/v1/products/$id" >"$work/wrk.out"
  kill "$server"; wait "$server" 2>/dev/null || true; server=
  echo "$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.out") req/s, p99 $(awk '$1 == "99%" {print $2}' "$work/wrk.out")"
}

for round in $(seq 1 "$rounds"); do
  if (( round % 2 )); then order=(before after); else order=(after before); fi
  for which in "${order[@]}"; do
    bin=$before; [[ $which == after ]] && bin=$after
    echo "round $round $which: orders: $(orders "$bin")"
    echo "round $round $which: queue:  $(queue "$bin")"
    echo "round $round $which: reads:  $(reads "$bin")"
  done
done
psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS orderly_compare_queue" >/dev/null 2>&1 || true
