#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows), which cannot run here, so the linters
# are their spec: actionlint (syntax, expressions, and the shell of every `run:`, through
# ShellCheck) must find nothing, zizmor (offline: no GitHub API) nothing of high severity;
# and every action used is pinned by a full commit SHA.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(bash scripts/workflow-tools.sh)
"$bin/actionlint" -no-color -shellcheck "$bin/shellcheck" .github/workflows/*.yml
echo "actionlint: no finding"
"$bin/zizmor" --offline --no-progress --min-severity high .github
echo "zizmor: no finding of high severity"
# Local actions (`./.github/actions/…`) are the repository's own, pinned with it.
unpinned=$(grep -rnE '^\s*(-\s*)?uses:' .github | grep -vE 'uses:\s*(\./|[^@]+@[0-9a-f]{40}(\s|$))' || true)
if [[ -n $unpinned ]]; then
  echo "actions not pinned by a commit SHA:" >&2
  echo "$unpinned" >&2
  exit 1
fi
echo "every action pinned by commit"
