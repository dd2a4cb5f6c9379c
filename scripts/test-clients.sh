#!/usr/bin/env bash
# Proves the OpenAPI contract against a live server (part of the full suite): generates a
# Python client (openapi-python-client) and TypeScript types (openapi-typescript, used with
# openapi-fetch) from the committed openapi/keyward.openapi.json into target/clients/, runs a
# short program with each, fuzzes every operation with schemathesis with a valid token (no 5xx,
# no response outside the schema), and checks every protected operation answers 401 without
# one. Installs python3-venv and nodejs/npm with apt when missing; the tools from PyPI and npm
# at pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test-clients: $*" >&2; }
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then log "need root to apt-get install $*"; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "$@" >&2
}

TOOLS=${KEYWARD_TOOLS_DIR:-$HOME/.cache/keyward/tools}
VENV=$TOOLS/clients-venv-1
OUT=target/clients
SPEC=openapi/keyward.openapi.json

if [ ! -x "$VENV/bin/st" ] || [ ! -x "$VENV/bin/openapi-python-client" ]; then
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3 python3-venv
  log "installing schemathesis and openapi-python-client into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==4.32.5" "openapi-python-client==0.29.1" >&2
fi
command -v npm >/dev/null || apt_install nodejs npm

. scripts/dev-server.sh clients
mkdir -p "$OUT"

log "Python client (openapi-python-client)"
"$VENV/bin/openapi-python-client" generate --path "$SPEC" --output-path "$OUT/python" --overwrite \
  --config clients/python/generator.yaml >"$OUT/python-generate.log" 2>&1 \
  || { cat "$OUT/python-generate.log" >&2; exit 1; }
if grep -q "Endpoint will not be generated" "$OUT/python-generate.log"; then
  cat "$OUT/python-generate.log" >&2; log "the Python generator skipped operations"; exit 1
fi
PYTHONPATH=$OUT/python "$VENV/bin/python" clients/python/smoke.py "$BASE" "$TOKEN"

log "TypeScript client (openapi-typescript + openapi-fetch)"
mkdir -p "$OUT/typescript"
cp clients/typescript/package.json clients/typescript/tsconfig.json clients/typescript/smoke.ts "$OUT/typescript/"
(
  cd "$OUT/typescript"
  npm install --no-audit --no-fund --loglevel=error >&2
  npx --no-install openapi-typescript "../../../$SPEC" -o keyward.d.ts >&2
  npx --no-install tsc -p .
  node out/smoke.js "$BASE" "$TOKEN"
)

log "schemathesis: every operation with a valid token (no 5xx, responses match the schema)"
"$VENV/bin/st" run "$SPEC" --url "$BASE" -H "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,response_schema_conformance \
  --max-examples "${KEYWARD_FUZZ_EXAMPLES:-100}" --seed "${KEYWARD_FUZZ_SEED:-20261127}" --no-color

log "without a token: every protected operation answers 401"
"$VENV/bin/python" clients/unauthenticated.py "$BASE" "$SPEC"
log "all client checks passed"
