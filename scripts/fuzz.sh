#!/usr/bin/env bash
# Fuzzes Keyward's parsers with cargo-fuzz (libFuzzer, nightly toolchain): the ciphertext blob
# parser, the import token parser, the envelope file reader (`keyward decrypt`), SigV4 parsing and verification, bearer
# tokens (JWT), the request-to-Cedar entity builder, the audit verifier's row reader, and every
# operation's JSON body through the whole REST application (in process, on in-memory ports).
# Each target runs for SECONDS (default 60; the full suite's setting) from its corpus in
# tests/fuzz/corpus/<target>, which keeps what the run found. A crash fails the script and
# leaves its input in tests/fuzz/artifacts/<target>/: add it to the corpus and fix the bug.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "fuzz: $*" >&2; }
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(blob_parse import_token envelope_read sigv4_verify jwt_verify authz_entities audit_rows http_bodies)

rustup toolchain list | grep -q '^nightly' || { log "the nightly toolchain is required (rustup toolchain install nightly)"; exit 1; }
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install --locked cargo-fuzz >&2
fi
log "building the fuzz targets (nightly, address sanitizer)"
cargo +nightly fuzz build --fuzz-dir tests/fuzz -O >&2
for target in "${TARGETS[@]}"; do
  mkdir -p "tests/fuzz/corpus/$target"
  log "$target for ${SECONDS_EACH}s"
  # The in-process application keeps its runtime and in-memory state for the whole run (one
  # per process, torn down only at exit): leak checks would report that, not a leak.
  leaks=1
  [ "$target" = http_bodies ] && leaks=0
  ASAN_OPTIONS="detect_leaks=$leaks" cargo +nightly fuzz run --fuzz-dir tests/fuzz -O "$target" "tests/fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -max_len=16384 -detect_leaks="$leaks" -print_final_stats=1 2>&1 | tail -n 12 >&2
done
log "ok: no crash in ${#TARGETS[@]} targets"
