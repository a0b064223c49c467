#!/usr/bin/env bash
# Installs schemathesis, pinned, from PyPI into a virtualenv cached outside the clone, and
# prints its bin folder (tests/schemathesis.sh uses it).
set -euo pipefail
pins=(schemathesis==4.32.5)
venv="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/orderly/schemathesis-$(printf '%s\n' "${pins[@]}" | sha256sum | cut -c1-12)"
if [[ ! -x $venv/bin/schemathesis ]]; then
  echo "installing ${pins[*]} into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
fi
echo "$venv/bin"
