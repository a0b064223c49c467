#!/usr/bin/env bash
# Memory of the orderly containers, idle and under the order benchmark, as a container limit
# sees it: one `orderly api` and one `orderly worker` container (the image from
# scripts/image.sh) on the host's PostgreSQL and Redis, `orderly bench orders` at 32 clients
# against the API, every receipt sent over SMTP to a sink that drops it. Prints, for each
# container, the process's resident peak (VmHWM) and the container's memory cgroup (current
# and peak usage, page cache included, which is what a memory limit counts).
#
#   bench/container-memory.sh [seconds=20] [concurrency=32]
set -euo pipefail
export PGOPTIONS="-c client_min_messages=warning"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-20}
concurrency=${2:-32}
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
db=orderly_container_memory
# shellcheck source=../scripts/podman-env.sh
source scripts/podman-env.sh
image=$(scripts/image.sh)
bin="${CARGO_TARGET_DIR:-target}/release/orderly"
free_port() { /usr/bin/python3 "$(dirname "$0")/../scripts/free-port.py"; }
api_port=$(free_port) worker_port=$(free_port) smtp_port=$(free_port)
work=$(mktemp -d)
cleanup() {
  podman rm -f -v orderly-memory-api orderly-memory-worker >/dev/null 2>&1 || true
  [[ -f $work/smtp.pid ]] && kill "$(cat "$work/smtp.pid")" 2>/dev/null || true
  psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
/usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Sink >/dev/null 2>&1 </dev/null &
echo $! >"$work/smtp.pid"
common=(--network host --read-only -e "ORDERLY_DATABASE_URL=$pg/$db" -e ORDERLY_REDIS_URL=redis://127.0.0.1:6379
  -e RUST_LOG=warn)
podman run --rm "${common[@]}" "$image" migrate >/dev/null 2>&1
key=$(podman run --rm "${common[@]}" "$image" keys create --role admin --name memory 2>/dev/null)
podman run -d --name orderly-memory-api "${common[@]}" -e "ORDERLY_LISTEN=127.0.0.1:$api_port" "$image" api >/dev/null 2>&1
podman run -d --name orderly-memory-worker "${common[@]}" -e "ORDERLY_WORKER__METRICS_LISTEN=127.0.0.1:$worker_port" \
  -e "ORDERLY_SMTP_URL=smtp://127.0.0.1:$smtp_port" "$image" worker >/dev/null 2>&1
until curl -sf -o /dev/null "http://127.0.0.1:$api_port/readyz"; do sleep 0.1; done
until curl -sf -o /dev/null "http://127.0.0.1:$worker_port/healthz"; do sleep 0.1; done
sleep 2

# Prints "VmRSS VmHWM cgroup-usage cgroup-peak" in MB for container $1.
memory() {
  local pid cg
  pid=$(podman inspect --format '{{.State.Pid}}' "$1")
  cg=/sys/fs/cgroup/memory$(awk -F: '$2 == "memory" {print $3}' "/proc/$pid/cgroup")
  awk '/^VmRSS|^VmHWM/ {printf "%.1f ", $2 / 1024}' "/proc/$pid/status"
  awk '{printf "%.1f ", $1 / 1048576}' "$cg/memory.usage_in_bytes" "$cg/memory.max_usage_in_bytes"
}
idle_api=$(memory orderly-memory-api) idle_worker=$(memory orderly-memory-worker)
report=$("$bin" bench orders --url "http://127.0.0.1:$api_port" --key "$key" \
  --concurrency "$concurrency" --duration "$seconds" --json 2>/dev/null)
until [[ $(psql -qAtX "$pg/$db" -c "SELECT count(*) FROM jobs WHERE kind = 'send_receipt' AND state <> 'completed'") == 0 ]]; do
  sleep 0.5
done
loaded_api=$(memory orderly-memory-api) loaded_worker=$(memory orderly-memory-worker)
python3 - "$report" "$idle_api" "$loaded_api" "$idle_worker" "$loaded_worker" <<'PY'
import json, sys
report = json.loads(sys.argv[1])
def figures(idle, loaded):
    i, l = [float(x) for x in idle.split()], [float(x) for x in loaded.split()]
    return {"idle_rss_mb": i[0], "peak_rss_mb": l[1], "cgroup_idle_mb": i[2], "cgroup_peak_mb": l[3]}
print(json.dumps({"orders_per_s": report["orders_per_s"], "errors": report["errors"],
                  "api": figures(sys.argv[2], sys.argv[3]), "worker": figures(sys.argv[4], sys.argv[5])}))
PY
