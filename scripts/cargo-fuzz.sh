#!/usr/bin/env bash
# Installs cargo-fuzz, pinned, from crates.io into a folder cached outside the clone, and
# prints its bin folder (tests/fuzz.sh uses it). libFuzzer itself comes with the fuzz crate's
# libfuzzer-sys and is built by cargo, with the machine's C++ compiler.
set -euo pipefail
version=0.13.2
root="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/orderly/cargo-fuzz-$version"
if [[ ! -x $root/bin/cargo-fuzz ]]; then
  echo "installing cargo-fuzz $version into $root" >&2
  # Its own target folder: the service's is built with other flags.
  CARGO_TARGET_DIR="$root/build" cargo install --quiet --locked --root "$root" \
    cargo-fuzz --version "=$version" >&2
  rm -rf "$root/build"
fi
echo "$root/bin"
