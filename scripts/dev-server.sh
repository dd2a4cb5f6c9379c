# Sourced by the client suites: builds `keyward` and starts it on its embedded default in a
# throwaway directory on a free loopback port, stopped and removed on exit.
#   . scripts/dev-server.sh NAME    # sets WORK, BASE, TOKEN, SERVER (needs a `log` function)
log "building keyward"
cargo build -q -p keyward-server
BIN=${CARGO_TARGET_DIR:-target}/debug/keyward

WORK=$(mktemp -d "/tmp/keyward-$1.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
"$BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "$BASE/healthz" && break
  kill -0 "$SERVER" 2>/dev/null || { log "keyward exited: $(tail -5 "$WORK/server.log")"; exit 1; }
  sleep 0.1
done
TOKEN=$(cat "$WORK/data/admin.token")
