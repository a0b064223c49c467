#!/usr/bin/env bash
# Makes a fresh Debian 12 (a GitHub Actions job's `debian:bookworm` container, as root) the
# machine .ci/run expects, as orderly's own CI machines come: build tools, the pinned Rust
# toolchain with clippy and rustfmt, Python, Node.js and npm, and PostgreSQL (trust on
# loopback), Redis and NATS installed from Debian's packages (scripts/services.sh starts them;
# NATS needs `-js`, which a service container cannot be given). Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
toolchain=1.95.0

apt-get update -q
apt-get install -y -q --no-install-recommends \
  build-essential pkg-config ca-certificates curl git xz-utils procps iproute2 sudo \
  python3 python3-venv python3-pip nodejs npm \
  postgresql postgresql-client redis-server redis-tools nats-server
# As on orderly's machines: the postgres user connects without a password over the socket and
# loopback (a CI container's own server, reachable from nowhere else).
for hba in /etc/postgresql/*/main/pg_hba.conf; do
  printf '%s\n' 'local all all trust' 'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust' >"$hba"
done
mkdir -p /var/lib/redis /var/log/redis /var/lib/nats-server

if ! command -v rustup >/dev/null 2>&1 && [[ ! -x ${CARGO_HOME:-$HOME/.cargo}/bin/rustup ]]; then
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --no-modify-path --profile minimal --default-toolchain none
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
rustup toolchain install "$toolchain" --profile minimal --component clippy,rustfmt
rustup default "$toolchain"
# Later steps of a GitHub job find cargo on their PATH.
if [[ -n ${GITHUB_PATH:-} ]]; then
  echo "${CARGO_HOME:-$HOME/.cargo}/bin" >>"$GITHUB_PATH"
fi
