# Sourced by the shell test suites (tests/cluster.sh, container.sh, compose.sh): one way to state a
# check and count the failures, and small waits.
# shellcheck shell=bash

failures=0
check() { # description, actual, expected
  if [[ $2 == "$3" ]]; then
    printf '  ok    %s (%s)\n' "$1" "$2"
  else
    printf '  FAIL  %s: got %s, expected %s\n' "$1" "$2" "$3"
    failures=$((failures + 1))
  fi
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Waits up to $1 seconds for the command after it to succeed.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || return 1
    sleep 0.2
  done
}
# A port nothing listens on, below the ephemeral range (see scripts/free-port.py).
free_port() { /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/../scripts/free-port.py"; }
# Creates a product and places one order at $1 with admin key $2, keeping the answers in
# $work; prints the order's id (tests/container.sh, tests/kube.sh).
place_order() {
  local url=$1 key=$2 sku="MUG-$RANDOM" status
  status=$(curl -s -o "$work/product.json" -w '%{http_code}' "$url/v1/products" \
    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d "{\"sku\": \"$sku\", \"name\": \"Mug\", \"price\": 1250, \"stock\": 10}")
  [[ $status == 201 ]] || { echo "creating a product: $status $(cat "$work/product.json")" >&2; return 0; }
  status=$(curl -s -o "$work/order.json" -w '%{http_code}' "$url/v1/orders" \
    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -H "Idempotency-Key: container-$sku" \
    -d "{\"customer\": {\"email\": \"ana@example.com\", \"name\": \"Ana\"}, \"lines\": [{\"sku\": \"$sku\", \"quantity\": 2}]}")
  [[ $status == 201 ]] || { echo "placing an order: $status $(cat "$work/order.json")" >&2; return 0; }
  jq -r .id "$work/order.json"
}
