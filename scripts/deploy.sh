#!/usr/bin/env bash
# Rolls IMAGE out to the cluster kubectl points at, in the order docs/deploying.md gives: the
# manifests of deploy/k8s as `kubectl kustomize` renders them, with IMAGE in place of the
# image they name; the migration job first (waited for), then the workers, then the APIs,
# waiting for each rollout. When a rollout does not finish, the Deployments this run changed
# are rolled back to their previous revision and the script fails.
#
#   scripts/deploy.sh IMAGE          e.g. ghcr.io/shop/orderly:0.2.0
#   ORDERLY_ROLLOUT_TIMEOUT=10m      how long each step may take
set -euo pipefail
image=${1:?usage: scripts/deploy.sh IMAGE}
timeout=${ORDERLY_ROLLOUT_TIMEOUT:-10m}
ns=orderly
root=$(cd "$(dirname "$0")/.." && pwd)
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT

kubectl kustomize "$root/deploy/k8s" | sed -E "s#^( *image: )localhost/orderly:[^ ]+\$#\1$image#" >"$rendered"
grep -q "image: $image\$" "$rendered" || { echo "deploy.sh: the manifests name no orderly image to replace" >&2; exit 1; }
component() { kubectl apply -f "$rendered" --selector "app.kubernetes.io/component=$1"; }

echo "== $image: namespace, configuration, budgets, autoscaler"
kubectl apply -f "$rendered" --selector '!app.kubernetes.io/component'

echo "== the migration job"
kubectl -n "$ns" delete job orderly-migrate --ignore-not-found --wait=true
component migrate
kubectl -n "$ns" wait --for=condition=complete job/orderly-migrate --timeout="$timeout"

changed=()
roll_back() {
  echo "deploy.sh: a rollout did not finish; rolling back ${changed[*]}" >&2
  for deployment in "${changed[@]}"; do
    kubectl -n "$ns" rollout undo "deployment/$deployment" || true
    kubectl -n "$ns" rollout status "deployment/$deployment" --timeout="$timeout" || true
  done
  exit 1
}
for part in worker api; do
  echo "== the ${part}s"
  component "$part"
  changed=("orderly-$part" "${changed[@]}")
  kubectl -n "$ns" rollout status "deployment/orderly-$part" --timeout="$timeout" || roll_back
done
echo "== $image is out"
