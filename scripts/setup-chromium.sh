#!/usr/bin/env bash
# Installs Debian's Chromium for the web UI's browser tests and benchmark (driven by
# playwright-core, which never downloads a browser of its own). Idempotent and non-interactive.
#
# Environment: CHROMIUM (default /usr/bin/chromium).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

log() { echo "setup-chromium: $*"; }
die() { echo "setup-chromium: $*" >&2; exit 1; }

if [[ -x "$CHROMIUM" ]]; then
  log "found $CHROMIUM"
  exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "must run as root to install chromium"
  exec sudo -E -n bash "${BASH_SOURCE[0]}" "$@"
fi

log "installing chromium"
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
[[ -x "$CHROMIUM" ]] || die "chromium installed but $CHROMIUM is missing"
log "installed $("$CHROMIUM" --version 2>/dev/null | head -1)"
