# Sourced by the container scripts: installs podman and runc from Debian's packages when they
# are missing, and points podman at the project's settings (scripts/containers.conf).
# shellcheck shell=bash
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
  echo "installing podman and runc (Debian's packages)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends podman runc >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends podman runc >/dev/null; }
fi
CONTAINERS_CONF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf"
export CONTAINERS_CONF
