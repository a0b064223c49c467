#!/usr/bin/env bash
# Cost as the data grows: the same measurements with 10,000, 1,000,000 and 5,000,000 orders
# already stored (with their lines, events, finished receipt jobs and a day of idempotency
# records, loaded in bulk with SQL: bench/growth/load_*.sql), on SQLite and PostgreSQL.
#
#   bench/growth.sh [orders...]        (default: 10000 1000000 5000000)
#   ORDERLY_GROWTH_BACKENDS="sqlite postgres" ORDERLY_GROWTH_SECONDS=10 bench/growth.sh 10000
#   ORDERLY_BIN=path/to/orderly bench/growth.sh …    (a build of your own; default: build release)
#
# For each backend and size, against `orderly run` (release build, scheduler off):
#   - bytes on disk per stored order (every table and index; the SQLite file);
#   - order throughput: `orderly bench orders`, 32 clients;
#   - p99 of a cached and an uncached product read, and of the listings
#     GET /v1/orders?email=, ?status=pending and GET /v1/jobs?state=discarded (wrk, 4
#     connections) — with the plan each listing gets (PostgreSQL: EXPLAIN of the prepared
#     statement after five runs, the plan orderly's connections use; SQLite: EXPLAIN QUERY PLAN);
#   - the queue's drain rate: `orderly bench queue`, 20,000 no-op jobs, concurrency 10;
#   - the `prune` chore run while orders arrive: how long it took, what it deleted, and orders/s
#     while it ran against orders/s in the seconds before (the chore deletes a day's backlog:
#     1/8 of the jobs, 1/16 of the events, the expired idempotency records).
# A results line per run goes to bench/growth/results.jsonl (not committed); plans to the work
# directory, printed at the end. Installs wrk from Debian if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
(( ${#sizes[@]} )) || sizes=(10000 1000000 5000000)
read -r -a backends <<<"${ORDERLY_GROWTH_BACKENDS:-sqlite postgres}"
seconds=${ORDERLY_GROWTH_SECONDS:-10}
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
results=${ORDERLY_GROWTH_RESULTS:-bench/growth/results.jsonl}
command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }; }

# shellcheck source=lib.sh
source bench/lib.sh
bin=$(bench_binary)
work=$(mktemp -d /var/tmp/orderly-growth.XXXXXX)
port=18090
trap stop_all EXIT

# What every orderly of the run shares: no scheduled chores (the prune is started by hand),
# no rate limit in the load's way, logs to a file.
export ORDERLY_WORKER__SCHEDULER=false ORDERLY_LOG_FORMAT=json ORDERLY_HTTP__DRAIN=0s
export ORDERLY_RATE_LIMITS__ENABLED=false
export ORDERLY_MAIL_OUTBOX="$work/outbox"

p99() { # URL: the p99 in ms of 5 s of wrk with 4 connections; fails on any non-2xx answer
  wrk -t1 -c4 -d5s --latency -H "authorization: Bearer $key" "$1" >"$work/wrk.out"
  if grep -q "Non-2xx" "$work/wrk.out"; then echo "non-2xx answers from $1:" >&2; cat "$work/wrk.out" >&2; exit 1; fi
  awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.2f", v }' "$work/wrk.out"
}

# The listings as orderly sends them (see Store::list_orders, Queue::list_jobs).
columns="id, status, email, name, note, currency, total, created_by, receipt_sent_at, created_at, updated_at"
job_columns="id, queue, kind, args, state, priority, attempt, max_attempts, run_at, locked_by, locked_until, unique_key, last_error, created_at, finished_at, trace_context"
plans() { # BACKEND URL EMAIL -> the plan of each listing
  local backend=$1 url=$2 email=$3
  if [[ $backend == postgres ]]; then
    psql -qAtX "$url" <<SQL
PREPARE by_email(uuid, text, bigint) AS SELECT $columns FROM orders WHERE id > \$1 AND email = \$2 ORDER BY id LIMIT \$3;
PREPARE by_status(uuid, text, bigint) AS SELECT $columns FROM orders WHERE id > \$1 AND status = \$2 ORDER BY id LIMIT \$3;
PREPARE discarded(bigint, bigint) AS SELECT $job_columns FROM jobs WHERE id < \$1 AND state = 'discarded' ORDER BY id DESC LIMIT \$2;
\o /dev/null
$(for _ in 1 2 3 4 5 6; do echo "EXECUTE by_email('00000000-0000-0000-0000-000000000000', '$email', 50); EXECUTE by_status('00000000-0000-0000-0000-000000000000', 'pending', 50); EXECUTE discarded(9223372036854775807, 50);"; done)
\o
\echo '-- GET /v1/orders?email=$email'
EXPLAIN (ANALYZE, COSTS OFF) EXECUTE by_email('00000000-0000-0000-0000-000000000000', '$email', 50);
\echo '-- GET /v1/orders?status=pending'
EXPLAIN (ANALYZE, COSTS OFF) EXECUTE by_status('00000000-0000-0000-0000-000000000000', 'pending', 50);
\echo '-- GET /v1/jobs?state=discarded'
EXPLAIN (ANALYZE, COSTS OFF) EXECUTE discarded(9223372036854775807, 50);
SQL
  else
    local file=${url#sqlite://}
    echo "-- GET /v1/orders?email=$email"
    sqlite3 "$file" "EXPLAIN QUERY PLAN SELECT $columns FROM orders WHERE id > x'00' AND email = '$email' ORDER BY id LIMIT 50"
    echo "-- GET /v1/orders?status=pending"
    sqlite3 "$file" "EXPLAIN QUERY PLAN SELECT $columns FROM orders WHERE id > x'00' AND status = 'pending' ORDER BY id LIMIT 50"
    echo "-- GET /v1/jobs?state=discarded"
    sqlite3 "$file" "EXPLAIN QUERY PLAN SELECT $job_columns FROM jobs WHERE id < 9223372036854775807 AND state = 'discarded' ORDER BY id DESC LIMIT 50"
  fi
}

bytes_per_order() { # BACKEND URL
  if [[ $1 == postgres ]]; then
    sql "$2" "SELECT (SELECT sum(pg_total_relation_size(t)) FROM unnest(ARRAY['orders', 'order_lines', 'events', 'jobs', 'idempotency_keys']::regclass[]) t)::bigint / (SELECT count(*) FROM orders)"
  else
    sqlite3 "${2#sqlite://}" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
    echo $(( $(stat -c %s "${2#sqlite://}") / $(sql "$2" "SELECT count(*) FROM orders") ))
  fi
}

run() { # BACKEND ORDERS
  local backend=$1 n=$2 url
  echo "== $backend, $n orders stored"
  rm -rf "$work/outbox"; : >"$work/orderly.log"
  url=$(fresh_database "$backend" orderly_growth)
  key=$(ORDERLY_DATABASE_URL=$url "$bin" keys create --role admin --name growth 2>/dev/null)
  seed_orders "$url" "$key" "$port"
  local started=$SECONDS pid
  bulk_load "$backend" "$url" "$n"
  local load_s=$(( SECONDS - started ))
  local stored bytes
  stored=$(sql "$url" "SELECT count(*) FROM orders")
  bytes=$(bytes_per_order "$backend" "$url")
  echo "  loaded $n orders in $load_s s; $stored stored; $bytes bytes per order on disk"

  pid=$(start run "$url" "$port")
  local orders; orders=$(ORDERLY_BENCH_KEY=$key "$bin" bench orders --url "http://127.0.0.1:$port" \
    --concurrency 32 --duration "$seconds" --products 10 --json)
  echo "  orders: $(jq -r '"\(.orders_per_s | floor) orders/s, p99 \(.p99_ms) ms, \(.errors) errors"' <<<"$orders")"

  # The reads are measured once the receipts of those orders are sent.
  jobs_done "$url" 60
  local product email=customer7@example.com
  product=$(sql "$url" "SELECT sku FROM products LIMIT 1")
  local cached by_email by_status discarded uncached
  cached=$(p99 "http://127.0.0.1:$port/v1/products/by-sku/$product")
  by_email=$(p99 "http://127.0.0.1:$port/v1/orders?email=$email")
  by_status=$(p99 "http://127.0.0.1:$port/v1/orders?status=pending")
  discarded=$(p99 "http://127.0.0.1:$port/v1/jobs?state=discarded")
  local api; api=$(start api "$url" $((port + 1)) ORDERLY_CACHE__ENABLED=false)
  uncached=$(p99 "http://127.0.0.1:$((port + 1))/v1/products/by-sku/$product")
  stop "$api"
  echo "  p99 ms: product cached $cached, uncached $uncached; orders?email= $by_email, ?status=pending $by_status; jobs?state=discarded $discarded"
  stop "$pid"

  local drain; drain=$("$bin" bench queue --database-url "$url" --jobs 20000 --concurrency 10 \
    --latency-samples 20 --json)
  echo "  drain: $(jq -r '.drain_per_s | floor' <<<"$drain") jobs/s"

  # The prune chore while orders arrive: orders/s while it ran against orders/s in the
  # seconds before it was enqueued, both counted from the orders' own times, in one load that
  # lasts until the chore has finished.
  pid=$(start run "$url" "$port")
  ORDERLY_BENCH_KEY=$key "$bin" bench orders --url "http://127.0.0.1:$port" --concurrency 32 \
    --duration 900 --products 10 --json >/dev/null 2>&1 &
  local load=$!
  sleep 2
  local before_from; before_from=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
  sleep "$seconds"
  # Priority 0: ahead of the receipts still queued (on SQLite they fall behind at this rate).
  local job_id enqueued now
  enqueued=$(date +%s.%N)
  now=$(date -u -d "@$enqueued" +%Y-%m-%dT%H:%M:%S.%6NZ)
  job_id=$(sql "$url" "INSERT INTO jobs (queue, kind, args, state, priority, max_attempts, run_at, created_at) VALUES ('default', 'prune', '{}', 'available', 0, 1, '$now', '$now') RETURNING id" | head -1)
  local state=
  while [[ $state != completed && $state != discarded ]]; do
    sleep 0.05
    state=$(sql "$url" "SELECT state FROM jobs WHERE id = $job_id")
  done
  kill -TERM "$load" 2>/dev/null || true
  wait "$load" 2>/dev/null || true
  stop "$pid"
  # When the chore started and finished, and what it deleted, from orderly's log.
  local lines pruned t0 t1 run_ms waited_s during before
  lines=$(jq -cR --argjson id "$job_id" 'fromjson? | select(.spans[0].job_id? == $id)' "$work/orderly.log")
  pruned=$(jq -c 'select(.message == "pruned") | {jobs, events, idempotency_keys, complete}' <<<"$lines")
  t0=$(jq -r 'select(.message == "job started") | .timestamp' <<<"$lines")
  t1=$(jq -r 'select(.message == "job finished") | .timestamp' <<<"$lines")
  run_ms=$(jq -r 'select(.message == "job finished") | .elapsed_ms | floor' <<<"$lines")
  waited_s=$(awk -v a="$enqueued" -v b="$(date -d "$t0" +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  before=$(( $(sql "$url" "SELECT count(*) FROM orders WHERE created_at >= '$before_from' AND created_at < '$now'") / seconds ))
  if (( ${run_ms:-0} >= 1000 )); then
    during=$(( $(sql "$url" "SELECT count(*) FROM orders WHERE created_at >= '$t0' AND created_at < '$t1'") * 1000 / run_ms ))
  else
    during=null
  fi
  echo "  prune: ran $run_ms ms (waited $waited_s s in the queue), deleted $pruned; orders/s while it ran ${during/null/- (under 1 s)}, in the $seconds s before $before"

  plans "$backend" "$url" "$email" >"$work/plans-$backend-$n.txt"
  jq -nc --arg backend "$backend" --argjson n "$n" --argjson bytes "$bytes" --argjson orders "$orders" \
    --argjson cached "$cached" --argjson uncached "$uncached" --argjson by_email "$by_email" \
    --argjson by_status "$by_status" --argjson discarded "$discarded" --argjson drain "$drain" \
    --argjson prune_ms "$run_ms" \
    --argjson pruned "$pruned" --argjson during "$during" --argjson before "$before" \
    '{backend: $backend, orders_stored: $n, bytes_per_order: $bytes,
      orders_per_s: ($orders.orders_per_s | floor), orders_p99_ms: $orders.p99_ms,
      product_p99_ms: {cached: $cached, uncached: $uncached},
      listing_p99_ms: {email: $by_email, status_pending: $by_status, jobs_discarded: $discarded},
      drain_jobs_per_s: ($drain.drain_per_s | floor), prune_ms: $prune_ms, pruned: $pruned,
      orders_per_s_while_pruning: $during, orders_per_s_before_pruning: $before}' >>"$results"
}

for n in "${sizes[@]}"; do
  for backend in "${backends[@]}"; do
    run "$backend" "$n"
  done
done
for plan in "$work"/plans-*.txt; do echo "== $(basename "$plan" .txt)"; cat "$plan"; done
echo "results: $results; work directory: $work"
