#!/usr/bin/env bash
# Runs every test of Landfall on a fresh machine: installs what the tests need (Debian build
# packages, the tansu broker, a Python venv with moto, pyarrow, duckdb and the Helm chart test
# tools; all cached under ${LANDFALL_CACHE:-$HOME/.cache/landfall}), checks formatting and lints
# (Rust, tests/python and the deploy/airflow package), runs the Rust test suites and the Airflow
# package's unit tests, then the Python tests in tests/python (the Helm chart's, and the example
# Airflow DAGs on real Airflow 3.3), which run the landfall binary the Rust tests built. Tests start their own
# brokers and S3 servers on free loopback ports and stop them.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/ensure-tools.sh)"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A one-off CI build gains nothing from incremental state, which is gigabytes on disk.
if [[ "${CI:-}" == true ]]; then
    export CARGO_INCREMENTAL=0
fi

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
# Config (ruff, mypy --strict, pytest) in tests/python/pyproject.toml; caches stay out of the tree.
echo "== python: ruff check, ruff format --check, mypy --strict (tests/python)" >&2
(
    cd tests/python
    "$LANDFALL_PYTHON" -m ruff check --no-cache .
    "$LANDFALL_PYTHON" -m ruff format --no-cache --check .
    "$LANDFALL_PYTHON" -m mypy --cache-dir=/dev/null .
)
# The Airflow package (config in deploy/airflow/pyproject.toml), checked and unit-tested in the
# Airflow 3.3 venv it targets; the example DAGs are linted here and run by tests/python.
echo "== python: deploy/airflow (landfall-airflow): ruff, mypy --strict, unit tests" >&2
(
    cd deploy/airflow
    "$LANDFALL_AIRFLOW_PYTHON" -m ruff check --no-cache .
    "$LANDFALL_AIRFLOW_PYTHON" -m ruff format --no-cache --check .
    "$LANDFALL_AIRFLOW_PYTHON" -m mypy --cache-dir=/dev/null src tests
    "$LANDFALL_AIRFLOW_PYTHON" -m pytest -q tests
)
echo "== tests" >&2
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --profile ci
else
    cargo test --workspace --locked
fi

echo "== python tests (tests/python)" >&2
# The Rust tests above built target/debug/landfall (the integration tests run it), so it is
# current; build it only when a run somehow left it out. The target directory comes from cargo,
# so CARGO_TARGET_DIR and .cargo/config are honoured.
target_dir="$(cargo metadata --format-version 1 --no-deps --locked |
    "$LANDFALL_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
export LANDFALL_BIN="$target_dir/debug/landfall"
if [[ ! -x "$LANDFALL_BIN" ]]; then
    cargo build --locked -p landfall
fi
[[ -x "$LANDFALL_BIN" ]] || { echo "error: $LANDFALL_BIN was not built" >&2; exit 1; }
rc=0
(cd tests/python && "$LANDFALL_PYTHON" -m pytest) || rc=$?
if ((rc == 5)); then
    # pytest's "no tests collected": nothing to fail on.
    echo "pytest collected no tests in tests/python" >&2
    rc=0
fi
exit "$rc"
