#!/usr/bin/env bash
# Builds the book (docs/, mdbook 0.5) into OUT (default: book/) and checks every internal link
# of the book and the README offline (scripts/check-links.py). mdbook is built once from
# crates.io, pinned, into a folder outside the clone (as cargo-fuzz is), and reused.
#
#   scripts/docs.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.5.4
root="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/orderly/tools/mdbook-$version"
if [[ ! -x $root/bin/mdbook ]]; then
  echo "installing mdbook $version into $root (a few minutes, once)"
  cargo install --quiet --locked --version "$version" --root "$root" mdbook
fi
out="${1:-book}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$root/bin/mdbook" build docs --dest-dir "$(realpath -m "$out")" 2>&1 | tee "$log"
# A warning (an unclosed HTML tag: markup the Markdown did not mean) fails the build too.
if grep -q ' WARN ' "$log"; then
  echo "docs.sh: mdbook warned; see above" >&2
  exit 1
fi
echo "book: $(find "$out" -name '*.html' | wc -l) pages in $out"
python3 scripts/check-links.py
