#!/usr/bin/env bash
# The Kubernetes manifests on a real container runtime: the Deployments of deploy/k8s, as
# `kubectl kustomize` renders them, started with `podman kube play` against the image (the one
# `scripts/image.sh` builds, or $ORDERLY_IMAGE), with a test ConfigMap and Secret pointing at
# this machine's PostgreSQL, Redis and an SMTP sink. The manifests are played as written but
# for the image, one replica each, and those values (the diff is printed, and anything more
# fails the test).
# Then: the API pod's /healthz and /readyz, the worker pod's /healthz, both pods' containers as
# the manifests' security context says (uid 10001, read-only root file system, no
# capabilities, no privilege escalation), and an order placed through the API pod whose receipt
# the worker pod sends over SMTP.
#
# What podman 4.3 does not do, and how this test stands in: it plays Pods, Deployments,
# PersistentVolumeClaims (ConfigMaps through --configmap; a Secret it stores as YAML, then
# cannot read, so the test Secret is made a podman secret as JSON, as podman reads it) but not the migration
# Job, Services, PodDisruptionBudgets or the HorizontalPodAutoscaler (those are validated
# offline by scripts/check-deploy.sh; the migration runs here as the Job's command, `orderly
# migrate`, from the host); one replica each (see below); no readiness probe, and its `httpGet` liveness probe
# is a `curl` inside a container that has none (so this test polls the endpoints itself).
# Pods on its default network cannot reach the host's 127.0.0.1, and host networking refuses
# the manifests' `containerPort`s (podman 4.3 publishes each on the host, which host
# networking cannot: "PortMappings can only be used with Bridge or slirp4netns networking"), so
# the pods play on slirp4netns with the host's loopback reachable as 10.0.2.2, their ports
# published on the host as podman does (8080 for the API, 9101 for the worker: those must be
# free, and a second replica could not bind them).
#
#   ORDERLY_BIN=target/debug/orderly tests/kube.sh      (needs root for podman)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
: "${ORDERLY_BIN:?set ORDERLY_BIN to the orderly binary the image packages}"
# shellcheck source=../scripts/podman-env.sh
source scripts/podman-env.sh
# shellcheck source=checks.sh
source "$root/tests/checks.sh"

pg=${ORDERLY_CONTAINER_PG:-postgres://postgres@127.0.0.1:5432}
redis=${ORDERLY_CONTAINER_REDIS:-redis://127.0.0.1:6379}
db="orderly_kube_test_$$"
work=$(mktemp -d)
cleanup() {
  [[ -f $work/played.yaml ]] && podman kube down "$work/played.yaml" >/dev/null 2>&1 || true
  podman secret rm orderly >/dev/null 2>&1 || true
  [[ -f $work/smtp.pid ]] && kill "$(cat "$work/smtp.pid")" 2>/dev/null || true
  psql -qAtX "$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

image=${ORDERLY_IMAGE:-}
if [[ -z $image ]]; then
  echo "== building the image"
  image=$(scripts/image.sh)
fi
echo "  $image"

echo "== the database, migrated as the migration Job would, and a key"
psql -qAtX "$pg/postgres" -c "CREATE DATABASE $db" >/dev/null
database_url="$pg/$db"
ORDERLY_DATABASE_URL=$database_url "$ORDERLY_BIN" migrate >"$work/migrate.log" 2>&1 \
  || { cat "$work/migrate.log"; exit 1; }
key=$(ORDERLY_DATABASE_URL=$database_url "$ORDERLY_BIN" keys create --role admin --name kube-test 2>/dev/null)

# The pods' ports, as podman publishes the manifests' containerPorts; the SMTP sink's.
api_port=8080 worker_port=9101 smtp_port=$(free_port)
for port in "$api_port" "$worker_port"; do
  ! curl -s -o /dev/null "http://127.0.0.1:$port/" || { echo "port $port is taken; the pods publish on it" >&2; exit 1; }
done
# The host's loopback, as the pods reach it.
host=10.0.2.2
# slirp4netns for that network, and catatonit, the pause process of a pod's infra container.
if ! command -v slirp4netns >/dev/null 2>&1 || ! command -v catatonit >/dev/null 2>&1; then
  echo "installing slirp4netns and catatonit (Debian's packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slirp4netns catatonit >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q slirp4netns catatonit >/dev/null; }
fi
/usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox "$work/mail" \
  >"$work/smtp.log" 2>&1 </dev/null &
echo $! >"$work/smtp.pid"

echo "== the manifests: deploy/k8s rendered, played as written but for the image and the values"
kubectl kustomize deploy/k8s >"$work/rendered.yaml"
config='{"ORDERLY_HTTP__DRAIN": "1s"}'
secret=$(printf '{"ORDERLY_DATABASE_URL": "%s", "ORDERLY_REDIS_URL": "%s", "ORDERLY_SMTP_URL": "smtp://%s:%s"}' \
  "${database_url/127.0.0.1/$host}" "${redis/127.0.0.1/$host}" "$host" "$smtp_port")
tools=$(bash scripts/deploy-tools.sh)
"$tools/python" tests/kube_manifests.py "$work/rendered.yaml" "$work" "$image" "$config" "$secret"

echo "== podman kube play"
podman secret rm orderly >/dev/null 2>&1 || true
podman secret create orderly "$work/secret.json" >/dev/null
podman kube play --network slirp4netns:allow_host_loopback=true --configmap "$work/configmap.yaml" "$work/played.yaml" \
  >"$work/play.log" 2>&1 || { cat "$work/play.log"; exit 1; }
api=$(podman ps --format '{{.Names}}' | grep -m1 -- '-api$' || true)
worker=$(podman ps --format '{{.Names}}' | grep -m1 -- '-worker$' || true)
echo "  containers: ${api:-no api container} ${worker:-no worker container}"
url="http://127.0.0.1:$api_port"
wait_until 60 curl -sf "$url/readyz" || { podman logs "$api" 2>&1 | tail -20; }
wait_until 60 curl -sf "http://127.0.0.1:$worker_port/healthz" || { podman logs "$worker" 2>&1 | tail -20; }
check "the API pod's /healthz" "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" 200
check "the API pod's /readyz" "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" 200
check "the worker pod's /healthz" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$worker_port/healthz")" 200

for container in "$api" "$worker"; do
  inspect() { podman inspect --format "$1" "$container"; }
  uid=$(awk '/^Uid:/ {print $2}' "/proc/$(inspect '{{.State.Pid}}')/status")
  check "$container runs as uid 10001 (runAsUser)" "$uid" 10001
  check "$container's root file system is read-only" "$(inspect '{{.HostConfig.ReadonlyRootfs}}')" true
  check "$container has no capabilities" "$(inspect '{{len .EffectiveCaps}}')" 0
  check "$container may not gain privileges" \
    "$(inspect '{{range .HostConfig.SecurityOpt}}{{.}} {{end}}' | grep -c 'no-new-privileges')" 1
done

order=$(place_order "$url" "$key")
check "an order placed through the API pod" \
  "$(psql -qAtX "$database_url" -c "SELECT count(*) FROM orders WHERE id = '$order'" 2>/dev/null)" 1
receipt_sent() { grep -rlq "receipt-$order@" "$work/mail/new"; }
check "its receipt sent by the worker pod over SMTP" "$(wait_until 30 receipt_sent && echo yes || echo no)" yes
receipt_sent || { podman logs "$worker" 2>&1 | tail -20; cat "$work/smtp.log"; }

if [[ $failures -gt 0 ]]; then
  echo "kube play tests: $failures failed"
  exit 1
fi
echo "kube play tests: all passed"
