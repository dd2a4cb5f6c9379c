#!/usr/bin/env bash
# Starts a local server speaking the AWS KMS API (moto, installed from PyPI into a virtual
# environment when missing) on a free loopback port and prints `export` lines for the tests:
#   eval "$(scripts/start-kms.sh)"
# Stop it with: kill "$KEYWARD_KMS_PID"
set -euo pipefail

log() { echo "start-kms: $*" >&2; }

MOTO_VERSION=5.2.5
VENV=${KEYWARD_TOOLS_DIR:-$HOME/.cache/keyward/tools}/moto-$MOTO_VERSION

if [ ! -x "$VENV/bin/moto_server" ]; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    log "installing python3-venv"
    if [ "$(id -u)" -ne 0 ]; then log "need root to apt-get install python3-venv"; exit 1; fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends python3 python3-venv >&2
  fi
  log "installing moto $MOTO_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
fi
# moto signs RSASSA-PSS with the longest salt; AWS KMS (and RFC 7518's PS256) use a salt as long
# as the hash, which is what Keyward's conformance suite checks with the public key alone.
UTILS=$(echo "$VENV"/lib/python3*/site-packages/moto/kms/utils.py)
if grep -q "salt_length=padding.PSS.MAX_LENGTH" "$UTILS"; then
  log "making moto's RSASSA-PSS salt the hash's length, as AWS KMS's"
  sed -i 's/salt_length=padding.PSS.MAX_LENGTH/salt_length=padding.PSS.DIGEST_LENGTH/' "$UTILS"
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LOG=$(mktemp /tmp/keyward-kms.XXXXXX.log)
nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  if curl -sf -o /dev/null "http://127.0.0.1:$PORT/moto-api/"; then break; fi
  kill -0 "$PID" 2>/dev/null || { log "moto_server exited: $(cat "$LOG")"; exit 1; }
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/moto-api/" || { log "moto_server did not answer on $PORT"; exit 1; }
log "moto $MOTO_VERSION on 127.0.0.1:$PORT (pid $PID, log $LOG)"

echo "export KEYWARD_KMS_PID=$PID"
echo "export KEYWARD_TEST_KMS_ENDPOINT=http://127.0.0.1:$PORT"
echo "export KEYWARD_TEST_MOTO_SERVER=$VENV/bin/moto_server"
echo "export AWS_ACCESS_KEY_ID=test"
echo "export AWS_SECRET_ACCESS_KEY=test"
echo "export AWS_REGION=us-east-1"
