#!/usr/bin/env bash
# Measures how soon `orderly run` serves on an existing SQLite file, and its idle resident
# memory. Usage: bench/startup.sh [path/to/orderly] [runs]
set -euo pipefail
bin=${1:-target/release/orderly}
runs=${2:-10}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export ORDERLY_DATABASE_URL="sqlite://$dir/orderly.db" ORDERLY_LISTEN=127.0.0.1:18181 RUST_LOG=warn

"$bin" migrate 2>/dev/null
"$bin" keys create --role admin --name bench >/dev/null 2>&1

for i in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  "$bin" run >/dev/null 2>&1 &
  pid=$!
  until curl -sf -o /dev/null http://127.0.0.1:18181/healthz; do sleep 0.002; done
  ready_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  sleep 2
  rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid"
  echo "run $i: ready after ${ready_ms} ms, idle RSS $((rss_kb / 1024)) MB (${rss_kb} kB)"
done
