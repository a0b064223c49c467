#!/usr/bin/env bash
# Webhook fan-out: 1,000 events to 10 local endpoints, on SQLite and on PostgreSQL.
#
#   bench/webhooks.sh [events=1000] [endpoints=10]
#
# orderly runs in the benchmark's process (API and worker) with local receivers; it places one
# order per event over HTTP and reports deliveries/s and the time from each event's commit
# (the `timestamp` in its body) to its arrival at a receiver.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000}
endpoints=${2:-10}
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}

cargo build --release --quiet --bin orderly
bin="${CARGO_TARGET_DIR:-target}/release/orderly"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$bin" bench webhooks --database-url "sqlite://$dir/bench.db" --events "$events" \
  --endpoints "$endpoints" 2>/dev/null
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS orderly_bench_webhooks" \
  -c "CREATE DATABASE orderly_bench_webhooks" 2>/dev/null
"$bin" bench webhooks --database-url "$pg/orderly_bench_webhooks" --events "$events" \
  --endpoints "$endpoints" 2>/dev/null
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS orderly_bench_webhooks" 2>/dev/null
