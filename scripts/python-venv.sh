# Sourced by the client suites: creates a pinned Python venv once (installing python3-venv with
# apt when missing).  Needs a `log` function.
#   python_venv DIR PACKAGE==VERSION...
python_venv() {
  local venv=$1
  shift
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    [ "$(id -u)" -eq 0 ] || { log "need root to apt-get install python3-venv"; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends python3-venv >&2
  fi
  log "installing $* into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "$@" >&2
}
