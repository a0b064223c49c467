#!/usr/bin/env bash
# Console page times with many orders stored: the orders listing (newest first, by e-mail,
# by status), one order's page, the jobs listing of discarded jobs, the queues page and the
# overview, each fetched 20 times one after another by a signed-in client (curl), on SQLite
# and PostgreSQL. The orders are loaded in bulk as bench/growth.sh loads them
# (bench/growth/load_*.sql: lines, events, finished receipt jobs, idempotency records).
#
#   bench/console.sh [orders]          (default: 1000000)
#   ORDERLY_CONSOLE_BACKENDS="sqlite" ORDERLY_BIN=target/release/orderly bench/console.sh 100000
#
# Prints, per page, the median and the slowest of the 20 (ms, curl's time_total: the whole
# answer as a browser's request sees it on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
read -r -a backends <<<"${ORDERLY_CONSOLE_BACKENDS:-sqlite postgres}"
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
if [[ -n ${ORDERLY_BIN:-} ]]; then
  bin=$ORDERLY_BIN
else
  cargo build --release --quiet -p orderly
  bin="${CARGO_TARGET_DIR:-target}/release/orderly"
fi
work=$(mktemp -d /var/tmp/orderly-console.XXXXXX)
port=18190
cleanup() { [[ -f $work/pids ]] && xargs -r kill 2>/dev/null <"$work/pids" || true; }
trap cleanup EXIT
export ORDERLY_WORKER__SCHEDULER=false ORDERLY_LOG_FORMAT=json ORDERLY_HTTP__DRAIN=0s
export ORDERLY_RATE_LIMITS__ENABLED=false ORDERLY_MAIL_OUTBOX="$work/outbox"

sql() {
  case $1 in
    sqlite://*) sqlite3 -cmd '.timeout 10000' "${1#sqlite://}" "$2" ;;
    *) psql -qAtX "$1" -c "$2" ;;
  esac
}

start() { # URL
  ORDERLY_DATABASE_URL="$1" ORDERLY_LISTEN="127.0.0.1:$port" "$bin" run >>"$work/orderly.log" 2>&1 &
  echo $! >>"$work/pids"
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && { echo $!; return; }
    sleep 0.1
  done
  echo "orderly did not start:" >&2; tail -20 "$work/orderly.log" >&2; exit 1
}

times() { # PATH: median and max of 20 fetches, ms
  for _ in $(seq 20); do
    curl -s -o "$work/page.html" -w '%{http_code} %{time_total}\n' -b "$cookie" "http://127.0.0.1:$port$1"
  done >"$work/times"
  if grep -qv '^200 ' "$work/times"; then echo "non-200 answers from $1:" >&2; cat "$work/times" >&2; exit 1; fi
  awk '{ print $2 * 1000 }' "$work/times" | sort -n | awk '{ v[NR] = $1 } END { printf "median %6.1f ms   slowest %6.1f ms", v[int((NR + 1) / 2)], v[NR] }'
}

for backend in "${backends[@]}"; do
  echo "== $backend, $n orders stored"
  : >"$work/orderly.log"
  if [[ $backend == postgres ]]; then
    psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS orderly_console" -c "CREATE DATABASE orderly_console" >/dev/null
    url="$pg/orderly_console"
  else
    rm -f "$work/console.db"*; url="sqlite://$work/console.db"
  fi
  ORDERLY_DATABASE_URL=$url "$bin" migrate >/dev/null 2>&1
  key=$(ORDERLY_DATABASE_URL=$url "$bin" keys create --role admin --name console 2>/dev/null)
  pid=$(start "$url")
  ORDERLY_BENCH_KEY=$key "$bin" bench orders --url "http://127.0.0.1:$port" --concurrency 4 \
    --duration 1 --products 10 --json >/dev/null
  for _ in $(seq 100); do
    [[ $(sql "$url" "SELECT count(*) FROM jobs WHERE state IN ('available', 'running')") == 0 ]] && break
    sleep 0.2
  done
  kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  started=$SECONDS
  if [[ $backend == postgres ]]; then
    psql -qX "$url" -v n="$n" -f bench/growth/load_postgres.sql >/dev/null
    psql -qX "$url" -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
  else
    sed "s/:n\b/$n/g" bench/growth/load_sqlite.sql | sqlite3 "${url#sqlite://}" >/dev/null
  fi
  echo "  loaded in $(( SECONDS - started )) s: $(sql "$url" "SELECT count(*) FROM orders") orders, $(sql "$url" "SELECT count(*) FROM jobs") jobs"
  pid=$(start "$url")
  cookie=$(curl -s -i -X POST --data-urlencode "key=$key" "http://127.0.0.1:$port/console/sign-in" \
    | grep -io 'orderly_console=[^;]*')
  [[ -n $cookie ]] || { echo "cannot sign in to the console" >&2; exit 1; }
  middle=$(sql "$url" "SELECT id FROM orders ORDER BY id LIMIT 1 OFFSET $(( n / 2 ))")
  if [[ $backend == sqlite ]]; then
    middle=$(sql "$url" "SELECT lower(substr(hex(id),1,8)||'-'||substr(hex(id),9,4)||'-'||substr(hex(id),13,4)||'-'||substr(hex(id),17,4)||'-'||substr(hex(id),21)) FROM orders ORDER BY id LIMIT 1 OFFSET $(( n / 2 ))")
  fi
  for page in /console/orders "/console/orders?email=customer7%40example.com" \
              "/console/orders?status=pending" "/console/orders/$middle" \
              "/console/jobs?state=discarded" /console/jobs /console/queues /console/overview/live /console/audit; do
    printf '  %-48s %s\n' "$page" "$(times "$page")"
  done
  kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
done
