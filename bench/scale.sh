#!/usr/bin/env bash
# Horizontal scaling, measured: orders/s and cached reads/s through HAProxy with 1, 2, 4 and 6
# `orderly api` processes, and job drain with 1, 2 and 4 `orderly worker` processes. Each
# orderly process gets a fixed slice of CPU (a cgroup v1 CPU quota, default a quarter of a
# core), so that adding processes adds capacity on a 2-core machine; everything else
# (PostgreSQL, HAProxy, wrk, Redis) runs unlimited, and its CPU time is measured to show
# what stops the growth.
#
#   bench/scale.sh [seconds=10] [quota_cores=0.25]
#   SCALE_ONLY=api|jobs|receipts|statements picks one part; SCALE_JOBS sets the jobs per drain
#   (default 20,000).
#
# Orders: the shared yardstick (wrk -t2 -c32 with bench/yardstick/order.lua, storefront key,
# 200 products). Reads: wrk -t2 -c64 on GET /v1/products/{id} (cached; Redis is the shared
# tier). Jobs: 20,000 no-op jobs inserted at once, timed until all are completed.
# Needs root (cgroups), PostgreSQL and Redis; installs wrk, HAProxy and socat when missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-10}
quota=${2:-0.25}
jobs=${SCALE_JOBS:-20000}
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
cgroup=/sys/fs/cgroup/cpu/orderly-scale
[[ -w /sys/fs/cgroup/cpu ]] || { echo "needs root and cgroup v1's cpu controller at /sys/fs/cgroup/cpu" >&2; exit 1; }
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
bash scripts/services.sh >/dev/null

cargo build --release --quiet -p orderly
export ORDERLY_BIN="${CARGO_TARGET_DIR:-target}/release/orderly"
work=$(mktemp -d)
export ORDERLY_CLUSTER_DIR="$work/cluster" ORDERLY_CLUSTER_DB=orderly_scale
export ORDERLY_LB_PORT=18800
# Request logging off: the figures are of the work, not of writing log lines to files.
export RUST_LOG=warn
cleanup() { scripts/cluster.sh down >/dev/null 2>&1 || true; rmdir "$cgroup"/* "$cgroup" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
sql() { psql -qAtX "$pg/$ORDERLY_CLUSTER_DB" -c "$1"; }
ticks=$(getconf CLK_TCK)

# Puts each running orderly process of the cluster in a CPU group of its own with the quota.
limit_cpu() {
  mkdir -p "$cgroup"
  rmdir "$cgroup"/* 2>/dev/null || true  # the groups of an earlier run, now empty
  local period=100000 us
  us=$(python3 -c "print(int($quota * 100000))")
  for pidfile in "$ORDERLY_CLUSTER_DIR"/api-*.pid "$ORDERLY_CLUSTER_DIR"/worker-*.pid; do
    [[ -f $pidfile ]] || continue
    local name group; name=$(basename "$pidfile" .pid); group="$cgroup/$name"
    mkdir -p "$group"
    echo "$period" >"$group/cpu.cfs_period_us"
    echo "$us" >"$group/cpu.cfs_quota_us"
    echo "$(cat "$pidfile")" >"$group/cgroup.procs"
  done
}

# CPU seconds used so far by the processes named $1 (comm), summed over their threads.
cpu_of() {
  local total=0
  for pid in $(pgrep -x "$1" || true); do
    local t; t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  python3 -c "print($total / $ticks)"
}
# Idle and total CPU ticks of the machine.
machine() { awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
# Sum of the cgroups' throttled time, in seconds.
throttled() {
  local total=0
  for f in "$cgroup"/*/cpu.stat; do
    [[ -f $f ]] && total=$((total + $(awk '/^throttled_time/ {print $2}' "$f")))
  done
  python3 -c "print($total / 1e9)"
}
# WAL bytes, WAL syncs, commits and rows written so far.
wal() {
  sql "SELECT w.wal_bytes, w.wal_sync, d.xact_commit, d.tup_inserted + d.tup_updated + d.tup_deleted
       FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()"
}

# Runs wrk ($@) while sampling where the CPU went; prints one JSON line.
measure() {
  local label=$1 count_sql=$2; shift 2
  local before_pg before_ha before_orderly before_wal before_machine before_count before_throttle
  before_pg=$(cpu_of postgres) before_ha=$(cpu_of haproxy) before_orderly=$(cpu_of orderly)
  before_wal=$(wal) before_machine=$(machine) before_throttle=$(throttled)
  before_count=$(sql "$count_sql")
  wrk -t2 --latency -d"${seconds}s" "$@" >"$work/wrk.out" 2>&1
  local after_pg after_ha after_orderly after_wal after_machine after_count after_throttle
  after_pg=$(cpu_of postgres) after_ha=$(cpu_of haproxy) after_orderly=$(cpu_of orderly)
  after_wal=$(wal) after_machine=$(machine) after_throttle=$(throttled)
  after_count=$(sql "$count_sql")
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $5}' "$work/wrk.out")
  python3 - "$label" "$work/wrk.out" "${non2xx:-0}" "$seconds" \
    "$before_pg $after_pg" "$before_ha $after_ha" "$before_orderly $after_orderly" \
    "${before_wal//|/ } ${after_wal//|/ }" "$before_machine $after_machine" \
    "$before_count $after_count" "$before_throttle $after_throttle" <<'PY'
import json, re, sys
label, out, non2xx, seconds = sys.argv[1], open(sys.argv[2]).read(), int(sys.argv[3]), float(sys.argv[4])
pair = lambda i: [float(x) for x in sys.argv[i].split()]
pg, ha, orderly, walv, mach, count, thr = (pair(i) for i in range(5, 12))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
idle = (mach[2] - mach[0]) / (mach[3] - mach[1])
print(json.dumps({
    "run": label, "requests_per_s": rps, "p99": p99, "non_2xx": non2xx,
    "rows_per_s": round((count[1] - count[0]) / seconds, 1),
    "cpu_cores": {"orderly": round((orderly[1] - orderly[0]) / seconds, 2),
                  "postgres": round((pg[1] - pg[0]) / seconds, 2),
                  "haproxy": round((ha[1] - ha[0]) / seconds, 2),
                  "machine_idle_share": round(idle, 2)},
    "orderly_throttled_s": round(thr[1] - thr[0], 2),
    "wal_bytes_per_s": round((walv[4] - walv[0]) / seconds),
    "wal_syncs_per_s": round((walv[5] - walv[1]) / seconds, 1),
    "commits_per_s": round((walv[6] - walv[2]) / seconds, 1),
    "rows_written_per_s": round((walv[7] - walv[3]) / seconds, 1),
}))
PY
}

# Creates a storefront key and 200 products in the running cluster; sets url, storefront, ids
# and products (the ids joined by commas, as the yardstick wants them).
seed() {
  url=$(cat "$ORDERLY_CLUSTER_DIR/url")
  local admin; admin=$(cat "$ORDERLY_CLUSTER_DIR/admin.key")
  storefront=$(ORDERLY_DATABASE_URL="$pg/$ORDERLY_CLUSTER_DB" "$ORDERLY_BIN" keys create --role storefront --name scale 2>/dev/null)
  ids=()
  for i in $(seq 1 200); do
    ids+=("$(curl -sf "$url/v1/products" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
      -d "{\"sku\": \"SCALE-$i\", \"name\": \"Scale $i\", \"price\": 1250, \"stock\": 1000000000}" | jq -r .id)")
  done
  products=$(IFS=,; echo "${ids[*]}")
}

run_apis() {
  local n=$1
  scripts/cluster.sh up --api "$n" --workers 0 >/dev/null
  limit_cpu
  seed
  ORDERLY_KEY=$storefront ORDERLY_PRODUCTS=$products \
    measure "orders, $n API" "SELECT count(*) FROM orders" -c32 -s bench/yardstick/order.lua "$url"
  # Warm every process's cache tier, then read.
  for _ in $(seq 1 $((n * 4))); do curl -sf -o /dev/null "$url/v1/products/${ids[0]}" -H "Authorization: Bearer $storefront"; done
  measure "cached reads, $n API" "SELECT 0" -c64 -H "Authorization: Bearer $storefront" "$url/v1/products/${ids[0]}"
  scripts/cluster.sh down >/dev/null
}

# CPU seconds used so far by the process whose pid file is $1.
cpu_of_pid() { awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$(cat "$1")/stat"; }
receipts_waiting() { sql "SELECT count(*) FROM jobs WHERE kind = 'send_receipt' AND state <> 'completed'"; }

# Receipts in the cluster: 2 APIs and 1 worker (each with the quota) while orders arrive, the
# receipts sent over SMTP to a sink that drops them (the maildir sink fsyncs each message and
# would be the limit). Reports the worker's CPU per receipt, how far the receipts kept up
# during the run, and how long the backlog took to drain after it.
run_receipts() {
  ORDERLY_CLUSTER_MAIL=discard scripts/cluster.sh up --api 2 --workers 1 >/dev/null
  limit_cpu
  seed
  local worker="$ORDERLY_CLUSTER_DIR/worker-1.pid" sink="$ORDERLY_CLUSTER_DIR/smtp.pid"
  local before_worker before_pg before_sink started
  before_worker=$(cpu_of_pid "$worker") before_pg=$(cpu_of postgres) before_sink=$(cpu_of_pid "$sink")
  started=$(date +%s%N)
  ORDERLY_KEY=$storefront ORDERLY_PRODUCTS=$products \
    wrk -t2 -c32 -d"${seconds}s" -s bench/yardstick/order.lua "$url" >"$work/wrk.out" 2>&1
  local ordered sent_in_run
  ordered=$(sql "SELECT count(*) FROM orders")
  sent_in_run=$(sql "SELECT count(*) FROM orders WHERE receipt_sent_at IS NOT NULL")
  until [[ $(receipts_waiting) == 0 ]]; do sleep 0.05; done
  local elapsed after_worker after_pg after_sink sent
  elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
  after_worker=$(cpu_of_pid "$worker") after_pg=$(cpu_of postgres) after_sink=$(cpu_of_pid "$sink")
  sent=$(sql "SELECT count(*) FROM orders WHERE receipt_sent_at IS NOT NULL")
  python3 -c "
import json
s, run, worker = $elapsed / 1000, $seconds, $after_worker - $before_worker
print(json.dumps({'run': 'receipts, 2 API + 1 worker', 'orders': $ordered, 'orders_per_s': round($ordered / run),
  'receipts_sent_during_run': $sent_in_run, 'backlog_drained_after_s': round(s - run, 2), 'receipts_sent': $sent,
  'worker_cpu_ms_per_receipt': round(worker * 1000 / $ordered, 3), 'worker_cpu_cores': round(worker / s, 2),
  'postgres_cpu_cores': round(($after_pg - $before_pg) / s, 2), 'smtp_sink_cpu_cores': round(($after_sink - $before_sink) / s, 2),
  'orderly_throttled_s': $(throttled)}))"
  scripts/cluster.sh down >/dev/null
}

# Statements per order and per receipt, counted from each process's own log of its SQL
# (sqlx::query at debug; no quota, and the logging costs CPU, so this run's rates are not
# figures): 1 API and 1 worker, the yardstick for 5 s, then every receipt sent.
run_statements() {
  RUST_LOG=warn,sqlx::query=debug scripts/cluster.sh up --api 1 --workers 1 >/dev/null
  seed
  sleep 1
  local api="$ORDERLY_CLUSTER_DIR/api-1.log" worker="$ORDERLY_CLUSTER_DIR/worker-1.log" from_api from_worker
  from_api=$(($(wc -l <"$api") + 1)) from_worker=$(($(wc -l <"$worker") + 1))
  ORDERLY_KEY=$storefront ORDERLY_PRODUCTS=$products \
    wrk -t2 -c32 -d5s -s bench/yardstick/order.lua "$url" >"$work/wrk.out" 2>&1
  until [[ $(receipts_waiting) == 0 ]]; do sleep 0.05; done
  local orders; orders=$(sql "SELECT count(*) FROM orders")
  statements() { tail -n +"$2" "$1" | jq -r 'select(.target == "sqlx::query") | .summary' | sort | uniq -c | sort -rn; }
  echo "# statements while $orders orders were placed and their receipts sent (count, statement)"
  echo "## orderly api"; statements "$api" "$from_api"
  echo "## orderly worker"; statements "$worker" "$from_worker"
  scripts/cluster.sh down >/dev/null
}

run_workers() {
  local m=$1
  scripts/cluster.sh up --api 0 --workers "$m" >/dev/null
  limit_cpu
  local before_pg; before_pg=$(cpu_of postgres)
  local started; started=$(date +%s%N)
  sql "INSERT INTO jobs (kind, args, state, max_attempts, run_at, created_at)
       SELECT 'noop', '{}', 'available', 3, now(), now() FROM generate_series(1, $jobs)"
  until [[ $(sql "SELECT count(*) FROM jobs WHERE state <> 'completed'") == 0 ]]; do sleep 0.05; done
  local elapsed; elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
  local after_pg; after_pg=$(cpu_of postgres)
  python3 -c "import json; s = $elapsed / 1000; print(json.dumps({'run': 'jobs, $m workers', 'jobs_per_s': round($jobs / s), 'seconds': s, 'cpu_cores': {'postgres': round(($after_pg - $before_pg) / s, 2)}, 'orderly_throttled_s': $(throttled)}))"
  scripts/cluster.sh down >/dev/null
}

echo "# $(date -u +%FT%TZ), $(nproc) cores, ${quota} core per orderly process, ${seconds}s per run, $(git rev-parse --short HEAD)"
part=${SCALE_ONLY:-all}  # all, api, jobs, receipts or statements
case $part in all | api) for n in 1 2 4 6; do run_apis "$n"; done ;; esac
case $part in all | jobs) for m in 1 2 4; do run_workers "$m"; done ;; esac
case $part in all | receipts) run_receipts ;; esac
case $part in all | statements) run_statements ;; esac
