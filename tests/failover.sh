#!/usr/bin/env bash
# Database failover tests: orderly (2 API and 2 worker processes behind HAProxy, under order
# load with the retry rule) on a Patroni cluster (scripts/ha-cluster.sh) whose primary is lost
# three ways: a switchover, SIGKILL of the primary's postmaster, SIGKILL of its Patroni and
# postmaster together. The checks are tests/cluster.sh's (no acknowledged order lost or
# doubled, stock adds up, every receipt sent) plus: no 5xx but 503, /readyz ready afterwards,
# job notifications resumed. And a commit whose connection is cut while it waits for the
# synchronous standby: 503, and the retry returns the order committed meanwhile.
#
#   ORDERLY_BIN=target/debug/orderly tests/failover.sh [switchover|postmaster-kill|node-kill|commit-unknown]...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${ORDERLY_BIN:?set ORDERLY_BIN to the orderly binary under test}"
if [[ -z ${ORDERLY_HA_DIR:-} ]]; then
  ORDERLY_HA_DIR=$(mktemp -d)/ha
  chmod o+x "$(dirname "$ORDERLY_HA_DIR")"  # Patroni runs as postgres
fi
export ORDERLY_HA_DIR
export ORDERLY_HA_RW_PORT=${ORDERLY_HA_RW_PORT:-25400}
trap '"$root/scripts/ha-cluster.sh" down >/dev/null 2>&1 || true' EXIT
"$root/scripts/ha-cluster.sh" up >/dev/null
export ORDERLY_HA=1 ORDERLY_CLUSTER_PG="postgres://postgres@127.0.0.1:$ORDERLY_HA_RW_PORT"
scenarios=("$@")
[[ ${#scenarios[@]} -gt 0 ]] || scenarios=(commit-unknown switchover postmaster-kill node-kill)
bash "$root/tests/cluster.sh" "${scenarios[@]}"
