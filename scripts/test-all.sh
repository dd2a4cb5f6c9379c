#!/usr/bin/env bash
# The full test suite: provisions every service the tests need on a fresh Debian machine
# (PostgreSQL, a SoftHSM2 token, a local KMS server, the client generators and the fuzzer),
# then runs formatting, lints and every test with missing services treated as failures.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo; echo "==> $*"; }

step "toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
cargo --version

step "packages"
missing=()
for tool in curl jq cvc5; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "missing ${missing[*]}: install them (apt-get install ${missing[*]})" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

step "PostgreSQL (throwaway cluster)"
eval "$(scripts/start-postgres.sh)"
trap 'scripts/stop-postgres.sh "$KEYWARD_PG_DIR"' EXIT

step "SoftHSM2 (throwaway token)"
eval "$(scripts/start-softhsm.sh)"
trap 'scripts/stop-postgres.sh "$KEYWARD_PG_DIR"; rm -rf "$KEYWARD_HSM_DIR"' EXIT

step "local KMS server (moto, for the aws-kms backend)"
eval "$(scripts/start-kms.sh)"
trap 'scripts/stop-postgres.sh "$KEYWARD_PG_DIR"; rm -rf "$KEYWARD_HSM_DIR"; kill "$KEYWARD_KMS_PID" 2>/dev/null || true' EXIT

export KEYWARD_REQUIRE_SERVICES=1

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "keyward policy validate / test (the repository's policy set and its cases)"
cargo run -q -p keyward-server -- policy validate policies
cargo run -q -p keyward-server -- policy test policies

step "cargo test --workspace (SQLite and Postgres; pkcs11 on SoftHSM2; aws-kms on moto)"
cargo test --workspace

step "fuzzing: blob parser, import tokens, envelope reader, SigV4, JWT, Cedar entities, audit rows, every JSON body (60 s each; longer: scripts/fuzz.sh SECONDS)"
scripts/fuzz.sh 60

step "generated clients (Python, TypeScript), API fuzzing (schemathesis), 401 without a token"
scripts/test-clients.sh

step "web console in headless Chromium (sign in, create, rotate, audit browser, policy tester; screenshots in target/console)"
scripts/test-console.sh

step "AWS clients against the AWS KMS-compatible API (boto3, AWS CLI, Encryption SDK CLI, sops, SigV4 attacks)"
scripts/test-aws-clients.sh

step "Kubernetes KMS v2 plugin (grpcio harness with generated stubs, grpcurl) over its unix socket"
scripts/test-kubernetes.sh
