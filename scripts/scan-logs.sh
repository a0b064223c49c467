#!/usr/bin/env bash
# Fails when a log line written during the test suite holds a secret: an API key (oly_ and 43
# characters), a webhook secret (whsec_…), or one of the passwords the tests put in URLs.
#   scripts/scan-logs.sh DIR
set -euo pipefail
dir=$1
pattern='oly_[A-Za-z0-9_-]{43}|whsec_[A-Za-z0-9+/=]{16,}|hunter2|s3cret'

# The scanner must find a planted secret, or a clean result means nothing.
planted=$(mktemp)
echo '{"message":"planted","key":"oly_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}' >"$planted"
grep -Eq "$pattern" "$planted" || { echo "scan-logs: the pattern misses a planted key" >&2; exit 1; }
rm -f "$planted"

# Every *.log below DIR: the test binaries' own, worker processes', and the cluster's.
files=$(find "$dir" -type f -name '*.log' | wc -l)
lines=$(find "$dir" -type f -name '*.log' -exec cat {} + 2>/dev/null | wc -l)
if [ "$files" -eq 0 ] || [ "$lines" -eq 0 ]; then
  echo "scan-logs: no log lines in $dir: nothing was scanned" >&2
  exit 1
fi
if find "$dir" -type f -name '*.log' -exec grep -EHn "$pattern" {} + | head -n 20 | grep .; then
  echo "scan-logs: secrets found in log lines (above)" >&2
  exit 1
fi
echo "scan-logs: $lines log lines in $files files, no secret found"
