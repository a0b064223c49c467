#!/usr/bin/env bash
# Property-based tests of the HTTP API from its own OpenAPI document: schemathesis (pinned,
# from PyPI, scripts/schemathesis.sh) generates requests for every operation, valid and not,
# and runs every check on the answers (no 5xx, the status and body the document promises,
# schema-valid requests accepted, schema-invalid ones refused, …).
#
#   ORDERLY_BIN=target/debug/orderly tests/schemathesis.sh [--max-examples N] [schemathesis options]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${ORDERLY_BIN:?set ORDERLY_BIN to the orderly binary under test}"
# shellcheck source=checks.sh
source "$root/tests/checks.sh"
bin=$("$root/scripts/schemathesis.sh")
dir=${ORDERLY_SCHEMATHESIS_DIR:-$(mktemp -d)}
mkdir -p "$dir"
port=$(free_port)
db="sqlite://$dir/schemathesis.db"

# Rate limits lifted: schemathesis sends thousands of requests, most without a valid key.
export ORDERLY_DATABASE_URL=$db ORDERLY_LOG_FORMAT=json ORDERLY_MAIL_OUTBOX="$dir/outbox"
export ORDERLY_RATE_LIMITS__ENABLED=false
"$ORDERLY_BIN" migrate >/dev/null 2>&1
key=$("$ORDERLY_BIN" keys create --role admin --name schemathesis 2>/dev/null)
ORDERLY_LISTEN="127.0.0.1:$port" "$ORDERLY_BIN" run >>"$dir/orderly.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
wait_until 20 curl -sf "http://127.0.0.1:$port/healthz" || { echo "orderly did not start"; exit 1; }

args=("$@")
(( ${#args[@]} )) || args=(--max-examples 30)
"$bin/schemathesis" --config-file "$root/tests/schemathesis.toml" run "http://127.0.0.1:$port/openapi.json" --checks all \
  -H "Authorization: Bearer $key" --seed 1 --no-color "${args[@]}"
