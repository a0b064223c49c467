#!/usr/bin/env bash
# Job queue throughput against graphile-worker on the same PostgreSQL, in one invocation.
#
#   bench/queue.sh [jobs=30000] [concurrency=10]
#
# Each side gets a fresh database, enqueues `jobs` no-op jobs in bulk, then drains them with
# one worker at `concurrency`. graphile-worker runs tuned (local queue of 500, batched
# completion) and with its defaults; orderly runs with its defaults (local queue of 500,
# batched completion always on). orderly also reports the idle enqueue-to-start latency.
# Needs Node.js; installs graphile-worker into bench/graphile/node_modules (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-30000}
concurrency=${2:-10}
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}

cargo build --release --quiet --bin orderly
bin="${CARGO_TARGET_DIR:-target}/release/orderly"
(cd bench/graphile && npm ci --no-audit --no-fund --silent)

fresh() { psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" 2>/dev/null; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$1'])" "$2"; }

fresh orderly_bench_queue
orderly=$("$bin" bench queue --database-url "$pg/orderly_bench_queue" --jobs "$jobs" \
  --concurrency "$concurrency" --json)
fresh orderly_bench_graphile
tuned=$(DATABASE_URL="$pg/orderly_bench_graphile" node bench/graphile/bench.js "$jobs" "$concurrency" 1 | tail -n1)
fresh orderly_bench_graphile
defaults=$(DATABASE_URL="$pg/orderly_bench_graphile" node bench/graphile/bench.js "$jobs" "$concurrency" 0 | tail -n1)

echo "orderly:                  $orderly"
echo "graphile-worker tuned:    $tuned"
echo "graphile-worker defaults: $defaults"
ratio=$(python3 -c "print(round($(field drain_per_s "$orderly") / $(field drain_per_s "$tuned"), 2))")
echo
echo "drain: orderly / graphile-worker tuned = ${ratio}x"
echo "idle enqueue-to-start: p50 $(field latency_p50_ms "$orderly") ms, p99 $(field latency_p99_ms "$orderly") ms"
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS orderly_bench_queue" -c "DROP DATABASE IF EXISTS orderly_bench_graphile" 2>/dev/null
