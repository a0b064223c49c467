#!/usr/bin/env bash
# A replicated PostgreSQL on loopback for failover tests and trials: etcd (Patroni's
# consensus store), three Patroni nodes running PostgreSQL 15 with synchronous replication,
# and HAProxy with a read-write port (the primary) and a read-only port (the replicas).
#
#   scripts/ha-cluster.sh up          # start it all; prints the read-write URL
#   scripts/ha-cluster.sh status      # patronictl's view and HAProxy's
#   scripts/ha-cluster.sh settle      # wait until a primary streams to a sync standby and a replica
#   scripts/ha-cluster.sh switchover  # planned: the primary hands over to a replica
#   scripts/ha-cluster.sh failover    # unplanned: SIGKILL the primary's postmaster
#   scripts/ha-cluster.sh kill-node   # unplanned: SIGKILL the primary's Patroni and postmaster
#   scripts/ha-cluster.sh freeze-sync # SIGSTOP the synchronous standby's WAL receiver: commits wait
#   scripts/ha-cluster.sh thaw-sync   # SIGCONT it: the waiting commits complete
#   scripts/ha-cluster.sh down        # stop it all and delete its data
#
#   ORDERLY_HA_DIR      its folder: data, logs, pids (default /tmp/orderly-ha)
#   ORDERLY_HA_RW_PORT  the read-write port (default 25400, below the ephemeral range; the read-only one is the next, the nodes use the 30 after)
#
# Patroni, etcd and HAProxy are Debian's packages (installed when missing); Patroni runs as
# the postgres OS user with Debian's /usr/bin/python3. The settings that matter are explained
# in deploy/patroni/node.yml.template and deploy/haproxy/postgres-ha.cfg.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${ORDERLY_HA_DIR:-/tmp/orderly-ha}
rw_port=${ORDERLY_HA_RW_PORT:-25400}
ro_port=$((rw_port + 1))
etcd_port=$((rw_port + 10)) etcd_peer_port=$((rw_port + 11))
nodes=(node1 node2 node3)
pg_port() { echo $((rw_port + 20 + ${1#node})); }
rest_port() { echo $((rw_port + 30 + ${1#node})); }
url="postgres://postgres@127.0.0.1:$rw_port"

say() { printf 'ha-cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
wait_until() { # seconds, command...
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s%N) < deadline )) || return 1
    sleep 0.1
  done
}
alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
patronictl() { /usr/bin/python3 /usr/bin/patronictl -c "$dir/node1/patroni.yml" "$@"; }
# The node whose Patroni answers 200 on /primary.
primary() {
  for node in "${nodes[@]}"; do
    if curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$(rest_port "$node")/primary"; then echo "$node"; return; fi
  done
  return 1
}
# Whether a node other than $1 is the primary, and HAProxy's read-write port reaches it.
moved_from() { local now; now=$(primary) && [[ $now != "$1" ]] && writable; }
# Whether HAProxy's read-write port reaches a primary that takes writes.
writable() { psql -qAtX "$url/postgres" -c "SELECT NOT pg_is_in_recovery()" 2>/dev/null | grep -q t; }
# Whether Patroni reports a leader, a synchronous standby and a replica, all running, and the
# primary streams to both standbys.
replicated() {
  local leader; leader=$(primary) || return 1
  [[ $(curl -fs --max-time 1 "http://127.0.0.1:$(rest_port "$leader")/cluster" \
    | jq -r '[.members[] | select(.state == "running") | .role] | sort | join(" ")') == "leader replica sync_standby" ]] \
    && [[ $(psql -qAtX "$url/postgres" -c "SELECT count(*) FROM pg_stat_replication
         WHERE state = 'streaming' AND application_name LIKE 'node_'" 2>/dev/null) == 2 ]]
}

install() {
  local missing=()
  command -v patroni >/dev/null || missing+=(patroni)
  command -v etcd >/dev/null || missing+=(etcd-server)
  command -v haproxy >/dev/null || missing+=(haproxy)
  command -v curl >/dev/null || missing+=(curl)
  command -v jq >/dev/null || missing+=(jq)
  command -v socat >/dev/null || missing+=(socat)
  [[ -x /usr/lib/postgresql/15/bin/postgres ]] || missing+=(postgresql-15)
  if [[ ${#missing[@]} -gt 0 ]]; then
    say "installing ${missing[*]} (Debian's packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
  fi
}

start_etcd() {
  mkdir -p "$dir/etcd"
  etcd --name orderly-ha --data-dir "$dir/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "orderly-ha=http://127.0.0.1:$etcd_peer_port" >>"$dir/etcd.log" 2>&1 </dev/null &
  echo $! >"$dir/etcd.pid"
  wait_until 20 curl -fs "http://127.0.0.1:$etcd_port/health" || die "etcd did not start; see $dir/etcd.log"
}

start_patroni() { # node
  local node=$1 node_dir="$dir/$1"
  mkdir -p "$node_dir"
  if [[ ! -f $node_dir/patroni.yml ]]; then
    sed -e "s|@NAME@|$node|g" -e "s|@REST_PORT@|$(rest_port "$node")|g" -e "s|@PG_PORT@|$(pg_port "$node")|g" \
      -e "s|@ETCD_PORT@|$etcd_port|g" -e "s|@DIR@|$node_dir|g" \
      "$root/deploy/patroni/node.yml.template" >"$node_dir/patroni.yml"
  fi
  chown -R postgres:postgres "$node_dir"
  # setpriv executes Patroni in its place (runuser would stay as its parent), so the pid
  # recorded is Patroni's own.
  HOME=/var/lib/postgresql setpriv --reuid=postgres --regid=postgres --init-groups \
    /usr/bin/python3 /usr/bin/patroni "$node_dir/patroni.yml" >>"$dir/$node.log" 2>&1 </dev/null &
  echo $! >"$dir/$node.pid"
}

start_haproxy() {
  local primary_servers="" replica_servers=""
  for node in "${nodes[@]}"; do
    primary_servers+="    server $node 127.0.0.1:$(pg_port "$node") check port $(rest_port "$node")\n"
  done
  replica_servers=$primary_servers
  awk -v p="$primary_servers" -v r="$replica_servers" '
    /^ +# servers$/ { n++; printf "%s", (n == 1 ? p : r); next } { print }' \
    "$root/deploy/haproxy/postgres-ha.cfg" | sed 's/\\n/\n/g' >"$dir/haproxy.cfg"
  HAPROXY_STATS_SOCKET="$dir/haproxy.sock" HAPROXY_PIDFILE="$dir/haproxy.pid" \
    ORDERLY_HA_RW_BIND="127.0.0.1:$rw_port" ORDERLY_HA_RO_BIND="127.0.0.1:$ro_port" \
    haproxy -D -f "$dir/haproxy.cfg" >>"$dir/haproxy.log" 2>&1 || die "HAProxy did not start; see $dir/haproxy.log"
}

up() {
  install
  [[ -f $dir/etcd.pid ]] && alive "$dir/etcd.pid" && die "already up in $dir (down first)"
  rm -rf "$dir"
  mkdir -p "$dir"
  chmod 755 "$dir"
  setpriv --reuid=postgres --regid=postgres --init-groups test -x "$dir" \
    || die "the postgres user cannot reach $dir: make its parent folders searchable (chmod o+x)"
  start_etcd
  start_patroni node1
  wait_until 60 primary || die "no primary after 60 s; see $dir/node1.log"
  start_patroni node2
  start_patroni node3
  start_haproxy
  wait_until 90 replicated || die "the replicas did not attach within 90 s; see $dir/node2.log, $dir/node3.log"
  wait_until 10 writable || die "HAProxy's read-write port reaches no primary"
  say "up: primary $(primary), read-write $url, read-only postgres://postgres@127.0.0.1:$ro_port"
  echo "$url"
}

status() {
  patronictl list 2>/dev/null || say "patronictl cannot reach the cluster"
  if [[ -S $dir/haproxy.sock ]]; then
    echo "show servers state" | socat stdio "$dir/haproxy.sock" \
      | awk 'NR > 2 && NF > 5 { state = ($6 == 2 ? "UP" : "DOWN"); print "haproxy", $2, $4, state }'
  fi
  echo "$url"
}

# The node Patroni has chosen as the synchronous standby.
sync_standby() {
  curl -fs --max-time 1 "http://127.0.0.1:$(rest_port "$(primary)")/cluster" \
    | jq -re '.members[] | select(.role == "sync_standby") | .name'
}

# Before a disruption: the cluster whole again (in strict synchronous mode a leader lost
# before it has a synchronous standby leaves no node that may take over).
settle() { wait_until 90 replicated || die "the cluster is not fully replicated after 90 s; see patronictl list"; }

switchover() {
  settle
  local leader candidate
  leader=$(primary) candidate=$(sync_standby)
  patronictl switchover --leader "$leader" --candidate "$candidate" --force >>"$dir/patronictl.log" 2>&1
  wait_until 60 moved_from "$leader" || die "no new writable primary 60 s after the switchover"
  say "switchover: $leader -> $(primary)"
}

kill_primary() { # postmaster | node
  settle
  local leader pid
  leader=$(primary)
  pid=$(head -n1 "$dir/$leader/data/postmaster.pid")
  if [[ $1 == node ]]; then kill -KILL "$(cat "$dir/$leader.pid")"; fi
  kill -KILL "$pid"
  say "killed the $1 of $leader (postmaster pid $pid)"
  wait_until 90 moved_from "$leader" || die "no new writable primary 90 s after the kill"
  say "new primary: $(primary)"
  # The node comes back as a replica: Patroni restarts its PostgreSQL; a killed Patroni is
  # started again here.
  if [[ $1 == node ]]; then start_patroni "$leader"; fi
}

# The synchronous standby's WAL receiver stopped (SIGSTOP): it keeps its connection but
# confirms nothing, so every commit on the primary waits for it, as when the standby or the
# network to it stalls. Patroni sees no change until wal_sender_timeout (60 s).
freeze_sync() {
  settle
  local standby postmaster receiver
  standby=$(sync_standby)
  postmaster=$(head -n1 "$dir/$standby/data/postmaster.pid")
  receiver=$(pgrep -P "$postmaster" -f 'walreceiver') || die "no WAL receiver under $standby's postmaster"
  kill -STOP "$receiver"
  echo "$receiver" >"$dir/frozen.pid"
  say "froze the WAL receiver of $standby (pid $receiver): commits now wait"
}

thaw_sync() {
  [[ -f $dir/frozen.pid ]] || die "nothing is frozen"
  kill -CONT "$(cat "$dir/frozen.pid")"
  rm -f "$dir/frozen.pid"
  say "thawed the WAL receiver"
}

down() {
  [[ -f $dir/frozen.pid ]] && kill -CONT "$(cat "$dir/frozen.pid")" 2>/dev/null || true
  [[ -f $dir/haproxy.pid ]] && kill "$(cat "$dir/haproxy.pid")" 2>/dev/null || true
  for node in "${nodes[@]}"; do
    [[ -f $dir/$node.pid ]] && kill -TERM "$(cat "$dir/$node.pid")" 2>/dev/null || true
  done
  for node in "${nodes[@]}"; do
    wait_until 30 bash -c "! kill -0 \$(cat '$dir/$node.pid') 2>/dev/null" || kill -KILL "$(cat "$dir/$node.pid")" 2>/dev/null || true
    [[ -f $dir/$node/data/postmaster.pid ]] && kill -KILL "$(head -n1 "$dir/$node/data/postmaster.pid")" 2>/dev/null || true
  done
  [[ -f $dir/etcd.pid ]] && kill "$(cat "$dir/etcd.pid")" 2>/dev/null || true
  rm -rf "$dir"
  say "down"
}

case ${1:-} in
  up) up ;;
  status) status ;;
  switchover) switchover ;;
  failover) kill_primary postmaster ;;
  kill-node) kill_primary node ;;
  settle) settle ;;
  freeze-sync) freeze_sync ;;
  thaw-sync) thaw_sync ;;
  down) down ;;
  *) die "usage: $0 up|status|settle|switchover|failover|kill-node|freeze-sync|thaw-sync|down" ;;
esac
