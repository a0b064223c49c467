# Helpers the benchmarks share (bench/growth.sh, bench/console.sh, bench/yardstick.sh,
# bench/receipts.sh, …): sourced, not run. The sourcing script sets `work` (its folder: pids, orderly.log) and `bin`
# (bench_binary) before calling them, and `trap stop_all EXIT`.

bench_binary() { # the binary to measure: $ORDERLY_BIN, or a release build
  if [[ -n ${ORDERLY_BIN:-} ]]; then echo "$ORDERLY_BIN"; return; fi
  cargo build --release --quiet -p orderly >&2
  echo "${CARGO_TARGET_DIR:-target}/release/orderly"
}

cpu_of() { # NAME: CPU ticks (user + system) used so far by every process named NAME
  local total=0 pid
  for pid in $(pgrep -x "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

sql() { # URL QUERY: one query, rows as a|b
  case $1 in
    sqlite://*) sqlite3 -cmd '.timeout 10000' "${1#sqlite://}" "$2" ;;
    *) psql -qAtX "$1" -c "$2" ;;
  esac
}

start() { # ROLE URL PORT [VAR=VALUE...]: prints the pid once /readyz answers
  local role=$1 url=$2 at=$3; shift 3
  env ORDERLY_DATABASE_URL="$url" ORDERLY_LISTEN="127.0.0.1:$at" "$@" "$bin" "$role" \
    >>"$work/orderly.log" 2>&1 &
  local pid=$!
  echo "$pid" >>"$work/pids"
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$at/readyz" && { echo "$pid"; return; }
    sleep 0.1
  done
  echo "orderly $role did not start; its log:" >&2; tail -20 "$work/orderly.log" >&2; exit 1
}

stop() { kill -TERM "$1" 2>/dev/null || true; while kill -0 "$1" 2>/dev/null; do sleep 0.1; done; }

stop_all() { [[ -f $work/pids ]] && xargs -r kill 2>/dev/null <"$work/pids" || true; }

fresh_database() { # BACKEND NAME: prints the URL of a new, migrated database
  local url
  if [[ $1 == postgres ]]; then
    psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS $2" -c "CREATE DATABASE $2" >/dev/null
    url="$pg/$2"
  else
    rm -f "$work/$2.db"*; url="sqlite://$work/$2.db"
  fi
  ORDERLY_DATABASE_URL=$url "$bin" migrate >/dev/null 2>&1
  echo "$url"
}

jobs_done() { # URL SECONDS: waits until no job is available or running (the receipts sent)
  for _ in $(seq $(( $2 * 10 ))); do
    [[ $(sql "$1" "SELECT count(*) FROM jobs WHERE state IN ('available', 'running')") == 0 ]] && return
    sleep 0.1
  done
}

seed_orders() { # URL KEY PORT: a few real orders through the API: the products the bulk load
  # refers to, and its template
  local url=$1 key=$2 at=$3 pid
  pid=$(start run "$url" "$at")
  ORDERLY_BENCH_KEY=$key "$bin" bench orders --url "http://127.0.0.1:$at" --concurrency 4 \
    --duration 1 --products 10 --json >/dev/null
  jobs_done "$url" 20
  stop "$pid"
}

# N stored orders loaded in bulk with SQL after seed_orders (bench/growth/load_*.sql: lines,
# events, finished receipt jobs, a day of idempotency records). PostgreSQL is then vacuumed,
# analysed and checkpointed, as autovacuum would leave it, so that writing out the load does
# not fall on the measurements.
bulk_load() { # BACKEND URL N
  if [[ $1 == postgres ]]; then
    psql -qX "$2" -v n="$3" -f bench/growth/load_postgres.sql >/dev/null
    psql -qX "$2" -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
  else
    sed "s/:n\b/$3/g" bench/growth/load_sqlite.sql | sqlite3 "${2#sqlite://}" >/dev/null
  fi
}
