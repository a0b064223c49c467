# Sourced by the shell test suites (tests/cluster.sh, tests/container.sh): one way to state a
# check and count the failures.
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
