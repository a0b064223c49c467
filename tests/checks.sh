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
