#!/usr/bin/env bash
# Receipts over real SMTP: `orderly bench receipts` places N orders with no worker running,
# then one worker sends their receipts to Postfix's `smtp-sink` (installed by
# scripts/smtp-sink.sh, nothing left listening on port 25). The orderly process is held to one
# core by a cgroup v1 CPU quota (as bench/scale.sh does; the time the quota throttled it is
# reported); PostgreSQL and smtp-sink run unlimited, and smtp-sink's CPU is reported.
#
#   bench/receipts.sh [receipts=20000] [runs=3] [concurrency=worker.queues.default]
#
# Needs root (cgroups) and PostgreSQL on 127.0.0.1:5432 (ORDERLY_BENCH_POSTGRES overrides).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
source bench/lib.sh
receipts=${1:-20000}
runs=${2:-3}
concurrency=${3:-}
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
cgroup=/sys/fs/cgroup/cpu/orderly-receipts
[[ -w /sys/fs/cgroup/cpu ]] || { echo "needs root and cgroup v1's cpu controller at /sys/fs/cgroup/cpu" >&2; exit 1; }
sink_bin=$(bash scripts/smtp-sink.sh)
[[ -n ${ORDERLY_BIN:-} ]] || { cargo build --release --quiet --locked -p orderly; ORDERLY_BIN="${CARGO_TARGET_DIR:-target}/release/orderly"; }
port=$(python3 scripts/free-port.py)
work=$(mktemp -d)
sink=
cleanup() { [[ -n $sink ]] && kill "$sink" 2>/dev/null; rmdir "$cgroup" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$cgroup"
echo 100000 >"$cgroup/cpu.cfs_period_us"
echo 100000 >"$cgroup/cpu.cfs_quota_us"
ticks=$(getconf CLK_TCK)

# smtp-sink: one process, a listen backlog of 256; it accepts every message and keeps none.
"$sink_bin" -u nobody "127.0.0.1:$port" 256 &
sink=$!
# Request logging off: the figures are of the work, not of writing log lines.
export RUST_LOG=warn
echo "== $receipts receipts over SMTP (smtp-sink on port $port), one worker on one core, $runs run(s)"
for run in $(seq 1 "$runs"); do
  psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS orderly_receipts" -c "CREATE DATABASE orderly_receipts" >/dev/null 2>&1
  before=$(cpu_of smtp-sink)
  report=$(sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$cgroup" \
    "$ORDERLY_BIN" bench receipts --smtp "smtp://127.0.0.1:$port" \
    --database-url "$pg/orderly_receipts" --receipts "$receipts" \
    ${concurrency:+--concurrency "$concurrency"})
  after=$(cpu_of smtp-sink)
  echo "run $run: $report"
  # Over the whole command (placing the orders included): a bound, not a share.
  echo "  smtp-sink used $(python3 -c "print(round(($after - $before) / $ticks, 2))") CPU s; orderly's quota throttled it $(awk '/^throttled_time/ {printf "%.2f", $2 / 1e9}' "$cgroup/cpu.stat") s so far"
done
psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS orderly_receipts" >/dev/null 2>&1
