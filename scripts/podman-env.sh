# Sourced by the container scripts: installs podman and runc from Debian's packages when they
# are missing, and points podman at the project's settings (scripts/containers.conf).
# Podman 4.3 here networks through CNI; containers find each other by name (Compose's
# services) only with the dnsname plugin, which no package of podman's pulls in.
# shellcheck shell=bash
dnsname_plugin=/usr/lib/cni/dnsname
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 || [[ ! -x $dnsname_plugin ]]; then
  echo "installing podman, runc and the CNI dnsname plugin (Debian's packages)" >&2
  export DEBIAN_FRONTEND=noninteractive
  packages=(podman runc golang-github-containernetworking-plugin-dnsname)
  apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null; }
fi
CONTAINERS_CONF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf"
export CONTAINERS_CONF
