#!/usr/bin/env bash
# Makes sure the servers the tests talk to are answering, starting any that are not.
# PostgreSQL and Redis come with the development and CI machines; the commands below are the
# ones those machines use to start them.
set -euo pipefail

wait_for() { # name, check command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then echo "$name: up"; return 0; fi
    sleep 0.5
  done
  echo "$name: not answering after 30 s" >&2
  return 1
}

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432; starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
fi
wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432 -q

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "Redis is not answering on 127.0.0.1:6379; starting it"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping

# NATS with JetStream: the event relay's tests start nats-servers of their own (so they can
# stop one mid-test); `orderly bench events` and the README's example use the machine's.
if [[ ! -x /usr/sbin/nats-server ]]; then
  echo "installing nats-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q nats-server >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q nats-server >/dev/null; }
fi
nats_up() { exec 3<>/dev/tcp/127.0.0.1/4222 && head -c4 <&3 | grep -q INFO; }
if ! nats_up 2>/dev/null; then
  echo "NATS is not answering on 127.0.0.1:4222; starting it"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
fi
wait_for NATS nats_up

# An SMTP sink for the receipt tests: Debian's aiosmtpd, run by Debian's python3 (the tests
# start it themselves on a free port).
if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "installing python3-aiosmtpd (SMTP sink for tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q python3-aiosmtpd >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q python3-aiosmtpd >/dev/null; }
fi
/usr/bin/python3 -c 'import aiosmtpd' && echo "aiosmtpd: installed"

# promtool, to check /metrics output and the alerting rules (Debian's prometheus package;
# nothing is started).
if ! command -v promtool >/dev/null 2>&1; then
  echo "installing prometheus (for promtool)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends prometheus >/dev/null; }
fi
promtool --version | sed -n 1p  # sed reads it all: no SIGPIPE under pipefail

# HAProxy, the load balancer in front of the cluster's API processes, socat to talk to its
# runtime API, curl and jq for scripts/cluster.sh (Debian's packages; the script starts its
# own HAProxy on loopback, never the system service); sqlite3 for the fault suite's checks
# of SQLite files.
cluster_tools=(haproxy socat curl jq sqlite3)
missing=()
for tool in "${cluster_tools[@]}"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "installing ${missing[*]} (for the cluster and fault tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi
haproxy -v | sed -n 1p
