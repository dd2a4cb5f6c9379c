#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster on loopback from the system's binaries (installing
# them with apt when missing) and prints `export` lines for the test environment:
#   eval "$(scripts/start-postgres.sh)"
# Stop it with: scripts/stop-postgres.sh "$KEYWARD_PG_DIR"
# Durability settings are PostgreSQL's defaults (fsync on): audit tests rely on them.
set -euo pipefail

log() { echo "start-postgres: $*" >&2; }

bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }

BIN=$(bin_dir || true)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  log "installing PostgreSQL server binaries"
  if [ "$(id -u)" -ne 0 ]; then log "need root to apt-get install postgresql"; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >&2
  BIN=$(bin_dir)
fi

PORT=${KEYWARD_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
DIR=$(mktemp -d /tmp/keyward-pg.XXXXXX)

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$DIR"; fi

as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
  || { cat "$DIR/initdb.log" >&2; exit 1; }
as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=300" start >&2 \
  || { cat "$DIR/server.log" >&2; exit 1; }
log "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (data in $DIR)"

echo "export KEYWARD_PG_DIR=$DIR"
echo "export KEYWARD_PG_BIN=$BIN"
echo "export KEYWARD_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/postgres"
