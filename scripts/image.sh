#!/usr/bin/env bash
# Builds the orderly container image with podman: the release binary, stripped, on the base
# image (Debian 12 slim; made from Debian's packages by scripts/base-image.sh when no registry
# is reachable). Prints the image's name.
#
#   scripts/image.sh [--tag NAME] [--base IMAGE]
#
#   --tag    the image's name (default localhost/orderly:<version>, also tagged :latest)
#   --base   the base image (default: the local one from scripts/base-image.sh)
#   ORDERLY_BIN  a binary to package instead of building the release one (CI packages the
#                debug build its tests ran: the same Containerfile, without a second build)
#   CARGO_TARGET_DIR is honoured; the binary is staged in dist/ (the build context).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=podman-env.sh
source scripts/podman-env.sh

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
tag="localhost/orderly:$version" base=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    *) echo "image.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n $base ]] || base=$(scripts/base-image.sh)

binary=${ORDERLY_BIN:-}
if [[ -z $binary ]]; then
  cargo build --release --locked --quiet -p orderly
  binary="${CARGO_TARGET_DIR:-target}/release/orderly"
fi
mkdir -p dist
strip -o dist/orderly "$binary"

# Docker's image format: the OCI one has no HEALTHCHECK.
podman build --quiet --format docker -f Containerfile \
  --build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
  -t "$tag" -t "${tag%:*}:latest" . >/dev/null
echo "$tag"
