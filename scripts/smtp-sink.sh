#!/usr/bin/env bash
# Installs Postfix's `smtp-sink` (a fast SMTP server written in C that accepts every message
# and keeps none: the receipts benchmark's mail server), with no mail server left behind:
# Postfix is installed unconfigured ("No configuration"), and if its daemon runs anyway it is
# stopped and disabled, so nothing listens on port 25. Prints the path of smtp-sink.
set -euo pipefail
sink=/usr/sbin/smtp-sink
if [[ ! -x $sink ]]; then
  echo "installing Postfix (for smtp-sink), unconfigured" >&2
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get install -y -q --no-install-recommends postfix >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends postfix >/dev/null; }
fi
if command -v systemctl >/dev/null && systemctl is-enabled postfix >/dev/null 2>&1; then
  systemctl disable --now postfix >/dev/null 2>&1 || true
fi
postfix status >/dev/null 2>&1 && postfix stop >/dev/null 2>&1 || true
if ss -Hltn 'sport = :25' | grep -q .; then
  echo "something listens on port 25 after installing Postfix: $(ss -Hltnp 'sport = :25')" >&2
  exit 1
fi
echo "$sink"
