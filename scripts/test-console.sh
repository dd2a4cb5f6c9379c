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
cp clients/console/package.json clients/console/console.mjs clients/console/idp.mjs "$OUT/tool/"
(cd "$OUT/tool" && npm install --no-audit --no-fund --loglevel=error >&2)

. scripts/dev-server.sh console

# A second server whose console signs in through an OpenID Provider stub.
node "$OUT/tool/idp.mjs" "$WORK/idp.url" >"$WORK/idp.log" 2>&1 &
IDP_PID=$!
trap 'kill "$IDP_PID" "${OIDC_SERVER:-}" 2>/dev/null || true; kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/idp.url" ] && break; sleep 0.1; done
[ -s "$WORK/idp.url" ] || { log "the OpenID Provider stub did not start: $(cat "$WORK/idp.log")"; exit 1; }
IDP=$(cat "$WORK/idp.url")
cat >"$WORK/oidc.toml" <<TOML
[[auth.issuers]]
issuer = "$IDP"
audience = "keyward"
algorithms = ["RS256"]
jwks_url = "$IDP/jwks"

[console.oidc]
issuer = "$IDP"
client_id = "keyward-console"
scopes = "openid groups"
TOML
OIDC_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
OIDC_BASE=http://127.0.0.1:$OIDC_PORT
"$BIN" serve --data-dir "$WORK/oidc-data" --listen "127.0.0.1:$OIDC_PORT" --config "$WORK/oidc.toml" >"$WORK/oidc-server.log" 2>&1 &
OIDC_SERVER=$!
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "$OIDC_BASE/healthz" && break
  kill -0 "$OIDC_SERVER" 2>/dev/null || { log "keyward (OIDC) exited: $(tail -5 "$WORK/oidc-server.log")"; exit 1; }
  sleep 0.1
done

KEYWARD_CHROMIUM=$(command -v chromium) node "$OUT/tool/console.mjs" "$BASE" "$TOKEN" "$PWD/$OUT" "$OIDC_BASE" "$IDP"
