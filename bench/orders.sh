#!/usr/bin/env bash
# Order throughput over HTTP against the raw-SQL ceiling, on SQLite and PostgreSQL, in one
# invocation so each ratio comes from one run on one disk.
#
#   bench/orders.sh [concurrency=32] [seconds=10]
#
# SQLite ceiling: `orderly bench ceiling` (the same order transaction, one per order, no HTTP).
# PostgreSQL ceiling: pgbench running bench/pg_order.sql (the same statements) at the same
# concurrency. Needs PostgreSQL on 127.0.0.1:5432 (override with ORDERLY_BENCH_POSTGRES).
set -euo pipefail
cd "$(dirname "$0")/.."
concurrency=${1:-32}
seconds=${2:-10}
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
port=18080

cargo build --release --quiet --bin orderly
bin="${CARGO_TARGET_DIR:-target}/release/orderly"
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# Starts `orderly run` on $1, places orders over HTTP, prints the report with peak RSS added.
http_run() {
  local url=$1 key
  ORDERLY_DATABASE_URL=$url "$bin" migrate 2>/dev/null
  key=$(ORDERLY_DATABASE_URL=$url "$bin" keys create --role admin --name bench 2>/dev/null)
  # `bench orders` places its orders with the admin key, whose default rate limit (1,000 a
  # second) is below what is measured here: lifted, the limiter still runs.
  ORDERLY_DATABASE_URL=$url ORDERLY_LISTEN=127.0.0.1:$port ORDERLY_MAIL_OUTBOX="$work/outbox" \
    ORDERLY_RATE_LIMITS__ADMIN__RATE=1000000 ORDERLY_RATE_LIMITS__ADMIN__BURST=1000000 \
    "$bin" run >"$work/server.log" 2>&1 &
  server=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.05; done
  local report
  report=$("$bin" bench orders --url "http://127.0.0.1:$port" --key "$key" \
    --concurrency "$concurrency" --duration "$seconds" --json 2>/dev/null)
  local peak_kb
  peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
  kill -TERM "$server"; wait "$server" || true; server=
  python3 -c "import json,sys; r=json.loads(sys.argv[1]); r['peak_rss_mb']=round($peak_kb/1024,1); print(json.dumps(r))" "$report"
}

fresh_pg() {
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" 2>/dev/null
}

echo "== SQLite, $concurrency clients, ${seconds}s each"
sqlite_http=$(http_run "sqlite://$work/http.db")
sqlite_ceiling=$("$bin" bench ceiling --database-url "sqlite://$work/ceiling.db" \
  --concurrency "$concurrency" --duration "$seconds" --json 2>/dev/null)
echo "orderly over HTTP:        $sqlite_http"
echo "ceiling (direct, 1 txn/order): $sqlite_ceiling"

echo "== PostgreSQL, $concurrency clients, ${seconds}s each"
fresh_pg orderly_bench_http
pg_http=$(http_run "$pg/orderly_bench_http")
fresh_pg orderly_bench_pgbench
ORDERLY_DATABASE_URL="$pg/orderly_bench_pgbench" "$bin" migrate 2>/dev/null
psql "$pg/orderly_bench_pgbench" -q -f bench/pg_setup.sql
pgbench_tps=$(pgbench "$pg/orderly_bench_pgbench" -n -M prepared -c "$concurrency" -j 2 \
  -T "$seconds" -D key_id=00000000-0000-7000-8000-000000000001 -D products=100 \
  -f bench/pg_order.sql 2>/dev/null | awk '/^tps/ {print $3}')
echo "orderly over HTTP:        $pg_http"
echo "ceiling (pgbench, 1 txn/order): ${pgbench_tps} tps"

sqlite_ratio=$(python3 -c "print(round($(echo "$sqlite_http" | field orders_per_s) / $(echo "$sqlite_ceiling" | field orders_per_s), 2))")
pg_ratio=$(python3 -c "print(round($(echo "$pg_http" | field orders_per_s) / $pgbench_tps, 2))")
echo
echo "SQLite:     orderly/ceiling = ${sqlite_ratio}x"
echo "PostgreSQL: orderly/pgbench = ${pg_ratio}x"
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS orderly_bench_http" -c "DROP DATABASE IF EXISTS orderly_bench_pgbench" 2>/dev/null
