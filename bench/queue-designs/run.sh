#!/usr/bin/env bash
# What each way of finishing a job costs PostgreSQL, without orderly in the way: one pgbench
# client claims 500 jobs at a time with orderly's claiming statement and finishes them with
#   update    — orderly's completion today (the row kept, state 'completed'),
#   move      — the row deleted and its columns inserted into a narrow jobs_completed table,
#   delete    — the row deleted (graphile-worker's way; nothing kept),
#   claimonly — no completion (what claiming alone costs).
#
#   bench/queue-designs/run.sh DESIGN [jobs=50000]
#
# Prints the jobs/s of draining `jobs` jobs that way, in a scratch database `qexp`.
set -euo pipefail
cd "$(dirname "$0")"
pg=${ORDERLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
design=$1
jobs=${2:-50000}
psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS qexp" -c "CREATE DATABASE qexp" 2>/dev/null
psql -q "$pg/qexp" -v n="$jobs" -f setup.sql >/dev/null 2>&1
script=$(mktemp)
trap 'rm -f "$script"' EXIT
cat claim.sql "finish-$design.sql" >"$script"
out=$(pgbench -n -M extended -c 1 -t $((jobs / 500)) -f "$script" "$pg/qexp" 2>&1)
tps=$(echo "$out" | awk '/^tps/ {print $3}')
echo "$design jobs=$jobs jobs/s=$(python3 -c "print(round($tps * 500))")"
psql -q "$pg/postgres" -c "DROP DATABASE qexp" 2>/dev/null
