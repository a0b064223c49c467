#!/usr/bin/env bash
# Makes the image's base where no container registry is reachable: a Debian 12 "minbase"
# root file system from Debian's packages (mmdebstrap), without manuals, docs and
# translations, as Debian's bookworm-slim image is, imported into podman. Prints its name.
#
#   scripts/base-image.sh            # localhost/orderly-base:bookworm-slim
#
# Done once: the image stays in podman's storage, and its tarball is cached in
# ~/.cache/orderly/ so that an emptied image store is refilled without downloading again.
# With a registry, use the default base (docker.io/library/debian:bookworm-slim) instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=podman-env.sh
source "$root/scripts/podman-env.sh"

name=localhost/orderly-base:bookworm-slim
cache="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/orderly"
tarball="$cache/base-bookworm-slim-v2.tar"  # v2: merged /usr without usrmerge
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if podman image exists "$name"; then echo "$name"; exit 0; fi

if [[ ! -s $tarball ]]; then
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    echo "installing mmdebstrap (Debian's package)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends mmdebstrap >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends mmdebstrap >/dev/null; }
  fi
  mkdir -p "$cache"
  echo "building the base root file system from $mirror (once; about a minute)" >&2
  # The merged-usr hook installs usr-is-merged, as Debian's images do, instead of usrmerge
  # (which would bring the whole of perl, 47 MB).
  mmdebstrap --quiet --variant=minbase --format=tar \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --aptopt='Acquire::Languages "none"' \
    bookworm "$tarball.partial" "$mirror" >"$cache/base-image.log" 2>&1 \
    || { cat "$cache/base-image.log" >&2; exit 1; }
  mv "$tarball.partial" "$tarball"
fi
podman import --quiet --change 'CMD ["bash"]' "$tarball" "$name" >/dev/null
echo "$name"
