#!/usr/bin/env bash
# Job queue drain rate against graphile-worker on the same PostgreSQL, by both of graphile-
# worker's measuring methods, in one invocation.
#
#   bench/queue.sh [jobs=30000] [concurrency=10]     # either may be a list: 10000,50000,200000
#
# For each number of jobs and each concurrency, each side gets a fresh database and drains
# `jobs` no-op jobs enqueued in bulk with one worker process:
# - orderly: `orderly bench queue` (enqueue in batches, drain with one in-process worker at its
#   defaults: local queue of 500, batched completion), which also reports the idle
#   enqueue-to-start latency; run twice, keeping completed jobs (the default) and deleting them
#   as they complete (worker.keep_completed = false, as graphile-worker does);
# - graphile-worker as a library (0.17.3, bench/graphile/bench.js): bulk addJobs, then `run`
#   tuned (local queue of 500, batched completion) until its jobs table is empty;
# - graphile-worker's CLI by its perfTest method (0.18.0, bench/graphile-cli): jobs added with
#   one bulk `add_jobs` call, then `graphile-worker --once -j <concurrency>` timed, less the
#   time the same command takes on an empty queue (its start-up).
# Needs Node.js; installs both graphile-workers into bench/*/node_modules (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
IFS=', ' read -r -a job_counts <<<"${1:-30000}"
IFS=', ' read -r -a concurrencies <<<"${2:-10}"
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}

cargo build --release --quiet --bin orderly
bin="${CARGO_TARGET_DIR:-target}/release/orderly"
(cd bench/graphile && npm ci --no-audit --no-fund --silent)
(cd bench/graphile-cli && npm ci --no-audit --no-fund --silent)
cli=bench/graphile-cli/node_modules/.bin/graphile-worker

fresh() { psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" 2>/dev/null; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$1'])" "$2"; }
seconds() { python3 -c "import time; print(time.monotonic())"; }

# Prints graphile-worker's CLI drain rate for $1 jobs at concurrency $2.
graphile_cli() {
  local jobs=$1 concurrency=$2 db="$pg/orderly_bench_graphile" started empty full
  fresh orderly_bench_graphile
  export DATABASE_URL=$db GRAPHILE_CONCURRENCY=$concurrency
  (cd bench/graphile-cli && "$OLDPWD/$cli" --schema-only >/dev/null)
  started=$(seconds)
  (cd bench/graphile-cli && "$OLDPWD/$cli" --once -j "$concurrency" >/dev/null)
  empty=$(python3 -c "print($(seconds) - $started)")
  psql "$db" -qc "SELECT graphile_worker.add_jobs(ARRAY(SELECT (
      'log_if_999', json_build_object('id', i), NULL, NULL, NULL, NULL, NULL, NULL
    )::graphile_worker.job_spec FROM generate_series(1, $jobs) i))" >/dev/null
  started=$(seconds)
  (cd bench/graphile-cli && "$OLDPWD/$cli" --once -j "$concurrency" >/dev/null)
  full=$(python3 -c "print($(seconds) - $started)")
  local left
  left=$(psql "$db" -tAc "SELECT count(*) FROM graphile_worker._private_jobs")
  [ "$left" = 0 ] || { echo "graphile-worker --once left $left jobs" >&2; exit 1; }
  unset DATABASE_URL GRAPHILE_CONCURRENCY
  python3 -c "print(round($jobs / ($full - $empty)))"
}

# Prints `orderly bench queue`'s report as JSON; $3 is worker.keep_completed.
orderly_bench() {
  fresh orderly_bench_queue
  ORDERLY_WORKER__KEEP_COMPLETED=$3 "$bin" bench queue --database-url "$pg/orderly_bench_queue" \
    --jobs "$1" --concurrency "$2" --json
}
ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }

# orderly twice: completed jobs kept for retention (the default), and deleted as they complete
# (worker.keep_completed = false); each ratio is kept/deleted against the peer's figure.
printf '%-8s %-5s %9s %9s %9s %13s %9s %13s %16s\n' jobs conc kept deleted library ratio "cli" ratio "start p50/p99"
for jobs in "${job_counts[@]}"; do
  for concurrency in "${concurrencies[@]}"; do
    kept=$(orderly_bench "$jobs" "$concurrency" true)
    deleted=$(orderly_bench "$jobs" "$concurrency" false)
    fresh orderly_bench_graphile
    library=$(DATABASE_URL="$pg/orderly_bench_graphile" node bench/graphile/bench.js "$jobs" "$concurrency" 1 | tail -n1)
    cli_rate=$(graphile_cli "$jobs" "$concurrency")
    k=$(field drain_per_s "$kept")
    d=$(field drain_per_s "$deleted")
    lib=$(field drain_per_s "$library")
    printf '%-8s %-5s %9.0f %9.0f %9.0f %13s %9.0f %13s %16s\n' "$jobs" "$concurrency" "$k" "$d" \
      "$lib" "$(ratio "$k" "$lib")/$(ratio "$d" "$lib")" "$cli_rate" \
      "$(ratio "$k" "$cli_rate")/$(ratio "$d" "$cli_rate")" \
      "$(field latency_p50_ms "$kept")/$(field latency_p99_ms "$kept") ms"
  done
done
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS orderly_bench_queue" -c "DROP DATABASE IF EXISTS orderly_bench_graphile" 2>/dev/null
