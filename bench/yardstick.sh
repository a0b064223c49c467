#!/usr/bin/env bash
# The shared order yardstick (../shared/yardsticks/orders, copied unchanged to bench/yardstick/):
# wrk -t2 -c32 with order.lua against orderly on a fresh PostgreSQL database (200 products, a
# storefront key), then pgbench running the four-statement order transaction on the
# yardstick's own schema in a database of its own. Ratio = orderly orders/s ÷ pgbench tps, each
# round's two halves back to back.
#
#   bench/yardstick.sh [role=run|api|split] [seconds=20] [rounds=2]
#
# With `run` the worker in the same process sends every receipt (to the outbox) while orders
# arrive; with `split` an `orderly api` and an `orderly worker` process share the machine, the
# worker sending the receipts (its CPU and memory are counted with the API's); the report adds the receipts sent during the run, how long the backlog took to drain
# after it, and the receipt lag (order created → receipt_sent_at recorded) p50/p99. Peak
# resident memory is orderly's VmHWM. Any non-2xx answer makes a round invalid (reported).
# Also the CPU orderly and PostgreSQL used during the run; YARDSTICK_PERF=FILE records a
# `perf` profile of orderly during it. YARDSTICK_SMTP=1 sends the receipts over SMTP to
# Postfix's smtp-sink (scripts/smtp-sink.sh installs it) instead of writing them to the
# outbox. Needs PostgreSQL on 127.0.0.1:5432 (ORDERLY_BENCH_POSTGRES overrides); installs wrk.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
source bench/lib.sh
role=${1:-run}
[[ $role == run || $role == api || $role == split ]] || { echo "role: run, api or split" >&2; exit 2; }
seconds=${2:-20}
rounds=${3:-2}
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
port=18090
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
command -v pgbench >/dev/null || apt-get install -y -q postgresql-client >/dev/null

[[ -n ${ORDERLY_BIN:-} ]] || { cargo build --release --quiet --locked -p orderly; ORDERLY_BIN="${CARGO_TARGET_DIR:-target}/release/orderly"; }
work=$(mktemp -d)
server='' worker='' sink=''
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null
  [[ -n $worker ]] && kill "$worker" 2>/dev/null
  [[ -n $sink ]] && kill "$sink" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
db=orderly_yardstick
# Where receipts go: the outbox, or with YARDSTICK_SMTP=1 an smtp-sink of this run's own.
export ORDERLY_MAIL_OUTBOX="$work/outbox" ORDERLY_SMTP_URL=
if [[ -n ${YARDSTICK_SMTP:-} ]]; then
  sink_port=$(python3 scripts/free-port.py)
  "$(bash scripts/smtp-sink.sh)" -u nobody "127.0.0.1:$sink_port" 256 &
  sink=$!
  ORDERLY_SMTP_URL="smtp://127.0.0.1:$sink_port"
fi
sql() { psql -qAtX "$pg/$db" -c "$1"; }
fresh() { psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null 2>&1; }

ticks=$(getconf CLK_TCK)
# CPU ticks (user + system) used so far by one process, or by every process named $1.
cpu_of_pid() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# CPU ticks used so far by the orderly processes of the run (the API's, and the worker's).
orderly_cpu() {
  local total; total=$(cpu_of_pid "$server")
  [[ -z $worker ]] || total=$((total + $(cpu_of_pid "$worker")))
  echo "$total"
}

orderly_half() {
  fresh "$db"
  local url="$pg/$db"
  ORDERLY_DATABASE_URL=$url "$ORDERLY_BIN" migrate >/dev/null 2>&1
  local admin storefront ids=() products
  admin=$(ORDERLY_DATABASE_URL=$url "$ORDERLY_BIN" keys create --role admin --name yardstick 2>/dev/null)
  storefront=$(ORDERLY_DATABASE_URL=$url "$ORDERLY_BIN" keys create --role storefront --name yardstick 2>/dev/null)
  ORDERLY_DATABASE_URL=$url ORDERLY_LISTEN=127.0.0.1:$port \
    "$ORDERLY_BIN" "${role/split/api}" >"$work/orderly.log" 2>&1 &
  server=$!
  if [[ $role == split ]]; then
    ORDERLY_DATABASE_URL=$url ORDERLY_WORKER__METRICS_LISTEN=127.0.0.1:0 \
      "$ORDERLY_BIN" worker >"$work/worker.log" 2>&1 &
    worker=$!
  fi
  until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.05; done
  for i in $(seq 1 200); do
    ids+=("$(curl -sf "http://127.0.0.1:$port/v1/products" -H "Authorization: Bearer $admin" \
      -H 'Content-Type: application/json' \
      -d "{\"sku\":\"Y-$i\",\"name\":\"Yardstick $i\",\"price\":$((100 + i)),\"stock\":1000000000}" | jq -r .id)")
  done
  products=$(IFS=,; echo "${ids[*]}")
  local ended cpu_before cpu_after
  cpu_before="$(orderly_cpu) $(cpu_of postgres)"
  vmstat 1 "$seconds" >"$work/vmstat.out" &
  local vmstat=$!
  local perf=
  if [[ -n ${YARDSTICK_PERF:-} ]]; then
    perf record -e cpu-clock -g -o "$YARDSTICK_PERF" -p "$server" -- sleep "$seconds" >/dev/null 2>&1 &
    perf=$!
  fi
  ORDERLY_KEY=$storefront ORDERLY_PRODUCTS=$products \
    wrk -t2 -c32 -d"${seconds}s" --latency -s bench/yardstick/order.lua "http://127.0.0.1:$port" >"$work/wrk.out" 2>&1
  ended=$(date +%s.%N)
  cpu_after="$(orderly_cpu) $(cpu_of postgres)"
  [[ -z $perf ]] || wait "$perf"
  wait "$vmstat" 2>/dev/null || true
  local rps non2xx p99 peak_kb
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.out")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$work/wrk.out")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.out")
  local receipts=""
  if [[ $role != api ]]; then
    local sent_in_run orders drained lag
    sent_in_run=$(sql "SELECT count(*) FROM orders WHERE receipt_sent_at IS NOT NULL")
    until [[ $(sql "SELECT count(*) FROM orders WHERE receipt_sent_at IS NULL") == 0 ]]; do sleep 0.05; done
    drained=$(python3 -c "import time; print(round(time.time() - $ended, 2))")
    orders=$(sql "SELECT count(*) FROM orders")
    lag=$(sql "SELECT round(1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY receipt_sent_at - created_at))::numeric, 1) || ' ' ||
                      round(1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY receipt_sent_at - created_at))::numeric, 1) FROM orders")
    receipts=", receipts: $sent_in_run of $orders sent during the run, the rest within ${drained} s after; lag p50 ${lag% *} ms, p99 ${lag#* } ms"
  fi
  if [[ -n $non2xx ]]; then
    echo "  the round is invalid: $non2xx answers were not 2xx; orderly's warnings:"
    grep -E 'WARN|ERROR' "$work/orderly.log" | sed -E 's/^[^ ]+ +//' | cut -c1-160 | sort | uniq -c | sort -rn | head -n 8
  fi
  peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
  local peak="$((peak_kb / 1024)) MB"
  if [[ -n $worker ]]; then
    peak="$peak (api), $(( $(awk '/VmHWM/ {print $2}' "/proc/$worker/status") / 1024 )) MB (worker)"
    kill -TERM "$worker"; wait "$worker" 2>/dev/null || true; worker=
  fi
  kill -TERM "$server"; wait "$server" 2>/dev/null || true; server=
  orderly_rps=$rps
  echo "  orderly $role: ${rps} orders/s, p99 ${p99}, non-2xx ${non2xx:-0}, peak RSS ${peak}${receipts}"
  read -r ob pb <<<"$cpu_before"; read -r oa pa <<<"$cpu_after"
  python3 - "$oa" "$ob" "$pa" "$pb" "$ticks" "$seconds" "$rps" "$work/vmstat.out" <<'PY'
import sys
oa, ob, pa, pb, ticks, seconds, rps = (float(x) for x in sys.argv[1:8])
rows = [l.split() for l in open(sys.argv[8]) if l.split() and l.split()[0].isdigit()][1:]
avg = lambda i: round(sum(float(r[i]) for r in rows) / max(len(rows), 1))
orderly, postgres = (oa - ob) / ticks / seconds, (pa - pb) / ticks / seconds
print(f"  CPU during the run: orderly {orderly:.2f} cores ({orderly / rps * 1000:.2f} ms per order), "
      f"PostgreSQL {postgres:.2f} cores ({postgres / rps * 1000:.2f} ms per order); machine "
      f"user {avg(12)}%, system {avg(13)}%, idle {avg(14)}%, I/O wait {avg(15)}%, stolen {avg(16)}%")
PY
}

pgbench_half() {
  fresh orderly_yardstick_pgbench
  psql -qX "$pg/orderly_yardstick_pgbench" -f bench/yardstick/pgbench_schema.sql >/dev/null 2>&1
  pgbench_tps=$(pgbench -n -M prepared -c 32 -j 2 -T "$seconds" -f bench/yardstick/pgbench_order.sql \
    "$pg/orderly_yardstick_pgbench" 2>/dev/null | awk '/^tps/ {print $3}')
  echo "  pgbench: ${pgbench_tps} tps"
}

echo "== the order yardstick: orderly $role${YARDSTICK_SMTP:+ (receipts over SMTP)} against pgbench, 32 clients, ${seconds} s each, $rounds round(s)"
for round in $(seq 1 "$rounds"); do
  echo "round $round"
  orderly_half
  pgbench_half
  echo "  ratio: $(python3 -c "print(round($orderly_rps / $pgbench_tps, 2))")x"
done
# YARDSTICK_KEEP=1 keeps the last round's databases, to look at the plans.
[[ -n ${YARDSTICK_KEEP:-} ]] ||
  psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS $db" -c "DROP DATABASE IF EXISTS orderly_yardstick_pgbench" >/dev/null
