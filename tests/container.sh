#!/usr/bin/env bash
# Container tests: builds the image (scripts/image.sh) and runs it with podman.
#   1. `orderly run` on SQLite in one container: /healthz, the image's HEALTHCHECK, a product
#      and an order placed, the receipt written to the /data volume, the process not root,
#      SIGTERM exits 0 within the grace period.
#   2. `orderly migrate`, `orderly api` and `orderly worker` containers against the host's
#      PostgreSQL and Redis, each with a read-only root file system, no capabilities and no
#      privilege escalation (as deploy/k8s runs them): an order placed through the API
#      container, its receipt sent by the worker container over SMTP, both containers exit 0
#      on SIGTERM.
#
#   tests/container.sh          (needs root for podman; installs podman and runc if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=../scripts/podman-env.sh
source scripts/podman-env.sh

pg=${ORDERLY_CONTAINER_PG:-postgres://postgres@127.0.0.1:5432}
redis=${ORDERLY_CONTAINER_REDIS:-redis://127.0.0.1:6379}
db="orderly_container_test_$$"
work=$(mktemp -d)
name="orderly-test-$$"
grace=30

# shellcheck source=checks.sh
source "$root/tests/checks.sh"
# The uid, as the host sees it, of the main process of container $1.
host_uid() { awk '/^Uid:/ {print $2}' "/proc/$(podman inspect --format '{{.State.Pid}}' "$1")/status"; }
# Sends SIGTERM (podman stop, with the grace period), then checks exit status and time.
stop_and_check() { # container, what
  local started; started=$(now_ms)
  podman stop --time "$grace" "$1" >/dev/null 2>&1
  local took=$(( $(now_ms) - started ))
  check "$2 exit status after SIGTERM" "$(podman inspect --format '{{.State.ExitCode}}' "$1")" 0
  check "$2 stopped within the ${grace}s grace period" "$(( took < grace * 1000 ))" 1
  echo "        (took $took ms)"
}
cleanup() {
  podman rm -f -v "$name-run" "$name-api" "$name-worker" >/dev/null 2>&1 || true
  podman volume rm -f "$name-data" >/dev/null 2>&1 || true
  [[ -f $work/smtp.pid ]] && kill "$(cat "$work/smtp.pid")" 2>/dev/null || true
  psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# podman logs the missing systemd (for its health-check timers) on every container start.
quiet() { "$@" 2> >(grep -v 'systemd' >&2); }

echo "== building the image"
image=$(scripts/image.sh)
echo "  $image, $(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1 / 1e6}')"
labels=$(podman image inspect --format '{{index .Labels "org.opencontainers.image.version"}} {{index .Labels "org.opencontainers.image.revision"}}' "$image")
check "version and revision labels" "$labels" "$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1) $(git rev-parse HEAD)"

echo "== orderly run on SQLite"
port=$(free_port)
quiet podman run -d --name "$name-run" -p "127.0.0.1:$port:8080" -v "$name-data:/data" "$image" >/dev/null
url="http://127.0.0.1:$port"
if wait_until 30 curl -sf "$url/healthz"; then
  check "/healthz" "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" 200
else
  podman logs "$name-run" | tail -20
  check "/healthz answered within 30 s" no yes
fi
check "the image's HEALTHCHECK" "$(podman healthcheck run "$name-run" >/dev/null 2>&1 && echo healthy || echo unhealthy)" healthy
check "the process runs as uid 10001, not root" "$(host_uid "$name-run")" 10001
# The key is printed alone on an indented line (the log line before it names only its prefix,
# and the two streams may come out of `podman logs` in either order).
key=$(podman logs "$name-run" 2>&1 | sed -nE 's/^[[:space:]]+(oly_[A-Za-z0-9_-]+)[[:space:]]*$/\1/p' | tail -n1)
order=$(place_order "$url" "$key")
check "an order placed" "$([[ $order =~ ^[0-9a-f-]{36}$ ]] && echo yes || echo "no ($order)")" yes
receipt_in_volume() { podman exec "$name-run" test -s "/data/outbox/receipt-$order.eml"; }
check "its receipt in the /data volume's outbox" "$(wait_until 15 receipt_in_volume && echo yes || echo no)" yes
stop_and_check "$name-run" "orderly run"

echo "== orderly migrate, api and worker on PostgreSQL and Redis"
psql -qAtX "$pg/postgres" -c "CREATE DATABASE $db" >/dev/null
database_url="$pg/$db"
api_port=$(free_port) worker_port=$(free_port) smtp_port=$(free_port)
/usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox "$work/mail" \
  >"$work/smtp.log" 2>&1 </dev/null &
echo $! >"$work/smtp.pid"
# The host's loopback (PostgreSQL, Redis, the SMTP sink); as deploy/k8s runs the containers.
locked_down=(--network host --read-only --cap-drop ALL --security-opt no-new-privileges
  -e "ORDERLY_DATABASE_URL=$database_url" -e "ORDERLY_REDIS_URL=$redis"
  -e "ORDERLY_DATABASE__MIGRATE_ON_START=false")
quiet podman run --rm "${locked_down[@]}" "$image" migrate >"$work/migrate.log" 2>&1 \
  || { cat "$work/migrate.log"; exit 1; }
check "orderly migrate applied the migrations" "$(psql -qAtX "$database_url" -c 'SELECT count(*) > 0 FROM _sqlx_migrations')" t
key=$(quiet podman run --rm "${locked_down[@]}" "$image" keys create --role admin --name container-test 2>/dev/null)
quiet podman run -d --name "$name-api" "${locked_down[@]}" -e "ORDERLY_LISTEN=127.0.0.1:$api_port" \
  -e ORDERLY_HTTP__DRAIN=1s "$image" api >/dev/null
quiet podman run -d --name "$name-worker" "${locked_down[@]}" \
  -e "ORDERLY_WORKER__METRICS_LISTEN=127.0.0.1:$worker_port" -e "ORDERLY_SMTP_URL=smtp://127.0.0.1:$smtp_port" \
  "$image" worker >/dev/null
url="http://127.0.0.1:$api_port"
wait_until 30 curl -sf "$url/readyz" || { podman logs "$name-api" | tail -20; }
wait_until 30 curl -sf "http://127.0.0.1:$worker_port/healthz" || { podman logs "$name-worker" | tail -20; }
check "the API container is ready" "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" 200
check "the API's HEALTHCHECK" "$(podman healthcheck run "$name-api" >/dev/null 2>&1 && echo healthy || echo unhealthy)" healthy
check "the worker's HEALTHCHECK (its metrics address)" "$(podman healthcheck run "$name-worker" >/dev/null 2>&1 && echo healthy || echo unhealthy)" healthy
check "the API runs as uid 10001" "$(host_uid "$name-api")" 10001
check "the worker runs as uid 10001" "$(host_uid "$name-worker")" 10001
order=$(place_order "$url" "$key")
check "an order placed through the API container" "$(psql -qAtX "$database_url" -c "SELECT count(*) FROM orders WHERE id = '$order'" 2>/dev/null)" 1
receipt_sent() { grep -rlq "receipt-$order@" "$work/mail/new"; }
check "its receipt sent by the worker container over SMTP" "$(wait_until 30 receipt_sent && echo yes || echo no)" yes
receipt_sent || { podman logs "$name-worker" 2>&1 | tail -20; cat "$work/smtp.log"; }
stop_and_check "$name-api" "orderly api"
stop_and_check "$name-worker" "orderly worker"

if [[ $failures -gt 0 ]]; then
  echo "container tests: $failures failed"
  exit 1
fi
echo "container tests: all passed"
