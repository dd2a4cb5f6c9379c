#!/usr/bin/env bash
# Drives the web console (/ui) in a real browser against a live server (part of the full
# suite): Debian's Chromium, headless, through playwright-core from npm (no browser download).
# Installs chromium and nodejs/npm with apt when missing. Screenshots of every page are kept in
# target/console/ (linked from docs/operations.md).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test-console: $*" >&2; }
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then log "need root to apt-get install $*"; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "$@" >&2
}
command -v chromium >/dev/null || apt_install chromium
command -v npm >/dev/null || apt_install nodejs npm

OUT=target/console
mkdir -p "$OUT/tool"
cp clients/console/package.json clients/console/console.mjs "$OUT/tool/"
(cd "$OUT/tool" && npm install --no-audit --no-fund --loglevel=error >&2)

. scripts/dev-server.sh console
KEYWARD_CHROMIUM=$(command -v chromium) node "$OUT/tool/console.mjs" "$BASE" "$TOKEN" "$PWD/$OUT"
