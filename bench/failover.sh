#!/usr/bin/env bash
# PostgreSQL failover, measured over many runs: tests/failover.sh with each failure kind
# (switchover, postmaster kill, node kill) repeated N times on one HA cluster, then a table
# per kind with the median and the worst of each figure. Each run is a whole test: its checks
# (no acknowledged order lost or doubled, no 5xx but 503, …) must pass too.
#
#   bench/failover.sh [runs=5]      ORDERLY_BIN picks the binary (default: the release build)
#
# Every run's figures, one JSON object per line, are kept in $ORDERLY_FAILOVER_FIGURES
# (default: a file in the run's folder, printed at the end).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=${1:-5}
if [[ -z ${ORDERLY_BIN:-} ]]; then
  cargo build --release --quiet -p orderly
  ORDERLY_BIN="${CARGO_TARGET_DIR:-target}/release/orderly"
fi
export ORDERLY_BIN
work=$(mktemp -d)
export ORDERLY_CLUSTER_TEST_DIR=$work
export ORDERLY_FAILOVER_FIGURES=${ORDERLY_FAILOVER_FIGURES:-$work/figures.jsonl}
scenarios=()
for _ in $(seq "$runs"); do scenarios+=(switchover postmaster-kill node-kill); done
status=0
bash tests/failover.sh "${scenarios[@]}" | tee "$work/failover.log" || status=$?

jq -rs '
  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def fig(f): (map(f) | "\(median) / \(max)");
  group_by(.kind)[] |
  "\(.[0].kind) (\(length) runs; median / worst): write gap \(fig(.write_gap_ms)) ms; " +
  "writable primary again \(fig(.primary_ms)) ms; /readyz ready again \(fig(.ready_ms)) ms, " +
  "not ready for \(fig(.ready_ms - .unready_from_ms)) ms; 503s answered \(fig(.answered_503)); " +
  "client retries \(fig(.retries)); finally failed \(map(.failed) | add); " +
  "acknowledged \(map(.acknowledged) | add), lost \(map(.missing) | add), " +
  "doubled \(map(.doubled) | add); other 5xx \(map(.other_5xx) | add)"
' "$ORDERLY_FAILOVER_FIGURES"
echo "figures: $ORDERLY_FAILOVER_FIGURES; logs: $work"
exit "$status"
