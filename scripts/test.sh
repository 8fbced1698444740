#!/usr/bin/env bash
# Runs every test of Landfall on a fresh machine: installs what the tests need (Debian build
# packages, the tansu broker, a Python venv with moto, pyarrow and duckdb; all cached under
# ${LANDFALL_CACHE:-$HOME/.cache/landfall}), checks formatting and lints, then runs the Rust test
# suites. Tests start their own brokers and S3 servers on free loopback ports and stop them.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/ensure-tools.sh)"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests" >&2
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --profile ci
else
    cargo test --workspace --locked
fi
