#!/usr/bin/env bash
# The operator's console in headless Chromium: installs Debian's chromium and playwright-core
# (pinned in tests/console/package-lock.json) when missing, then runs tests/console/
# console.test.mjs against ORDERLY_BIN (default: the debug build). Screenshots go to
# ORDERLY_CONSOLE_SCREENSHOTS; `tests/console.sh --screenshots` refreshes docs/console/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} == --screenshots ]]; then
  export ORDERLY_CONSOLE_SCREENSHOTS="$PWD/docs/console"
fi
export ORDERLY_BIN="${ORDERLY_BIN:-${CARGO_TARGET_DIR:-target}/debug/orderly}"
[[ -x $ORDERLY_BIN ]] || { echo "no orderly binary at $ORDERLY_BIN (cargo build first)" >&2; exit 1; }
export ORDERLY_CONSOLE_DIR="${ORDERLY_CONSOLE_DIR:-$(mktemp -d)}"
mkdir -p "$ORDERLY_CONSOLE_DIR"

if [[ ! -x /usr/bin/chromium ]]; then
  echo "installing chromium (browser tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }
fi
/usr/bin/python3 -c 'import aiosmtpd' || { echo "aiosmtpd is missing: run scripts/services.sh" >&2; exit 1; }
if [[ ! -d tests/console/node_modules/playwright-core ]]; then
  echo "installing playwright-core (npm ci)"
  (cd tests/console && npm ci --no-audit --no-fund --loglevel=error)
fi

cd tests/console
node console.test.mjs
