#!/usr/bin/env bash
# A rolling deploy of the order lifecycle, by hand: the release before it (OLD, a binary built
# from the commit before the lifecycle) moves orders with /pay, /fulfill and /cancel beside this
# one (NEW) on one PostgreSQL database. Where its whole move would be wrong for an order NEW has
# changed in part, the database refuses it (a 500 from OLD); elsewhere it goes through and NEW
# reads it as OLD meant it. Stock is read from the database, not through a cache.
#   scripts/check-rolling-lifecycle.sh OLD_BINARY NEW_BINARY
set -euo pipefail
OLD=${1:?the binary of the release before}
NEW=${2:?the binary of this release}
DB=orderly_rolling_$$
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $DB"
export ORDERLY_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
"$NEW" migrate >/dev/null 2>&1
KEY=$("$NEW" keys create --role admin --name rolling 2>/dev/null)
ORDERLY_LISTEN=127.0.0.1:18081 "$NEW" api --no-migrate >/tmp/rolling-new.log 2>&1 & new=$!
ORDERLY_LISTEN=127.0.0.1:18082 "$OLD" api --no-migrate >/tmp/rolling-old.log 2>&1 & old=$!
trap 'kill $new $old 2>/dev/null; sleep 0.5; psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
for port in 18081 18082; do for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done; done
call() { # port method path [body]
  curl -s -o /tmp/rolling-body -w '%{http_code}' -X "$2" -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
    -H "idempotency-key: $RANDOM$RANDOM" ${4:+-d "$4"} "http://127.0.0.1:$1$3"
}
field() { python3 -c "import json,sys; d=json.load(open('/tmp/rolling-body')); print(eval(sys.argv[1]))" "$1"; }
call 18081 POST /v1/products '{"sku":"ROLL","name":"Roll","price":1000,"stock":10}' >/dev/null
order() { call 18081 POST /v1/orders "{\"customer\":{\"email\":\"a@b.example\",\"name\":\"A\"},\"lines\":[{\"sku\":\"ROLL\",\"quantity\":$1}]}" >/dev/null; field 'd["id"]'; }
stock() { psql -qtA -h 127.0.0.1 -U postgres -d "$DB" -c "SELECT stock FROM products WHERE sku = 'ROLL'"; }
A=$(order 2); B=$(order 1); C=$(order 1); D=$(order 1)
echo "placed 5 units: stock $(stock)"
echo "new: 1 unit of A cancelled -> $(call 18081 POST /v1/orders/$A/cancellations '{"lines":[{"sku":"ROLL","quantity":1}]}'), stock $(stock)"
echo "old: /cancel on A (1 unit cancelled already) -> $(call 18082 POST /v1/orders/$A/cancel), stock $(stock)"
echo "new: 1.00 of B captured -> $(call 18081 POST /v1/orders/$B/payments '{"amount":100,"provider":"p","reference":"r1"}')"
echo "old: /pay on B (paid in part) -> $(call 18082 POST /v1/orders/$B/pay)"
echo "old: /cancel on C (untouched) -> $(call 18082 POST /v1/orders/$C/cancel), stock $(stock)"
call 18081 GET /v1/orders/$C >/dev/null; echo "new reads C: $(field '(d["status"], d["total"], d["lines"][0]["cancelled"])')"
echo "new: /pay on D -> $(call 18081 POST /v1/orders/$D/pay)"
echo "old: /fulfill on D (paid in full by the new release) -> $(call 18082 POST /v1/orders/$D/fulfill)"
call 18081 GET /v1/orders/$D >/dev/null; echo "new reads D: $(field '(d["status"], d["fulfillment_status"], d["lines"][0]["shipped"], d["captured"])')"
call 18081 GET /v1/orders/$A >/dev/null; echo "new reads A: $(field '(d["status"], d["lines"][0]["cancelled"], d["total"])')"
echo "old's log for the refusals:"; grep -o '"message":"[^"]*"\|order [0-9a-f-]* was changed in part[^"]*' /tmp/rolling-old.log | sort | uniq -c | head -5
