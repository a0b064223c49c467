#!/usr/bin/env bash
# The lifecycle checker (tests/lifecycle.py) against a real `orderly run`, on SQLite and then
# on PostgreSQL: concurrent clients make random captures, shipments, cancellations, refunds
# and stock changes for SECONDS on a shared set of orders and products, then the database,
# the histories and the mail outbox are checked. Figures go to stdout; docs/reliability.md
# keeps them.
#
#   ORDERLY_BIN=target/debug/orderly tests/lifecycle.sh [SECONDS] [backend]...
#
# SECONDS defaults to 20 (the least the checker is run for; at most 30 per backend), the
# backends to `sqlite postgres`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${ORDERLY_BIN:?set ORDERLY_BIN to the orderly binary under test}"
seconds=${1:-20}
shift || true
backends=("$@")
[[ ${#backends[@]} -gt 0 ]] || backends=(sqlite postgres)
pg=${ORDERLY_LIFECYCLE_PG:-postgres://postgres@127.0.0.1:5432}
dir=${ORDERLY_LIFECYCLE_DIR:-$(mktemp -d)}
mkdir -p "$dir"

# shellcheck source=checks.sh
source "$root/tests/checks.sh"

# Each backend's orderly, killed on the way out.
cleanup() {
  local pidfile
  for pidfile in "$dir"/*.pid; do
    [[ -e $pidfile ]] && kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
  done
}
trap cleanup EXIT

# The customer mail and the receipts go to an outbox folder; the expiry chore stays out of the
# way (an order expired mid-run would refuse every later change; expiry is the API suite's to
# test); rate limits out of the load's way.
export ORDERLY_WORKER__POLL_INTERVAL=200ms ORDERLY_WORKER__SCHEDULER=false
export ORDERLY_HTTP__DRAIN=0s ORDERLY_LOG_FORMAT=json
export ORDERLY_RATE_LIMITS__ADMIN__RATE=1000000 ORDERLY_RATE_LIMITS__ADMIN__BURST=1000000

# run_backend BACKEND: one orderly on a fresh database, the checker against it, its figures
# in $dir/BACKEND.json; fails when the checker found a violation.
run_backend() {
  local backend=$1 db outbox key port pid status=0
  case $backend in
    postgres)
      psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS orderly_lifecycle" \
        -c "CREATE DATABASE orderly_lifecycle" >/dev/null 2>&1
      db="$pg/orderly_lifecycle" ;;
    sqlite) rm -f "$dir/lifecycle.db"*; db="sqlite://$dir/lifecycle.db" ;;
    *) echo "unknown backend $backend"; return 2 ;;
  esac
  outbox="$dir/$backend-outbox"
  rm -rf "$outbox"
  ORDERLY_DATABASE_URL=$db "$ORDERLY_BIN" migrate >/dev/null 2>&1
  key=$(ORDERLY_DATABASE_URL=$db "$ORDERLY_BIN" keys create --role admin --name lifecycle 2>/dev/null)
  port=$(free_port)
  ORDERLY_DATABASE_URL=$db ORDERLY_LISTEN="127.0.0.1:$port" ORDERLY_MAIL_OUTBOX="$outbox" \
    "$ORDERLY_BIN" run >>"$dir/$backend.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/$backend.pid"
  wait_until 20 curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" \
    || { echo "  orderly did not start on $backend"; tail "$dir/$backend.log"; return 1; }
  python3 "$root/tests/lifecycle.py" "http://127.0.0.1:$port" "$key" "$db" "$outbox" \
    "$seconds" 6 >"$dir/$backend.json" || status=$?
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$dir/$backend.pid"
  return "$status"
}

# The backends run side by side: each gets half the machine, and the suite takes the time of
# one.
pids=()
for backend in "${backends[@]}"; do
  run_backend "$backend" >"$dir/$backend.out" 2>&1 &
  pids+=($!)
done
for i in "${!backends[@]}"; do
  backend=${backends[$i]}
  wait "${pids[$i]}" || true
  echo "== the lifecycle checker on $backend, ${seconds} s"
  sed 's/^/  /' "$dir/$backend.out"
  if [[ -s $dir/$backend.json ]]; then
    jq -c '{operations, operations_per_s, orders, events, messages, violations}' \
      "$dir/$backend.json" | sed 's/^/  /'
    jq -c '.outcomes' "$dir/$backend.json" | sed 's/^/  outcomes: /'
    check "lifecycle violations on $backend" "$(jq .violations "$dir/$backend.json")" 0
    jq -r '.first_violations[]' "$dir/$backend.json" | sed 's/^/    /'
  else
    check "the checker ran on $backend" no yes
  fi
done

(( failures == 0 )) || { echo "$failures lifecycle check(s) failed"; exit 1; }
echo "lifecycle checker: every invariant holds"
