#!/usr/bin/env bash
# Stops a cluster started by start-postgres.sh and removes its directory.
set -uo pipefail
DIR=${1:-${KEYWARD_PG_DIR:-}}
[ -n "$DIR" ] && [ -d "$DIR/data" ] || exit 0
BIN=${KEYWARD_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)}
if [ "$(id -u)" -eq 0 ]; then
  runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1
else
  "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1
fi
rm -rf "$DIR"
