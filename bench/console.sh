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
# shellcheck source=lib.sh
source bench/lib.sh
bin=$(bench_binary)
work=$(mktemp -d /var/tmp/orderly-console.XXXXXX)
port=18190
trap stop_all EXIT
export ORDERLY_WORKER__SCHEDULER=false ORDERLY_LOG_FORMAT=json ORDERLY_HTTP__DRAIN=0s
export ORDERLY_RATE_LIMITS__ENABLED=false ORDERLY_MAIL_OUTBOX="$work/outbox"

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
  url=$(fresh_database "$backend" orderly_console)
  key=$(ORDERLY_DATABASE_URL=$url "$bin" keys create --role admin --name console 2>/dev/null)
  seed_orders "$url" "$key" "$port"
  started=$SECONDS
  bulk_load "$backend" "$url" "$n"
  echo "  loaded in $(( SECONDS - started )) s: $(sql "$url" "SELECT count(*) FROM orders") orders, $(sql "$url" "SELECT count(*) FROM jobs") jobs"
  pid=$(start run "$url" "$port")
  # As a browser signs in: the page first, for its form token and the cookie that goes with it.
  form_page=$(curl -s -i "http://127.0.0.1:$port/console/sign-in")
  form_cookie=$(grep -io 'orderly_console_sign_in=[^;]*' <<<"$form_page")
  form_token=$(grep -o 'name="csrf" value="[^"]*' <<<"$form_page" | cut -d'"' -f4)
  cookie=$(curl -s -i -X POST -H "Cookie: $form_cookie" --data-urlencode "csrf=$form_token" \
    --data-urlencode "key=$key" "http://127.0.0.1:$port/console/sign-in" \
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
  stop "$pid"
done
