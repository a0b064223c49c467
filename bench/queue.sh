#!/usr/bin/env bash
# Job queue drain rate against graphile-worker at its best on the same PostgreSQL, in one
# invocation: medians of `runs` runs per cell.
#
#   bench/queue.sh [jobs=10000,50000,200000] [concurrency=10,50] [runs=3]
#
# For each number of jobs and each concurrency, each side gets a fresh database, `jobs` no-op
# jobs enqueued in bulk, its jobs table vacuumed and analyzed (as an operator would after a
# bulk load: without it the peer plans for an empty table and is 1.4–1.8x slower), and one
# worker process that drains them:
# - orderly: `orderly bench queue` (enqueue in batches, drain with one in-process worker at its
#   defaults: local queue of 500, batched completion), which also reports the idle
#   enqueue-to-start latency; run twice, keeping completed jobs (the default) and deleting them
#   as they complete (worker.keep_completed = false, as graphile-worker does);
# - graphile-worker as a library (0.17.3, bench/graphile/bench.js): bulk addJobs, then `run`
#   tuned (local queue of 500, batched completion) until its jobs table is empty;
# - graphile-worker's CLI by its perfTest method (0.18.0, bench/graphile-cli): jobs added with
#   one bulk `add_jobs` call, then `graphile-worker --once -j <concurrency>` timed, less the
#   time the same command takes on an empty queue (its start-up).
# The peer's figure is the better of its two medians; each ratio is orderly's median over it.
# Needs Node.js; installs both graphile-workers into bench/*/node_modules (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
IFS=', ' read -r -a job_counts <<<"${1:-10000,50000,200000}"
IFS=', ' read -r -a concurrencies <<<"${2:-10,50}"
runs=${3:-3}
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}

[[ -n ${ORDERLY_BIN:-} ]] || { cargo build --release --quiet --locked --bin orderly; ORDERLY_BIN="${CARGO_TARGET_DIR:-target}/release/orderly"; }
(cd bench/graphile && npm ci --no-audit --no-fund --silent)
(cd bench/graphile-cli && npm ci --no-audit --no-fund --silent)
cli=bench/graphile-cli/node_modules/.bin/graphile-worker

fresh() { psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" 2>/dev/null; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$1'])" "$2"; }
seconds() { python3 -c "import time; print(time.monotonic())"; }
median() { python3 -c "import statistics,sys; print(round(statistics.median(float(x) for x in sys.argv[1:])))" "$@"; }
median_ms() { python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.2f}')" "$@"; }
range_of() { python3 -c "import sys; v=sorted(float(x) for x in sys.argv[1:]); print(f'{v[0]:.0f}–{v[-1]:.0f}')" "$@"; }

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
  psql "$db" -qc "VACUUM ANALYZE graphile_worker._private_jobs" >/dev/null
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
  ORDERLY_WORKER__KEEP_COMPLETED=$3 "$ORDERLY_BIN" bench queue --database-url "$pg/orderly_bench_queue" \
    --jobs "$1" --concurrency "$2" --latency-samples 50 --json
}
ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }

echo "== jobs/s drained, medians of $runs runs (range in brackets); ratio = orderly ÷ the peer's better median"
printf '%-7s %-4s %-22s %-22s %-22s %-22s %-11s %s\n' jobs conc "orderly kept" "orderly deleted" \
  "graphile library" "graphile CLI" "ratio k/d" "idle start p50/p99 (ms)"
for jobs in "${job_counts[@]}"; do
  for concurrency in "${concurrencies[@]}"; do
    kept=() deleted=() library=() cli_rates=() p50=() p99=()
    for _ in $(seq 1 "$runs"); do
      report=$(orderly_bench "$jobs" "$concurrency" true)
      kept+=("$(field drain_per_s "$report")")
      p50+=("$(field latency_p50_ms "$report")") p99+=("$(field latency_p99_ms "$report")")
      deleted+=("$(field drain_per_s "$(orderly_bench "$jobs" "$concurrency" false)")")
      fresh orderly_bench_graphile
      library+=("$(field drain_per_s "$(DATABASE_URL="$pg/orderly_bench_graphile" node bench/graphile/bench.js "$jobs" "$concurrency" 1 | tail -n1)")")
      cli_rates+=("$(graphile_cli "$jobs" "$concurrency")")
    done
    k=$(median "${kept[@]}") d=$(median "${deleted[@]}") l=$(median "${library[@]}") c=$(median "${cli_rates[@]}")
    best=$((l > c ? l : c))
    printf '%-7s %-4s %-22s %-22s %-22s %-22s %-11s %s\n' "$jobs" "$concurrency" \
      "$k [$(range_of "${kept[@]}")]" "$d [$(range_of "${deleted[@]}")]" \
      "$l [$(range_of "${library[@]}")]" "$c [$(range_of "${cli_rates[@]}")]" \
      "$(ratio "$k" "$best")/$(ratio "$d" "$best")" \
      "$(median_ms "${p50[@]}")/$(median_ms "${p99[@]}")"
  done
done
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS orderly_bench_queue" -c "DROP DATABASE IF EXISTS orderly_bench_graphile" 2>/dev/null
