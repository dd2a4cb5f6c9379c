#!/usr/bin/env bash
# Provisions a throwaway SoftHSM2 token (installing softhsm2 with apt when missing) and prints
# `export` lines for the test environment:
#   eval "$(scripts/start-softhsm.sh)"
# Remove it with: rm -rf "$KEYWARD_HSM_DIR"
set -euo pipefail

log() { echo "start-softhsm: $*" >&2; }

MODULE=/usr/lib/softhsm/libsofthsm2.so
if ! command -v softhsm2-util >/dev/null || [ ! -f "$MODULE" ]; then
  log "installing SoftHSM2"
  if [ "$(id -u)" -ne 0 ]; then log "need root to apt-get install softhsm2"; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends softhsm2 >&2
fi

DIR=$(mktemp -d /tmp/keyward-hsm.XXXXXX)
mkdir -p "$DIR/tokens"
cat >"$DIR/softhsm2.conf" <<CONF
directories.tokendir = $DIR/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
LABEL=keyward
PIN=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$PIN" >"$DIR/pin"
chmod 600 "$DIR/pin"
SOFTHSM2_CONF="$DIR/softhsm2.conf" softhsm2-util --init-token --free --label "$LABEL" \
  --so-pin "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" --pin "$PIN" >&2
log "token '$LABEL' in $DIR/tokens ($(softhsm2-util --version))"

echo "export KEYWARD_HSM_DIR=$DIR"
echo "export SOFTHSM2_CONF=$DIR/softhsm2.conf"
echo "export KEYWARD_TEST_PKCS11_MODULE=$MODULE"
echo "export KEYWARD_TEST_PKCS11_TOKEN=$LABEL"
echo "export KEYWARD_TEST_PKCS11_PIN_FILE=$DIR/pin"
