#!/usr/bin/env bash
# Cluster tests: real `orderly api` and `orderly worker` processes behind a real HAProxy
# (scripts/cluster.sh), on the machine's PostgreSQL and Redis, under load from
# `orderly bench orders --retry`. Each scenario checks afterwards, in the database and in the
# SMTP sink's maildir, that no acknowledged order is missing, none is doubled, stock adds up
# and every receipt arrived.
#
#   ORDERLY_BIN=target/debug/orderly tests/cluster.sh [rolling|kill]...   (default: both)
#
# The database-failover scenarios (switchover, postmaster-kill, node-kill) need
# ORDERLY_CLUSTER_PG to be the read-write port of scripts/ha-cluster.sh; tests/failover.sh
# starts that cluster and runs them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${ORDERLY_BIN:?set ORDERLY_BIN to the orderly binary under test}"
export ORDERLY_BIN

pg=${ORDERLY_CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}
export ORDERLY_CLUSTER_PG=$pg
export ORDERLY_CLUSTER_DB="orderly_cluster_test_$$"
export ORDERLY_CLUSTER_DIR=${ORDERLY_CLUSTER_TEST_DIR:-$(mktemp -d)}/cluster
# A short lease so that a killed worker's jobs are rescued within seconds.
export ORDERLY_WORKER__LEASE=3s
export ORDERLY_WORKER__POLL_INTERVAL=200ms
export ORDERLY_LB_PORT=$(/usr/bin/python3 "$root/scripts/free-port.py")
dir=$ORDERLY_CLUSTER_DIR
cluster() { "$root/scripts/cluster.sh" "$@"; }
sql() { psql -qAtX "$pg/$ORDERLY_CLUSTER_DB" -c "$1"; }
trap 'cluster down >/dev/null 2>&1 || true' EXIT

# shellcheck source=checks.sh
source "$root/tests/checks.sh"

# Places orders through the balancer with the retry rule, 16 clients, for $1 seconds.
start_load() {
  ORDERLY_BENCH_KEY=$(cat "$dir/admin.key") "$ORDERLY_BIN" bench orders \
    --url "$(cat "$dir/url")" --concurrency 16 --duration "$1" --products 20 \
    --retry --retry-for 20s --timeout 5s --record "$dir/acknowledged.txt" --json \
    >"$dir/bench.json" 2>"$dir/bench.err" &
  load_pid=$!
}

finish_load() {
  wait "$load_pid" || { echo "the load generator failed:"; cat "$dir/bench.err"; exit 1; }
  echo "  load: $(cat "$dir/bench.json")"
  check "orders that finally failed" "$(jq .errors "$dir/bench.json")" 0
}

# Waits until no receipt job is waiting or running (at most 120 s).
wait_for_receipts() {
  local deadline=$(( $(date +%s) + 120 ))
  while [[ $(sql "SELECT count(*) FROM jobs WHERE kind = 'send_receipt' AND state IN ('available', 'running')") != 0 ]]; do
    (( $(date +%s) < deadline )) || { echo "  receipts still pending after 120 s"; break; }
    sleep 1
  done
}

# The invariants every scenario must keep. Leaves the counts of acknowledged orders missing
# and of keys answered twice in $missing and $doubled.
check_orders() {
  sql "CREATE TABLE acknowledged (key text, id text)"
  psql -qAtX "$pg/$ORDERLY_CLUSTER_DB" \
    -c "\\copy acknowledged FROM '$dir/acknowledged.txt' WITH (FORMAT text, DELIMITER ' ')"
  local acknowledged orders
  acknowledged=$(sql "SELECT count(*) FROM acknowledged")
  orders=$(sql "SELECT count(*) FROM orders")
  echo "  $acknowledged orders acknowledged, $orders stored"
  missing=$(sql "SELECT count(*) FROM acknowledged a LEFT JOIN orders o ON o.id = a.id::uuid WHERE o.id IS NULL")
  doubled=$(sql "SELECT count(*) - count(DISTINCT key) FROM acknowledged")
  check "acknowledged orders missing" "$missing" 0
  check "acknowledged keys answered with two different orders" "$doubled" 0
  check "keys whose stored order is not the acknowledged one" \
    "$(sql "SELECT count(*) FROM acknowledged a LEFT JOIN idempotency_keys k ON k.key = a.key WHERE k.order_id IS DISTINCT FROM a.id::uuid")" 0
  check "orders without exactly one Idempotency-Key" \
    "$(sql "SELECT count(*) FROM orders o WHERE (SELECT count(*) FROM idempotency_keys k WHERE k.order_id = o.id) <> 1")" 0
  check "orders stored = orders acknowledged" "$orders" "$acknowledged"
  check "stock + ordered quantity = starting stock" \
    "$(sql "SELECT (SELECT sum(stock) FROM products) + (SELECT coalesce(sum(quantity), 0) FROM order_lines) = (SELECT count(*) * 1000000000 FROM products)")" t
}

# Receipts by Message-ID in the SMTP sink's maildir. $1: whether a duplicate is allowed (a
# worker killed between sending and recording the send sends again, with the same Message-ID).
check_receipts() {
  wait_for_receipts
  local ids="$dir/receipt-ids.txt"
  find "$dir/mail/new" "$dir/mail/cur" -type f -exec grep -h -i -m1 '^Message-ID:' {} + 2>/dev/null \
    | sed -E 's/^[^<]*<receipt-([0-9a-f-]+)@.*$/\1/I' | sort >"$ids" || true
  sql "SELECT id FROM orders ORDER BY id" >"$dir/order-ids.txt"
  check "orders without a receipt" "$(comm -23 "$dir/order-ids.txt" <(sort -u "$ids") | wc -l)" 0
  check "receipts for no order" "$(comm -13 "$dir/order-ids.txt" <(sort -u "$ids") | wc -l)" 0
  local duplicates; duplicates=$(uniq -d "$ids" | wc -l)
  if [[ $1 == exactly-once ]]; then
    check "receipts sent twice" "$duplicates" 0
  else
    echo "  receipts sent twice (same Message-ID, deduplicated by the receiver): $duplicates"
  fi
  check "receipt jobs not completed" \
    "$(sql "SELECT count(*) FROM jobs WHERE kind = 'send_receipt' AND state <> 'completed'")" 0
  # What became of any that did not complete, for the one reading the log.
  sql "SELECT id, state, attempt, max_attempts, coalesce(last_error, '') FROM jobs \
       WHERE kind = 'send_receipt' AND state <> 'completed' LIMIT 5" | sed 's/^/        /'
}

rolling() {
  echo "== rolling restart under load: every API and worker restarted in turn"
  cluster up >/dev/null
  start_load 30
  sleep 3
  local started; started=$(now_ms)
  cluster roll
  echo "  roll took $(( $(now_ms) - started )) ms"
  check "roll finished while the load ran" \
    "$(kill -0 "$load_pid" 2>/dev/null && echo yes || echo no)" yes
  finish_load
  check_orders
  check_receipts exactly-once
  cluster down >/dev/null
}

kill_under_load() {
  echo "== a process killed under load: SIGKILL one API, then one worker"
  cluster up >/dev/null
  start_load 20
  sleep 4
  local server; server=$(cat "$dir/api-2.server")
  kill -KILL "$(cat "$dir/api-2.pid")"
  local killed; killed=$(now_ms)
  local sock="$dir/haproxy.sock"
  until [[ $(echo "show stat" | socat - "UNIX-CONNECT:$sock" | awk -F, -v s="$server" '$1 == "orderly_api" && $2 == s { print $18 }') == DOWN ]]; do
    (( $(now_ms) - killed < 10000 )) || break
    sleep 0.05
  done
  local routed_around=$(( $(now_ms) - killed ))
  echo "  HAProxy took api-2 out ${routed_around} ms after SIGKILL"
  check "taken out within 2 s" "$(( routed_around <= 2000 ))" 1

  sleep 3
  local worker_pid; worker_pid=$(cat "$dir/worker-1.pid")
  local held; held=$(sql "SELECT string_agg(id::text, ',') FROM jobs WHERE state = 'running' AND locked_by LIKE '%-$worker_pid-%'")
  kill -KILL "$worker_pid"
  local held_count=0
  [[ -n $held ]] && held_count=$(tr ',' '\n' <<<"$held" | wc -l)
  echo "  worker-1 held $held_count running jobs when killed"
  check "the killed worker held jobs" "$(( held_count > 0 ))" 1
  finish_load
  echo "  retried requests: $(jq .retries "$dir/bench.json")"
  check_orders
  check_receipts at-least-once
  if [[ -n $held ]]; then
    check "the killed worker's jobs completed" \
      "$(sql "SELECT count(*) FROM jobs WHERE id IN ($held) AND state <> 'completed'")" 0
    echo "  of them rescued and run again: $(sql "SELECT count(*) FROM jobs WHERE id IN ($held) AND attempt > 1")"
  fi
  cluster down >/dev/null
}

# Answers whose status passes $1 (a jq test on the status) in the API logs, counted from the
# line offsets in "$dir/log-offsets".
answered() {
  local total=0 log offset
  while read -r log offset; do
    total=$(( total + $(tail -n +"$((offset + 1))" "$log" | jq -r "select(.status != null) | .status | select($1)" 2>/dev/null | wc -l) ))
  done <"$dir/log-offsets"
  echo "$total"
}

# Asks api-1's /readyz every 100 ms, writing "<ms> <status>" lines to $1, until killed.
poll_readiness() {
  local url; url="http://127.0.0.1:$(cat "$dir/api-1.port")/readyz"
  while :; do
    echo "$(now_ms) $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url")"
    sleep 0.1
  done >"$1"
}

# Asks for /healthz through the balancer every 100 ms, writing "<status> <Retry-After>" lines
# to $1, until killed: while no API is ready, HAProxy answers 503 itself.
poll_balancer() {
  local url; url="$(cat "$dir/url")/healthz"
  while :; do
    curl -s -o /dev/null -D - --max-time 1 "$url" | tr -d '\r' \
      | awk 'NR == 1 { status = $2 } tolower($1) == "retry-after:" { after = $2 } END { print status, (after == "" ? "-" : after) }'
    sleep 0.1
  done >"$1"
}

# From poll_readiness's lines and the time the failure began ($2): when /readyz first was not
# 200, and when it was 200 again for good, in ms after the failure began ("0 0" if it stayed
# ready; "-1" when it never was ready again).
readiness_after() {
  awk -v t0="$2" '
    $1 >= t0 && $2 != 200 { if (!first) first = $1; last_bad = $1; ready = 0 }
    $1 >= t0 && $2 == 200 && last_bad && !ready { ready = $1 }
    END {
      if (!first) { print 0, 0; exit }
      print first - t0, (ready ? ready - t0 : -1)
    }' "$1"
}

# Lines matching $2 in the logs $1 (a glob) from the offsets in "$dir/log-offsets".
logged_since() {
  local total=0 log offset
  while read -r log offset; do
    [[ $log == $1 ]] || continue
    total=$(( total + $(tail -n +"$((offset + 1))" "$log" | grep -c "$2" || true) ))
  done <"$dir/log-offsets"
  echo "$total"
}

# Under load, the PostgreSQL primary is lost ($1: switchover, failover or kill-node, as
# scripts/ha-cluster.sh names them): no acknowledged order lost or doubled, no 5xx but 503,
# every process reconnected by itself, and the write gap (the longest time between two
# orders committed) and the time until /readyz was ready again reported.
database_failover() {
  local action=$1
  [[ -n ${ORDERLY_HA:-} ]] || { echo "the failover scenarios need ORDERLY_HA=1 and the HA cluster (tests/failover.sh)"; exit 2; }
  echo "== the database primary lost under load: $action"
  cluster up --api 2 --workers 2 >/dev/null
  for log in "$dir"/api-*.log "$dir"/worker-*.log; do echo "$log $(wc -l <"$log")"; done >"$dir/log-offsets"
  start_load 25
  poll_readiness "$dir/readiness.txt" &
  local poller=$!
  poll_balancer "$dir/balancer.txt" &
  local balancer_poller=$!
  sleep 5
  # The failure begins once the cluster is whole (each action waits for that first).
  "$root/scripts/ha-cluster.sh" settle
  local started; started=$(now_ms)
  "$root/scripts/ha-cluster.sh" "$action"
  local primary_ms=$(( $(now_ms) - started ))
  echo "  writable primary again $primary_ms ms after the $action began"
  finish_load
  kill "$poller" "$balancer_poller"
  echo "  the balancer's own answers while no API was ready: $(awk '$1 == 503' "$dir/balancer.txt" | wc -l) × 503 (of $(wc -l <"$dir/balancer.txt") probes)"
  check "503s from the balancer without Retry-After" "$(awk '$1 == 503 && $2 == "-"' "$dir/balancer.txt" | wc -l)" 0
  local other_5xx answered_503 gap readiness
  other_5xx=$(answered '. >= 500 and . != 503') answered_503=$(answered '. == 503')
  gap=$(sql "SELECT round(extract(epoch FROM max(gap)) * 1000) FROM (SELECT created_at - lag(created_at) OVER (ORDER BY created_at) AS gap FROM orders) g")
  read -r -a readiness <<<"$(readiness_after "$dir/readiness.txt" "$started")"
  echo "  retried requests: $(jq .retries "$dir/bench.json")"
  check "5xx answers other than 503" "$other_5xx" 0
  echo "  503 answers: $answered_503"
  echo "  write gap: $gap ms"
  echo "  api-1 /readyz: not ready from ${readiness[0]} ms, ready again ${readiness[1]} ms after the $action began"
  check "/readyz ready on every API after it" "$(
    ok=0; for port in "$dir"/api*a.port; do curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$(cat "$port")/readyz" && ok=$((ok + 1)); done; echo $ok)" 2
  check "workers whose job notifications resumed by themselves" \
    "$(for log in "$dir"/worker-*.log; do grep -q 'job notifications resumed' "$log" && echo "$log"; done | wc -l)" 2
  echo "  scheduler lease checks failed: $(logged_since "$dir/worker-*.log" 'scheduler lease check failed'), lease taken again: $(logged_since "$dir/worker-*.log" 'now runs the scheduler')"
  check_orders
  check_receipts at-least-once
  if [[ -n ${ORDERLY_FAILOVER_FIGURES:-} ]]; then
    jq -nc --arg kind "$action" --argjson gap "$gap" --argjson primary "$primary_ms" \
      --argjson answered_503 "$answered_503" --argjson other_5xx "$other_5xx" \
      --argjson unready_from "${readiness[0]}" --argjson ready "${readiness[1]}" \
      --argjson missing "$missing" --argjson doubled "$doubled" --slurpfile load "$dir/bench.json" \
      '{kind: $kind, write_gap_ms: $gap, primary_ms: $primary, answered_503: $answered_503,
        other_5xx: $other_5xx, retries: $load[0].retries, failed: $load[0].errors,
        acknowledged: $load[0].ok, missing: $missing, doubled: $doubled,
        unready_from_ms: $unready_from, ready_ms: $ready}' >>"$ORDERLY_FAILOVER_FIGURES"
  fi
  cluster down >/dev/null
}

# The connection lost while COMMIT waits for the synchronous standby: the order is committed
# on the primary, but orderly cannot know it. It must answer 503 commit_outcome_unknown (not
# 201, not 500), and the client's retry with the same Idempotency-Key must return that order,
# placing no second one.
commit_outcome_unknown() {
  [[ -n ${ORDERLY_HA:-} ]] || { echo "this scenario needs ORDERLY_HA=1 and the HA cluster (tests/failover.sh)"; exit 2; }
  echo "== the connection lost while COMMIT waits for the synchronous standby"
  cluster up --api 1 --workers 1 >/dev/null
  local url admin key
  url=$(cat "$dir/url") admin=$(cat "$dir/admin.key") key=$(cat /proc/sys/kernel/random/uuid)
  curl -fs -o /dev/null -H "authorization: Bearer $admin" -H 'content-type: application/json' \
    -d '{"sku": "KETTLE", "name": "Kettle", "price": 2500, "stock": 10}' "$url/v1/products"
  order() {
    curl -s -o "$dir/order-$1.json" -D "$dir/order-$1.headers" -w '%{http_code}' --max-time 30 \
      -H "authorization: Bearer $admin" -H 'content-type: application/json' -H "idempotency-key: $key" \
      -d '{"customer": {"email": "ana@example.com", "name": "Ana Lima"}, "lines": [{"sku": "KETTLE", "quantity": 2}]}' \
      "$url/v1/orders"
  }
  # The API's sessions (application_name) whose COMMIT waits for the synchronous standby.
  api_commits_waiting() {
    [[ -n $(sql "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'
                 AND application_name = 'orderly api' AND datname = current_database()") ]]
  }
  "$root/scripts/ha-cluster.sh" freeze-sync
  order first >"$dir/order-first.status" &
  local client=$! waiting=no
  wait_until 10 api_commits_waiting && waiting=yes
  check "the order's COMMIT waits for the synchronous standby" "$waiting" yes
  sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'
       AND application_name = 'orderly api' AND datname = current_database()" >/dev/null
  wait "$client" || true
  check "the client's answer" "$(cat "$dir/order-first.status") $(jq -r .code "$dir/order-first.json" 2>/dev/null)" "503 commit_outcome_unknown"
  check "Retry-After on it" "$(grep -ci '^retry-after:' "$dir/order-first.headers")" 1
  check "orders the primary holds for the key (committed before the connection was cut)" \
    "$(sql "SELECT count(*) FROM idempotency_keys WHERE key = '$key'")" 1
  "$root/scripts/ha-cluster.sh" thaw-sync
  check "the retry with the same key" "$(order retry)" 201
  check "the retry returns the committed order" "$(jq -r .id "$dir/order-retry.json")" \
    "$(sql "SELECT order_id FROM idempotency_keys WHERE key = '$key'")"
  check "orders placed" "$(sql "SELECT count(*) FROM orders")" 1
  check "stock left" "$(sql "SELECT stock FROM products WHERE sku = 'KETTLE'")" 8
  check_receipts exactly-once
  cluster down >/dev/null
}

scenarios=("$@")
[[ ${#scenarios[@]} -gt 0 ]] || scenarios=(rolling kill)
for scenario in "${scenarios[@]}"; do
  case $scenario in
    rolling) rolling ;;
    kill) kill_under_load ;;
    switchover) database_failover switchover ;;
    postmaster-kill) database_failover failover ;;
    node-kill) database_failover kill-node ;;
    commit-unknown) commit_outcome_unknown ;;
    *) echo "unknown scenario $scenario"; exit 2 ;;
  esac
done
if (( failures > 0 )); then
  echo "cluster tests: $failures check(s) failed; logs in $dir"
  exit 1
fi
echo "cluster tests: all checks passed"
