#!/usr/bin/env bash
# Fuzzes the code that reads what strangers send (fuzz/: request bodies, the webhook URL
# guard, the configuration) with libFuzzer, each target for a bounded time, from the seeds in
# fuzz/seeds. A crash fails the run and leaves its input in fuzz/artifacts/<target>/.
#
#   tests/fuzz.sh                 30 s per target (CI)
#   tests/fuzz.sh 600             longer, by hand (figures in docs/reliability.md)
#   tests/fuzz.sh 60 webhook_url  one target
#
# Built without a sanitizer (the code under test has no `unsafe`, and sanitizers need a
# nightly compiler) in fuzz/'s dev profile: debug assertions and overflow checks on, and
# opt-level 1 rather than cargo-fuzz's release build with one codegen unit, which takes
# several times as long to build on two cores for a bounded run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-30}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(body_decoding webhook_url config)

PATH="$("$root/scripts/cargo-fuzz.sh"):$PATH"
export CARGO_TARGET_DIR="${ORDERLY_FUZZ_TARGET_DIR:-${HOME:-/root}/.cache/orderly/fuzz-target}"
export CARGO_TERM_COLOR=never
cd "$root/fuzz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

flags=(--sanitizer none --dev)
started=$(date +%s)
for target in "${targets[@]}"; do
  cargo fuzz build "${flags[@]}" "$target" 2>&1 | { grep -v '^ *\(Compiling\|Downloaded\)' || true; }
done
echo "built in $(( $(date +%s) - started )) s"
# The lock file is committed; a build that had to change it is a dependency nobody chose.
git -C "$root" diff --quiet -- fuzz/Cargo.lock || { echo "fuzz/Cargo.lock changed" >&2; exit 1; }

failed=0
for target in "${targets[@]}"; do
  mkdir -p "$work/$target"
  # The first folder collects what the run finds; the seeds are only read.
  if cargo fuzz run "${flags[@]}" "$target" "$work/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
      -print_final_stats=1 >"$work/$target.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$work/$target.log")
    corpus=$(find "$work/$target" -type f | wc -l)
    printf '  ok    %-14s %8s runs in %s s, %s inputs kept, peak %s MB\n' \
      "$target" "$runs" "$seconds" "$corpus" "$rss"
  else
    failed=1
    printf '  FAIL  %s\n' "$target"
    grep -v '^#\|^INFO\|^\s*NEW\|^\s*REDUCE\|^\s*pulse' "$work/$target.log" | tail -n 40
  fi
done
exit "$failed"
