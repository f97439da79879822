#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust unit and integration tests, end-to-end tests
# with real SSH clients, and a short fuzz run. CI runs exactly this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== end-to-end tests with real clients (OpenSSH, PuTTY, dropbear, paramiko, asyncssh, ssh-audit, HAProxy)"
cargo build --bin dungeongate
DUNGEONGATE_BIN="$PWD/target/debug/dungeongate" python3 -m pytest tests/e2e -q -p no:cacheprovider
echo "== load harness smoke run (every scenario, a few seconds, against dungeongate)"
scripts/loadtest-smoke.sh
if [ -x scripts/fuzz-smoke.sh ]; then
  echo "== fuzz smoke run"
  scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-15}"
fi
