#!/usr/bin/env bash
# Resident memory of `orderly run` across floods of stalled request bodies: does it stop
# growing? Each flood is tests/slow_bodies.py from six client addresses at the anonymous rate
# (20 new connections a second each) for SECONDS, then the wait until every stalled body is
# cut off; the process's RSS is read before the first flood and after each.
#
#   bench/slow_bodies.sh [FLOODS] [SECONDS]     (default 10 floods of 15 s)
#
# ORDERLY_BIN picks the binary (default: a release build). Extra ORDERLY_* variables pass
# through to the process (e.g. MALLOC_ARENA_MAX=2 to compare glibc's arenas).
set -euo pipefail
cd "$(dirname "$0")/.."
floods=${1:-10}
seconds=${2:-15}
work=$(mktemp -d)
# shellcheck source=lib.sh
source bench/lib.sh
trap 'stop_all; rm -rf "$work"' EXIT
bin=$(bench_binary)
port=$(/usr/bin/python3 scripts/free-port.py)
url=$(fresh_database sqlite slow_bodies)
pid=$(start run "$url" "$port" RUST_LOG=warn ORDERLY_MAIL_OUTBOX="$work/outbox")
rss() { awk '/VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$pid/status"; }
echo "binary: $bin"
echo "before the first flood: $(rss) MB"
for i in $(seq 1 "$floods"); do
  flood=$(/usr/bin/python3 tests/slow_bodies.py 127.0.0.1 "$port" "$seconds" 20 \
    127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6 127.0.0.7)
  echo "after flood $i: $(rss) MB   $flood"
done
