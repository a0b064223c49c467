#!/usr/bin/env bash
# The fault suite: real `orderly` processes under load from `orderly bench orders --retry`
# while things go wrong, each scenario checking afterwards that no acknowledged order is
# missing, no Idempotency-Key has two orders, stock adds up and every receipt was sent.
#
#   ORDERLY_BIN=target/debug/orderly tests/faults.sh [scenario]...   (default: all)
#
# Scenarios: kill-sqlite, kill-postgres (20 SIGKILLs of `orderly run`), kill-split (20
# SIGKILLs of `orderly api` and `orderly worker` in turn, on PostgreSQL), postgres-restart (a
# PostgreSQL server of the suite's own restarted mid-load), redis-restart (Redis stopped and
# started mid-load), disk-full (the SQLite file's filesystem fills up, then gets room again),
# slow-clients (200 connections trickling a header while others order), slow-bodies
# (stalled anonymous bodies on the console and /v1 beside keyed orders), overload (10 times
# the measured capacity offered for 20 s).
# Figures go to stdout; docs/reliability.md keeps them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${ORDERLY_BIN:?set ORDERLY_BIN to the orderly binary under test}"
pg=${ORDERLY_FAULTS_PG:-postgres://postgres@127.0.0.1:5432}
dir=${ORDERLY_FAULTS_DIR:-$(mktemp -d)}
mkdir -p "$dir"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
# The suite's own PostgreSQL server runs as `postgres`, which must reach its data directory.
pg_data=$(mktemp -d /tmp/orderly-faults-pg.XXXXXX)
chmod 755 "$pg_data"; chown postgres "$pg_data"

# shellcheck source=checks.sh
source "$root/tests/checks.sh"

# Every process and mount the suite made is removed on the way out.
cleanup() {
  local pidfile
  for pidfile in "$dir"/*.pid; do
    [[ -e $pidfile ]] && kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
  done
  [[ -f $pg_data/PG_VERSION ]] && runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_data" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$pg_data"
  mountpoint -q "$dir/small" 2>/dev/null && umount -l "$dir/small" || true
}
trap cleanup EXIT

# Settings every orderly of the suite runs with: quick to rescue a killed worker's jobs, and
# rate limits out of the load's way (their own tests are in the API suite).
export ORDERLY_WORKER__LEASE=3s ORDERLY_WORKER__POLL_INTERVAL=200ms ORDERLY_WORKER__SCHEDULER=false
export ORDERLY_HTTP__DRAIN=0s ORDERLY_LOG_FORMAT=json
export ORDERLY_RATE_LIMITS__ADMIN__RATE=1000000 ORDERLY_RATE_LIMITS__ADMIN__BURST=1000000

# db_sql URL QUERY: one query on SQLite or PostgreSQL, rows as `a|b`.
db_sql() {
  case $1 in
    sqlite://*) sqlite3 -cmd '.timeout 5000' "${1#sqlite://}" "$2" ;;
    *) psql -qAtX "$1" -c "$2" ;;
  esac
}

# fresh_db NAME: a new, migrated database; prints its URL. PostgreSQL when NAME says so.
fresh_db() {
  local url name=orderly_faults_${1//-/_}
  case $1 in
    *postgres*|*split*)
      psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null 2>&1
      url="$pg/$name" ;;
    *) rm -f "$dir/$1.db"*; url="sqlite://$dir/$1.db" ;;
  esac
  ORDERLY_DATABASE_URL=$url "$ORDERLY_BIN" migrate >/dev/null 2>&1
  echo "$url"
}

# start_orderly NAME ROLE DB PORT [VAR=VALUE...]: starts (or restarts) one process, logging
# to $dir/NAME.log, its pid in $dir/NAME.pid. $launch, when set, comes before the command.
start_orderly() {
  local name=$1 role=$2 db=$3 port=$4; shift 4
  ${launch:-} env ORDERLY_DATABASE_URL="$db" ORDERLY_LISTEN="127.0.0.1:$port" \
    ORDERLY_WORKER__METRICS_LISTEN="127.0.0.1:$port" ORDERLY_MAIL_OUTBOX="$dir/$name-outbox" "$@" \
    "$ORDERLY_BIN" "$role" >>"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

stop_orderly() { # NAME
  local pid; pid=$(cat "$dir/$1.pid")
  kill -TERM "$pid" 2>/dev/null || true
  { wait "$pid"; } 2>/dev/null || true
  rm -f "$dir/$1.pid"
}

healthy() { curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$1/healthz"; }

admin_key() { ORDERLY_DATABASE_URL=$1 "$ORDERLY_BIN" keys create --role admin --name faults 2>/dev/null; }

# start_load NAME URL KEY SECONDS: orders from 4 clients with the retry rule, recording each
# acknowledged order in $dir/NAME.acknowledged.
start_load() {
  : >"$dir/$1.acknowledged"
  ORDERLY_BENCH_KEY=$3 "$ORDERLY_BIN" bench orders --url "$2" --concurrency 4 --duration "$4" \
    --products 10 --retry --retry-for 30s --timeout 5s --record "$dir/$1.acknowledged" --json \
    >"$dir/$1.bench.json" 2>"$dir/$1.bench.err" &
  load_pid=$!
  # Returns once its products are made and orders are going out: the faults come after that
  # (a process killed while the generator was still creating its products failed the run on
  # a slow machine, the set-up having no retry).
  wait_until 60 grep -q '^placing orders' "$dir/$1.bench.err" \
    || { echo "  the load generator did not start:"; cat "$dir/$1.bench.err"; exit 1; }
}

finish_load() { # NAME
  wait "$load_pid" || { echo "  the load generator failed:"; cat "$dir/$1.bench.err"; exit 1; }
  echo "  load: $(jq -c '{ok, errors, retries, orders_per_s: (.orders_per_s | floor)}' "$dir/$1.bench.json")"
  check "orders that finally failed" "$(jq .errors "$dir/$1.bench.json")" 0
}

# Orders and Idempotency-Keys as `key id` / `id` lines, ids as 32 hex digits, from either
# database.
stored_ids() {
  case $1 in
    sqlite://*) db_sql "$1" "SELECT lower(hex(id)) FROM orders" ;;
    *) db_sql "$1" "SELECT replace(id::text, '-', '') FROM orders" ;;
  esac
}
stored_keys() {
  case $1 in
    sqlite://*) db_sql "$1" "SELECT key || ' ' || lower(hex(order_id)) FROM idempotency_keys" ;;
    *) db_sql "$1" "SELECT key || ' ' || replace(order_id::text, '-', '') FROM idempotency_keys" ;;
  esac
}

# check_orders NAME DB: the invariants every scenario keeps.
check_orders() {
  local name=$1 db=$2 ack="$dir/$1.acknowledged.norm"
  awk '{ gsub("-", "", $2); print $1, $2 }' "$dir/$name.acknowledged" | sort -u >"$ack"
  stored_ids "$db" | sort >"$dir/$name.stored"
  stored_keys "$db" | sort >"$dir/$name.keys"
  local acknowledged stored
  acknowledged=$(wc -l <"$ack")
  stored=$(wc -l <"$dir/$name.stored")
  echo "  $acknowledged orders acknowledged, $stored stored"
  check "acknowledged orders missing" "$(cut -d' ' -f2 "$ack" | sort | comm -23 - "$dir/$name.stored" | wc -l)" 0
  check "keys answered with two different orders" "$(cut -d' ' -f1 "$ack" | uniq -d | wc -l)" 0
  check "acknowledged keys whose stored order differs" "$(comm -23 "$ack" "$dir/$name.keys" | wc -l)" 0
  check "orders stored = orders acknowledged" "$stored" "$acknowledged"
  check "stock + ordered quantity = starting stock" \
    "$(db_sql "$db" "SELECT (SELECT sum(stock) FROM products) + (SELECT coalesce(sum(quantity), 0) FROM order_lines) = (SELECT count(*) * 1000000000 FROM products)")" \
    "$(case $db in sqlite://*) echo 1 ;; *) echo t ;; esac)"
}

# check_receipts DB: within 60 s every order's receipt job has completed.
check_receipts() {
  local query="SELECT count(*) FROM jobs WHERE kind = 'send_receipt' AND state <> 'completed'"
  receipts_done() { [[ $(db_sql "$1" "$query") == 0 ]]; }
  local waited; waited=$(now_ms)
  wait_until 60 receipts_done "$1" || true
  echo "  receipts all sent $(( $(now_ms) - waited )) ms after the load ended"
  check "receipt jobs not completed" "$(db_sql "$1" "$query")" 0
  check "orders without a receipt job" \
    "$(db_sql "$1" "SELECT (SELECT count(*) FROM orders) - (SELECT count(*) FROM jobs WHERE kind = 'send_receipt')")" 0
}

# kill_repeatedly NAME... : 20 SIGKILLs, 0.4-0.9 s apart, of the named processes in turn,
# each restarted at once with the command it was started with.
kill_repeatedly() {
  local names=("$@") i name
  for i in $(seq 1 20); do
    sleep "0.$(( RANDOM % 6 + 4 ))"
    name=${names[$(( i % ${#names[@]} ))]}
    kill -KILL "$(cat "$dir/$name.pid")"
    { wait "$(cat "$dir/$name.pid")"; } 2>/dev/null || true
    "restart_$name"
  done
}

kill_run() { # sqlite|postgres
  local name="kill-$1" db port key
  echo "== 20 SIGKILLs of \`orderly run\` on $1 under load"
  db=$(fresh_db "$name"); port=$(free_port); key=$(admin_key "$db")
  eval "restart_$name() { start_orderly $name run '$db' $port; }"
  "restart_$name"
  wait_until 20 healthy "$port" || { echo "  orderly did not start"; tail "$dir/$name.log"; exit 1; }
  start_load "$name" "http://127.0.0.1:$port" "$key" 18
  kill_repeatedly "$name"
  finish_load "$name"
  echo "  retried requests: $(jq .retries "$dir/$name.bench.json")"
  check_orders "$name" "$db"
  check_receipts "$db"
  stop_orderly "$name"
}

kill_split() {
  local db api_port worker_port key
  echo "== 20 SIGKILLs of \`orderly api\` and \`orderly worker\` in turn, on PostgreSQL, under load"
  db=$(fresh_db split); api_port=$(free_port); worker_port=$(free_port); key=$(admin_key "$db")
  eval "restart_split-api() { start_orderly split-api api '$db' $api_port; }"
  eval "restart_split-worker() { start_orderly split-worker worker '$db' $worker_port; }"
  restart_split-api; restart_split-worker
  wait_until 20 healthy "$api_port" || { echo "  orderly api did not start"; exit 1; }
  start_load split "http://127.0.0.1:$api_port" "$key" 18
  kill_repeatedly split-api split-worker
  finish_load split
  echo "  retried requests: $(jq .retries "$dir/split.bench.json")"
  check_orders split "$db"
  check_receipts "$db"
  stop_orderly split-api; stop_orderly split-worker
}

# probe URL KEY OUT: until killed, a GET of URL every 100 ms, `<ms> <status> <seconds>` lines.
probe() {
  while :; do
    echo "$(now_ms) $(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 5 -H "Authorization: Bearer $2" "$1")"
    sleep 0.1
  done >"$3"
}

# order URL KEY IDEMPOTENCY-KEY SKU: places one order, prints its status (body in $dir/last).
order() {
  curl -s -o "$dir/last" -w '%{http_code}' --max-time 10 -X POST "$1/v1/orders" \
    -H "Authorization: Bearer $2" -H "Idempotency-Key: $3" -H 'Content-Type: application/json' \
    -d "{\"customer\":{\"email\":\"probe@example.com\",\"name\":\"Probe\"},\"lines\":[{\"sku\":\"$4\",\"quantity\":1}]}"
}

postgres_restart() {
  echo "== PostgreSQL restarted under load (a server of the suite's own)"
  local data="$pg_data" pg_port port key db
  pg_port=$(free_port); port=$(free_port)
  runuser -u postgres -- "$pg_bin/initdb" -D "$data" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $pg_port -k $data -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  psql -qAtX "postgres://postgres@127.0.0.1:$pg_port/postgres" -c "CREATE DATABASE faults"
  db="postgres://postgres@127.0.0.1:$pg_port/faults"
  ORDERLY_DATABASE_URL=$db "$ORDERLY_BIN" migrate >/dev/null 2>&1
  key=$(admin_key "$db")
  # A connection is waited for at most 2 s, shorter than the outage: the first reads find
  # the database away, and the rest must be answered at once.
  export ORDERLY_DATABASE__ACQUIRE_TIMEOUT=2s
  start_orderly pg-restart run "$db" "$port"
  unset ORDERLY_DATABASE__ACQUIRE_TIMEOUT
  wait_until 20 healthy "$port" || { echo "  orderly did not start"; exit 1; }
  start_load pg-restart "http://127.0.0.1:$port" "$key" 14
  probe "http://127.0.0.1:$port/v1/orders?limit=1" "$key" "$dir/pg-restart.probe" &
  local probe_pid=$!
  sleep 4
  # Stopped (fast shutdown: sessions cut), down for 4 s, started again.
  local down up
  down=$(now_ms)
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  sleep 4
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $pg_port -k $data -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  up=$(now_ms)
  echo "  PostgreSQL was down for $(( up - down )) ms (pg_ctl stop -m fast, 4 s, start)"
  finish_load pg-restart
  kill "$probe_pid"; { wait "$probe_pid"; } 2>/dev/null || true
  echo "  retried requests: $(jq .retries "$dir/pg-restart.bench.json")"
  # From the probe: how long reads took from the stop on (the first requests wait for a
  # connection up to database.acquire_timeout, 2 s here; once orderly's own connection
  # attempt fails too, the rest are answered 503 at once), which failed, and when reads
  # succeeded again for good after PostgreSQL accepted connections.
  local failed slowest recovered refused_p50
  failed=$(awk -v t="$down" '$1 >= t && $2 != 200' "$dir/pg-restart.probe" | wc -l)
  refused_p50=$(awk -v t="$down" '$1 >= t && $2 == 503 { print $3 * 1000 }' "$dir/pg-restart.probe" \
    | sort -n | awk '{ v[NR] = $1 } END { printf "%d", NR ? v[int((NR + 1) / 2)] : 99999 }')
  slowest=$(awk -v t="$down" '$1 >= t - 200 { if ($3 > m) m = $3 } END { printf "%d", m * 1000 }' "$dir/pg-restart.probe")
  recovered=$(awk -v t="$down" -v up="$up" '
    $1 >= t && $2 != 200 { good = 0 }
    $1 >= t && $2 == 200 && !good { good = $1 + $3 * 1000 }
    END { r = (good ? good : 999999999) - up; printf "%d", (r < 0 ? 0 : r) }' "$dir/pg-restart.probe")
  echo "  probe: $failed reads failed from the stop on, half of them within $refused_p50 ms; the slowest read took $slowest ms; reads succeeded for good $recovered ms after PostgreSQL was up"
  check "failed reads were 503s" "$(awk -v t="$down" '$1 >= t && $2 != 200 && $2 != 503' "$dir/pg-restart.probe" | wc -l)" 0
  check "503s came at once while PostgreSQL was down (median within 100 ms)" "$(( refused_p50 <= 100 ))" 1
  check "every read answered within the acquire timeout (2 s) and 1 s" "$(( slowest <= 3000 ))" 1
  check "reads recovered within 5 s of PostgreSQL" "$(( recovered <= 5000 ))" 1
  check_orders pg-restart "$db"
  check_receipts "$db"
  stop_orderly pg-restart
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
}

redis_restart() {
  echo "== Redis stopped and started under load (cache and rate limits on it)"
  local redis_port port key db product
  redis_port=$(free_port); port=$(free_port)
  stop_redis() { kill -KILL "$(cat "$dir/redis.pid")"; { wait "$(cat "$dir/redis.pid")"; } 2>/dev/null || true; rm -f "$dir/redis.pid"; }
  start_redis() {
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >>"$dir/redis.log" 2>&1 &
    echo $! >"$dir/redis.pid"
    wait_until 10 redis-cli -p "$redis_port" ping
  }
  start_redis
  db=$(fresh_db redis-restart); key=$(admin_key "$db")
  start_orderly redis-restart run "$db" "$port" ORDERLY_REDIS_URL="redis://127.0.0.1:$redis_port"
  wait_until 20 healthy "$port" || { echo "  orderly did not start"; exit 1; }
  product=$(curl -s -X POST "http://127.0.0.1:$port/v1/products" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d '{"sku":"REDIS-PROBE","name":"Probe","price":100,"stock":1000000000}' | jq -r .id)
  start_load redis-restart "http://127.0.0.1:$port" "$key" 12
  probe "http://127.0.0.1:$port/v1/products/$product" "$key" "$dir/redis-restart.probe" &
  local probe_pid=$!
  sleep 3
  stop_redis
  local stopped; stopped=$(now_ms)
  sleep 3
  start_redis
  echo "  Redis was down for $(( $(now_ms) - stopped )) ms"
  # Back within a few seconds: at most a second of "using the database" after a failure, then a
  # reconnect. On a loaded machine every order's invalidation that times out (they are tried
  # even while the breaker is open) opens it for another second, so the first write back can
  # take longer: wait up to 20 s rather than a fixed 2 s (one CI run saw none within 10 s).
  # A product read cached again (`orderly:product:…`, kept for minutes): the rate limiter's
  # keys live a few milliseconds, so seeing one of those said nothing (and made this check
  # race the probe's next cache fill).
  redis_keys() { redis-cli -p "$redis_port" --scan --pattern 'orderly:product:*' | grep -q .; }
  wait_until 20 redis_keys || true
  local keys_back; keys_back=$(redis-cli -p "$redis_port" --scan --pattern 'orderly:product:*' | wc -l)
  finish_load redis-restart
  kill "$probe_pid"; { wait "$probe_pid"; } 2>/dev/null || true
  local reads; reads=$(wc -l <"$dir/redis-restart.probe")
  echo "  probe: $reads reads of a cached product"
  check "reads that failed while Redis was away" "$(awk '$2 != 200' "$dir/redis-restart.probe" | wc -l)" 0
  check "orderly used Redis again once it was back" "$(( keys_back > 0 ))" 1
  # A 503 `overloaded` is the designed answer when the SQLite file's disk stalls (another
  # tenant's writes can make one commit wait past orders.max_queue_wait); the load counts
  # those as shed and retries them. Any other 5xx would be Redis's loss leaking to clients.
  local answered_5xx shed
  answered_5xx=$(jq -r 'select(.status != null and .status >= 500) | .status' "$dir/redis-restart.log" 2>/dev/null | wc -l)
  shed=$(jq .shed "$dir/redis-restart.bench.json")
  echo "  answers 5xx in the log: $answered_5xx, of which the load counted $shed as shedding (503 overloaded)"
  check "answers 5xx that were not shedding" "$(( answered_5xx - shed ))" 0
  (( answered_5xx == 0 )) ||
    jq -c 'select(.level == "WARN" or .level == "ERROR") | {timestamp, message, error, code}' "$dir/redis-restart.log" | head -n 8
  # The probe's product is not one of the load's: leave it out of the stock sum.
  db_sql "$db" "DELETE FROM products WHERE sku = 'REDIS-PROBE'"
  check_orders redis-restart "$db"
  stop_orderly redis-restart
  stop_redis
}

disk_full() {
  echo "== the SQLite file's filesystem fills up, then gets room again"
  local small="$dir/small" port key db url statuses=() status i
  mkdir -p "$small"
  mountpoint -q "$small" || mount -t tmpfs -o size=24m tmpfs "$small"
  db="sqlite://$small/orderly.db"; port=$(free_port); url="http://127.0.0.1:$port"
  ORDERLY_DATABASE_URL=$db "$ORDERLY_BIN" migrate >/dev/null 2>&1
  key=$(admin_key "$db")
  start_orderly disk-full run "$db" "$port"
  wait_until 20 healthy "$port" || { echo "  orderly did not start"; exit 1; }
  curl -s -o /dev/null -X POST "$url/v1/products" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d '{"sku":"FULL","name":"Full","price":100,"stock":1000000}'
  for i in $(seq 1 20); do order "$url" "$key" "before-$i" FULL >/dev/null; done
  # Fill the filesystem to the last byte.
  dd if=/dev/zero of="$small/ballast" bs=64k status=none 2>/dev/null || true
  for i in $(seq 1 20); do statuses+=("$(order "$url" "$key" "full-$i" FULL)"); done
  local codes; codes=$(printf '%s\n' "${statuses[@]}" | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
  echo "  20 orders on a full disk: $codes"
  check "orders answered 500 on a full disk" "$(printf '%s\n' "${statuses[@]}" | grep -c '^500$' || true)" 0
  check "orders refused with 507 storage_full" "$(printf '%s\n' "${statuses[@]}" | grep -c '^507$' || true)" 20
  check "the last answer's code" "$(jq -r .code "$dir/last")" storage_full
  check "/healthz on a full disk" "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" 200
  rm -f "$small/ballast"
  local placed=0 again
  for i in $(seq 1 20); do
    again=$(order "$url" "$key" "full-$i" FULL)
    [[ $again == 201 ]] && placed=$((placed + 1))
  done
  check "the refused orders placed once there is room (same keys)" "$placed" 20
  stop_orderly disk-full
  check "PRAGMA integrity_check" "$(sqlite3 "$small/orderly.db" 'PRAGMA integrity_check')" ok
  check "orders stored" "$(sqlite3 "$small/orderly.db" 'SELECT count(*) FROM orders')" 40
  check "stock + ordered quantity = starting stock" \
    "$(sqlite3 "$small/orderly.db" 'SELECT (SELECT stock FROM products) + (SELECT sum(quantity) FROM order_lines)')" 1000000
  umount "$small"
}

slow_clients() {
  echo "== 200 slow clients (a header byte a second) while others order"
  local db port key
  db=$(fresh_db slow-clients); port=$(free_port); key=$(admin_key "$db")
  start_orderly slow-clients run "$db" "$port" ORDERLY_HTTP__HEADER_READ_TIMEOUT=4s
  wait_until 20 healthy "$port" || { echo "  orderly did not start"; exit 1; }
  local bench=("$ORDERLY_BIN" bench orders --url "http://127.0.0.1:$port" --concurrency 4 --duration 6 --products 10 --json)
  ORDERLY_BENCH_KEY=$key "${bench[@]}" >"$dir/slow-clients.alone.json" 2>>"$dir/slow-clients.bench.err"
  /usr/bin/python3 "$root/tests/slow_clients.py" 127.0.0.1 "$port" 200 8 1 >"$dir/slow-clients.slow.json" &
  local slow_pid=$!
  sleep 1
  ORDERLY_BENCH_KEY=$key "${bench[@]}" >"$dir/slow-clients.with.json" 2>>"$dir/slow-clients.bench.err"
  wait "$slow_pid"
  local alone with slow
  alone=$(jq -r '"\(.orders_per_s | floor) orders/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, \(.errors) errors (\(.shed) shed)"' "$dir/slow-clients.alone.json")
  with=$(jq -r '"\(.orders_per_s | floor) orders/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, \(.errors) errors (\(.shed) shed)"' "$dir/slow-clients.with.json")
  slow=$(cat "$dir/slow-clients.slow.json")
  echo "  alone: $alone"
  echo "  with 200 slow clients: $with"
  echo "  slow clients: $slow"
  check "orders that failed beside the slow clients" "$(jq .errors "$dir/slow-clients.with.json")" 0
  check "slow connections closed by the header timeout (4 s)" "$(jq .closed_by_server <<<"$slow")" 200
  check "none closed before the timeout" "$(jq '.first_close_s >= 3.5' <<<"$slow")" true
  stop_orderly slow-clients
}

# A flood of anonymous requests whose bodies stall (console sign-ins and /v1 orders, from six
# client addresses at the anonymous rate) beside keyed orders: each stalled body is cut off at
# the body timeout (5 s here, so the suite waits less; 10 s by default), the flood holds at
# most its share of http.max_in_flight, and the keyed orders keep being placed.
slow_bodies() {
  echo "== a flood of stalled anonymous bodies (console and /v1, six addresses) beside keyed orders"
  local db port key url
  db=$(fresh_db slow-bodies); port=$(free_port); key=$(admin_key "$db"); url="http://127.0.0.1:$port"
  start_orderly slow-bodies run "$db" "$port" ORDERLY_HTTP__BODY_READ_TIMEOUT=5s
  wait_until 20 healthy "$port" || { echo "  orderly did not start"; exit 1; }
  : >"$dir/slow-bodies.acknowledged"
  local bench=("$ORDERLY_BIN" bench orders --url "$url" --concurrency 4 --products 10 --timeout 10s --json --record "$dir/slow-bodies.acknowledged")
  ORDERLY_BENCH_KEY=$key "${bench[@]}" --duration 4 >"$dir/slow-bodies.alone.json" 2>>"$dir/slow-bodies.bench.err"
  local rss_before; rss_before=$(ps -o rss= -p "$(cat "$dir/slow-bodies.pid")")
  /usr/bin/python3 "$root/tests/slow_bodies.py" 127.0.0.1 "$port" 12 20 127.0.0.2 127.0.0.3 127.0.0.4 \
    127.0.0.5 127.0.0.6 127.0.0.7 >"$dir/slow-bodies.flood.json" &
  local flood_pid=$!
  ORDERLY_BENCH_KEY=$key "${bench[@]}" --duration 12 >"$dir/slow-bodies.with.json" 2>>"$dir/slow-bodies.bench.err"
  local rss_flood; rss_flood=$(ps -o rss= -p "$(cat "$dir/slow-bodies.pid")")
  wait "$flood_pid"
  local rss_after; rss_after=$(ps -o rss= -p "$(cat "$dir/slow-bodies.pid")")
  local line='"\(.ok) placed, \(.errors) failed (\(.shed) shed), \(.orders_per_s | floor) orders/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms"'
  echo "  keyed orders alone (4 s):        $(jq -r "$line" "$dir/slow-bodies.alone.json")"
  echo "  keyed orders beside the flood:   $(jq -r "$line" "$dir/slow-bodies.with.json")"
  echo "  flood: $(cat "$dir/slow-bodies.flood.json")"
  echo "  resident memory: $(( rss_before / 1024 )) MB before, $(( rss_flood / 1024 )) MB at the flood's end, $(( rss_after / 1024 )) MB once every stalled body was cut off"
  local ok errors
  ok=$(jq .ok "$dir/slow-bodies.with.json"); errors=$(jq .errors "$dir/slow-bodies.with.json")
  check "keyed orders beside the flood answered 2xx, at least 99 %" "$(( ok * 100 >= (ok + errors) * 99 ))" 1
  check "stalled connections still open after the flood" "$(jq '.answers.open' "$dir/slow-bodies.flood.json")" 0
  check "no stalled body held past the body timeout (5 s) and 2 s" "$(jq '.longest_held_s <= 7' "$dir/slow-bodies.flood.json")" true
  check "stalled console sign-ins answered 408 or shed 503, nothing else" \
    "$(jq '[.answers | to_entries[] | select(.key != "408" and .key != "503" and .key != "401" and .key != "429" and .key != "open")] | length' "$dir/slow-bodies.flood.json")" 0
  stop_orderly slow-bodies
  check_orders slow-bodies "$db"
}

overload() {
  echo "== 10 times the measured capacity offered for 20 s"
  local db port key url
  db=$(fresh_db overload); port=$(free_port); key=$(admin_key "$db"); url="http://127.0.0.1:$port"
  # orderly on one core and the load generator on the other, as if on two machines: a
  # generator sending ten times what orderly takes would otherwise take orderly's CPU.
  launch="taskset -c 0" start_orderly overload run "$db" "$port"
  wait_until 20 healthy "$port" || { echo "  orderly did not start"; exit 1; }
  : >"$dir/overload.acknowledged"
  local bench=(taskset -c 1 "$ORDERLY_BIN" bench orders --url "$url" --products 10 --timeout 60s --json --record "$dir/overload.acknowledged")
  ORDERLY_BENCH_KEY=$key "${bench[@]}" --concurrency 8 --duration 5 >"$dir/overload.capacity.json" 2>>"$dir/overload.bench.err"
  local capacity normal_p99
  capacity=$(jq '.orders_per_s | floor' "$dir/overload.capacity.json")
  normal_p99=$(jq '.p99_ms' "$dir/overload.capacity.json")
  echo "  capacity: $capacity orders/s from 8 clients, p99 $normal_p99 ms"
  ORDERLY_BENCH_KEY=$key "${bench[@]}" --rate $(( capacity * 10 )) --concurrency 4000 --duration 20 \
    >"$dir/overload.json" 2>>"$dir/overload.bench.err"
  jq -r '"  offered \(.ok + .errors + .skipped) orders in \(.seconds | floor) s: \(.ok) placed (\(.orders_per_s | floor)/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms), \(.shed) shed, \(.errors - .shed) other failures, \(.skipped) not sent (4,000 unanswered)"' "$dir/overload.json"
  echo "  admitted orders' p99 is $(jq --argjson normal "$normal_p99" '(.p99_ms / $normal * 10 | floor) / 10' "$dir/overload.json") times the normal p99 (the aim is 2; not yet met, see docs/reliability.md)"
  # The server's answers, from its metrics: 5xx only as shedding (each 503 one the generator
  # counted as `overloaded`). Requests that got no answer at all (a connection the kernel's
  # backlog dropped under this load) are reported, not failed: a client retries them as a 503.
  local metrics answered_5xx answered_503
  metrics=$(curl -s "$url/metrics")
  answered_5xx=$(awk '/^http_requests_total\{/ && /status="5[0-9][0-9]"/ && !/status="503"/ { n += $NF } END { print n + 0 }' <<<"$metrics")
  answered_503=$(awk '/^http_requests_total\{/ && /status="503"/ { n += $NF } END { print n + 0 }' <<<"$metrics")
  echo "  requests that got no answer (connection errors, timeouts): $(jq '.errors - .shed' "$dir/overload.json")"
  check "answers 5xx other than 503" "$answered_5xx" 0
  check "503s that were not shedding (overloaded)" "$(( answered_503 - $(jq -s 'map(.shed) | add' "$dir/overload.capacity.json" "$dir/overload.json") ))" 0
  echo "  shed at the order queue: $(awk '/^orders_shed_total/' <<<"$metrics" | tr '\n' ' ')"
  stop_orderly overload
  check_orders overload "$db"
}

run_scenario() {
  local started; started=$(date +%s)
  case $1 in
    kill-sqlite) kill_run sqlite ;;
    kill-postgres) kill_run postgres ;;
    kill-split) kill_split ;;
    postgres-restart) postgres_restart ;;
    redis-restart) redis_restart ;;
    disk-full) disk_full ;;
    slow-clients) slow_clients ;;
    slow-bodies) slow_bodies ;;
    overload) overload ;;
    *) echo "unknown scenario: $1"; exit 2 ;;
  esac
  echo "  ($1 took $(( $(date +%s) - started )) s)"
}

scenarios=("$@")
(( ${#scenarios[@]} )) || scenarios=(kill-sqlite kill-postgres kill-split postgres-restart redis-restart disk-full slow-clients slow-bodies overload)
for scenario in "${scenarios[@]}"; do
  run_scenario "$scenario"
done
if (( failures )); then
  echo "faults: $failures check(s) failed; logs in $dir"
  exit 1
fi
echo "faults: every check passed"
