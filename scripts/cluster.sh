#!/usr/bin/env bash
# A local orderly cluster on loopback: HAProxy in front of N `orderly api` processes, M
# `orderly worker` processes and an SMTP sink, against the machine's PostgreSQL and Redis,
# in a database of its own.
#
#   scripts/cluster.sh up [--api N] [--workers M]   start (defaults 3 and 2); prints the URL
#   scripts/cluster.sh status                       each process, its health, HAProxy's view
#   scripts/cluster.sh roll                         restart every API, then every worker, in
#                                                   turn, each new one ready before the old goes
#   scripts/cluster.sh down                         stop everything and drop the database
#
# Settings (environment):
#   ORDERLY_CLUSTER_DIR   logs, pids, keys and mail (default ${TMPDIR:-/tmp}/orderly-cluster)
#   ORDERLY_BIN           the binary (default: `cargo build --release`, then its output)
#   ORDERLY_CLUSTER_PG    PostgreSQL server (default postgres://postgres@127.0.0.1:5432)
#   ORDERLY_CLUSTER_DB    database name (default orderly_cluster)
#   ORDERLY_CLUSTER_REDIS Redis for the shared cache (default redis://127.0.0.1:6379; empty: none)
#   ORDERLY_LB_PORT       the load balancer's port (default 8800)
#   ORDERLY_CLUSTER_MAIL  maildir (default: each message a file in the mail folder, written
#                         with an fsync each, so a few hundred a second) or discard (accepted
#                         and dropped, for benchmarks)
#   Any ORDERLY_* setting is passed to every process (e.g. ORDERLY_WORKER__LEASE=3s).
#
# Each API slot has two ports and two HAProxy servers (apiNa, apiNb); one is in use and the
# other is in maintenance. `roll` starts the new process on the free port, takes that server
# out of maintenance, waits until HAProxy has it up, then sends the old one SIGTERM: it turns
# /readyz to 503, HAProxy takes it out within about a second, it keeps serving through its
# drain (ORDERLY_HTTP__DRAIN, 1.5 s here), finishes what it has and exits.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${ORDERLY_CLUSTER_DIR:-${TMPDIR:-/tmp}/orderly-cluster}
pg=${ORDERLY_CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}
db=${ORDERLY_CLUSTER_DB:-orderly_cluster}
redis=${ORDERLY_CLUSTER_REDIS-redis://127.0.0.1:6379}
lb_port=${ORDERLY_LB_PORT:-8800}
mail=${ORDERLY_CLUSTER_MAIL:-maildir}
database_url="$pg/$db"

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

free_port() {
  /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/free-port.py"
}

# Waits up to $1 seconds for the command after it to succeed.
wait_until() {
  local seconds=$1; shift
  local deadline=$(( $(date +%s%N) + seconds * 1000000000 ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s%N) < deadline )) || return 1
    sleep 0.05
  done
}

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
http_ok() { curl -fsS -o /dev/null --max-time 1 "$1"; }

# HAProxy's runtime API.
haproxy_cmd() { echo "$*" | socat - "UNIX-CONNECT:$dir/haproxy.sock"; }
# HAProxy's status of one server of the API backend: UP, DOWN, MAINT, ...
server_status() {
  haproxy_cmd "show stat" | awk -F, -v s="$1" '$1 == "orderly_api" && $2 == s { print $18 }'
}
server_is() { [[ $(server_status "$1") == "$2" ]]; }

binary() {
  if [[ -n ${ORDERLY_BIN:-} ]]; then
    echo "$ORDERLY_BIN"
    return
  fi
  say "building the release binary (cargo build --release)"
  (cd "$root" && cargo build --release --locked -q -p orderly) >&2
  echo "${CARGO_TARGET_DIR:-$root/target}/release/orderly"
}

# The settings every orderly process of the cluster gets on top of the caller's environment
# (so any other ORDERLY_* variable the caller exports reaches every process too).
process_env() {
  echo "ORDERLY_DATABASE_URL=$database_url"
  echo "ORDERLY_SMTP_URL=smtp://127.0.0.1:$(cat "$dir/smtp.port")"
  echo "ORDERLY_LOG_FORMAT=json"
  if [[ -n $redis ]]; then
    echo "ORDERLY_CACHE__REDIS_URL=$redis"
    echo "ORDERLY_CACHE__REDIS_NAMESPACE=$db"
  fi
  echo "ORDERLY_HTTP__DRAIN=${ORDERLY_HTTP__DRAIN:-1500ms}"
}

# start_process NAME ROLE PORT: starts one orderly process in the background.
start_process() {
  local name=$1 role=$2 port=$3 bin
  bin=$(cat "$dir/bin")
  local -a env
  mapfile -t env < <(process_env)
  if [[ $role == api ]]; then
    env+=("ORDERLY_LISTEN=127.0.0.1:$port")
  else
    env+=("ORDERLY_WORKER__METRICS_LISTEN=127.0.0.1:$port")
  fi
  # setsid: a Ctrl-C in the caller's terminal does not reach the cluster.
  env "${env[@]}" setsid "$bin" "$role" --no-migrate >>"$dir/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/$name.pid"
  echo "$port" >"$dir/$name.port"
}

ready_url() { # name role
  local port; port=$(cat "$dir/$1.port")
  if [[ $2 == api ]]; then echo "http://127.0.0.1:$port/readyz"; else echo "http://127.0.0.1:$port/healthz"; fi
}

wait_ready() { # name role
  wait_until 30 http_ok "$(ready_url "$1" "$2")" || die "$1 did not become ready; see $dir/$1.log"
}

# The HAProxy server an API slot uses now, and the other one.
active_server() { cat "$dir/api-$1.server"; }
other_server() { [[ $(active_server "$1") == "api$1a" ]] && echo "api$1b" || echo "api$1a"; }
server_port() { cat "$dir/$1.port"; }

write_haproxy_config() {
  local apis=$1
  cp "$root/deploy/haproxy/orderly.cfg" "$dir/haproxy.cfg"
  for i in $(seq 1 "$apis"); do
    for half in a b; do
      local port; port=$(free_port)
      echo "$port" >"$dir/api$i$half.port"
      local state=""
      [[ $half == b ]] && state=" disabled"
      echo "    server api$i$half 127.0.0.1:$port check$state" >>"$dir/haproxy.cfg"
    done
  done
}

start_haproxy() {
  HAPROXY_STATS_SOCKET="$dir/haproxy.sock" HAPROXY_PIDFILE="$dir/haproxy.pid" \
    ORDERLY_LB_BIND="127.0.0.1:$lb_port" \
    haproxy -D -f "$dir/haproxy.cfg" >>"$dir/haproxy.log" 2>&1 \
    || die "HAProxy did not start; see $dir/haproxy.log"
  wait_until 10 test -S "$dir/haproxy.sock" || die "HAProxy's runtime socket did not appear"
}

up() {
  local apis=3 workers=2
  while [[ $# -gt 0 ]]; do
    case $1 in
      --api) apis=$2; shift 2 ;;
      --workers) workers=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  if alive "$dir/haproxy.pid"; then die "already up (scripts/cluster.sh down first)"; fi
  command -v haproxy >/dev/null && command -v socat >/dev/null \
    || die "haproxy and socat are needed: run scripts/services.sh"
  # aiosmtpd makes the maildir (tmp/, new/, cur/) when the folder does not exist yet.
  rm -rf "$dir" && mkdir -p "$dir"
  binary >"$dir/bin"
  echo "$apis" >"$dir/apis"
  echo "$workers" >"$dir/workers"

  PGOPTIONS="--client-min-messages=warning" psql -q "$pg/postgres" \
    -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
  local bin; bin=$(cat "$dir/bin")
  ORDERLY_DATABASE_URL=$database_url "$bin" migrate >>"$dir/migrate.log" 2>&1 \
    || die "migrations failed; see $dir/migrate.log"
  ORDERLY_DATABASE_URL=$database_url "$bin" keys create --role admin --name cluster \
    >"$dir/admin.key" 2>>"$dir/migrate.log"

  free_port >"$dir/smtp.port"
  local handler
  case $mail in
    maildir) handler=(aiosmtpd.handlers.Mailbox "$dir/mail") ;;
    discard) handler=(aiosmtpd.handlers.Sink) ;;
    *) die "ORDERLY_CLUSTER_MAIL is maildir or discard, not $mail" ;;
  esac
  /usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$(cat "$dir/smtp.port")" \
    -c "${handler[@]}" >>"$dir/smtp.log" 2>&1 </dev/null &
  echo $! >"$dir/smtp.pid"

  write_haproxy_config "$apis"
  for i in $(seq 1 "$apis"); do
    echo "api$i""a" >"$dir/api-$i.server"
    start_process "api-$i" api "$(server_port "api${i}a")"
  done
  for j in $(seq 1 "$workers"); do
    start_process "worker-$j" worker "$(free_port)"
  done
  for i in $(seq 1 "$apis"); do wait_ready "api-$i" api; done
  for j in $(seq 1 "$workers"); do wait_ready "worker-$j" worker; done
  start_haproxy
  for i in $(seq 1 "$apis"); do
    wait_until 10 server_is "api${i}a" UP || die "HAProxy does not see api-$i up"
  done
  echo "http://127.0.0.1:$lb_port" >"$dir/url"
  say "up: $apis API and $workers worker processes; admin key in $dir/admin.key; mail in $dir/mail"
  cat "$dir/url"
}

status() {
  [[ -f $dir/url ]] || die "not up"
  printf '%-10s %-8s %-22s %-10s %s\n' process pid address health balancer
  for i in $(seq 1 "$(cat "$dir/apis")"); do
    local name="api-$i" server health="down" pid="-"
    server=$(active_server "$i")
    alive "$dir/$name.pid" && pid=$(cat "$dir/$name.pid")
    health=$(curl -s --max-time 1 "$(ready_url "$name" api)" | jq -r '.status // "down"' 2>/dev/null || echo down)
    printf '%-10s %-8s %-22s %-10s %s\n' "$name" "$pid" "127.0.0.1:$(cat "$dir/$name.port")" \
      "${health:-down}" "$server $(server_status "$server")"
  done
  for j in $(seq 1 "$(cat "$dir/workers")"); do
    local name="worker-$j" health="down" pid="-"
    alive "$dir/$name.pid" && pid=$(cat "$dir/$name.pid")
    health=$(curl -s --max-time 1 "$(ready_url "$name" worker)" | jq -r '.status // "down"' 2>/dev/null || echo down)
    printf '%-10s %-8s %-22s %-10s %s\n' "$name" "$pid" "127.0.0.1:$(cat "$dir/$name.port")" \
      "${health:-down}" "-"
  done
  echo "load balancer: $(cat "$dir/url") (HAProxy pid $(cat "$dir/haproxy.pid"))"
}

# Waits for a SIGTERMed process to exit; SIGKILL after $2 seconds.
wait_exit() {
  local pid=$1 seconds=$2
  if ! wait_until "$seconds" bash -c "! kill -0 $pid"; then
    say "pid $pid still running after ${seconds}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

roll() {
  [[ -f $dir/url ]] || die "not up"
  local stop_within=30
  for i in $(seq 1 "$(cat "$dir/apis")"); do
    local old new old_pid
    old=$(active_server "$i") new=$(other_server "$i")
    old_pid=$(cat "$dir/api-$i.pid" 2>/dev/null || echo)
    start_process "api-$i" api "$(server_port "$new")"
    wait_ready "api-$i" api
    haproxy_cmd "enable server orderly_api/$new" >/dev/null
    wait_until 10 server_is "$new" UP || die "HAProxy does not see the new api-$i up"
    echo "$new" >"$dir/api-$i.server"
    if [[ -n $old_pid ]] && kill -0 "$old_pid" 2>/dev/null; then
      kill -TERM "$old_pid"
      wait_until 10 server_is "$old" DOWN || say "HAProxy did not mark the old api-$i down"
      wait_exit "$old_pid" "$stop_within"
    fi
    haproxy_cmd "disable server orderly_api/$old" >/dev/null
    say "api-$i rolled ($old -> $new)"
  done
  for j in $(seq 1 "$(cat "$dir/workers")"); do
    local old_pid
    old_pid=$(cat "$dir/worker-$j.pid" 2>/dev/null || echo)
    start_process "worker-$j" worker "$(free_port)"
    wait_ready "worker-$j" worker
    if [[ -n $old_pid ]] && kill -0 "$old_pid" 2>/dev/null; then
      kill -TERM "$old_pid"
      wait_exit "$old_pid" "$stop_within"
    fi
    say "worker-$j rolled"
  done
}

down() {
  [[ -d $dir ]] || { say "nothing to stop"; return 0; }
  local pids=()
  for f in "$dir"/api-*.pid "$dir"/worker-*.pid; do
    [[ -f $f ]] && alive "$f" && pids+=("$(cat "$f")")
  done
  if [[ ${#pids[@]} -gt 0 ]]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for pid in "${pids[@]}"; do wait_exit "$pid" 30; done
  fi
  for f in haproxy smtp; do
    if alive "$dir/$f.pid"; then
      local pid; pid=$(cat "$dir/$f.pid")
      kill -TERM "$pid" 2>/dev/null || true
      wait_exit "$pid" 5
    fi
  done
  psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -f "$dir/url"
  say "down (logs stay in $dir)"
}

case ${1:-} in
  up) shift; up "$@" ;;
  status) status ;;
  roll) roll ;;
  down) down ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
