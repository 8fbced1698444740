#!/usr/bin/env bash
# scripts/ensure-tools.sh — idempotently install the tools Landfall's tests and dev
# stack need, caching slow things under ${LANDFALL_CACHE:-$HOME/.cache/landfall}:
#
#   1. Debian packages to build rdkafka's bundled librdkafka (and the rest); apt is
#      skipped entirely when they are all installed already.
#   2. The Kafka-protocol broker `tansu` 0.6.0 from crates.io, built with the sqlite
#      (libsql) and dynostore storage engines into $CACHE/tansu-0.6.0.
#   3. A Python venv $CACHE/venv-<sha256 of scripts/requirements-test.txt> with moto,
#      boto3, pyarrow, duckdb, polars, pytest, confluent-kafka, and for the Helm chart
#      tests helm-python-sdk, kubernetes-validate, PyYAML, ruff and mypy.
#   4. A separate Python venv $CACHE/airflow-venv-<sha256 of scripts/requirements-airflow.txt>
#      with Airflow 3.3 and the amazon (aiobotocore) and apache-kafka providers, for the
#      example-DAG tests and the deploy/airflow package's checks (~100 s cold, instant cached).
#
# Progress goes to stderr. stdout carries only `export` lines, so callers can do
#     eval "$(scripts/ensure-tools.sh)"
# which sets TANSU_BIN, LANDFALL_PYTHON, MOTO_SERVER and LANDFALL_AIRFLOW_PYTHON.
#
# Options:   --no-apt  --no-tansu  --no-venv  --no-airflow   skip that step (and its export line)
# Env:       LANDFALL_CACHE               cache root (default $HOME/.cache/landfall)
#            LANDFALL_PYTHON_BOOTSTRAP    interpreter that creates the venv (default python3)
#            LANDFALL_TANSU_WAIT_S        how long to wait for another tansu build (default 3600)
# It builds nothing of the Landfall Rust project itself.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TANSU_VERSION=0.6.0
TANSU_FEATURES=dynostore,libsql
APT_PACKAGES=(cmake libcurl4-openssl-dev libssl-dev libsasl2-dev zlib1g-dev libzstd-dev pkg-config build-essential)

do_apt=1 do_tansu=1 do_venv=1 do_airflow=1
for arg in "$@"; do
    case "$arg" in
        --no-apt) do_apt=0 ;;
        --no-tansu) do_tansu=0 ;;
        --no-venv) do_venv=0 ;;
        --no-airflow) do_airflow=0 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
            exit 0
            ;;
        *) landfall_die "unknown argument: $arg (try --help)" ;;
    esac
done

CACHE="$(landfall_cache_dir)"
ROOT="$(landfall_repo_root)"
PY_BOOTSTRAP="${LANDFALL_PYTHON_BOOTSTRAP:-python3}"

# --------------------------------------------------------------------------- apt
pkg_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == installed ]]
}

ensure_apt() {
    local wanted=("${APT_PACKAGES[@]}") missing=() p
    # A Python without venv/ensurepip (Debian's bare python3) needs python3-venv.
    if [[ $do_venv == 1 || $do_airflow == 1 ]]; then
        if ! command -v "$PY_BOOTSTRAP" >/dev/null 2>&1; then
            wanted+=(python3 python3-venv)
        elif ! "$PY_BOOTSTRAP" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            wanted+=(python3-venv)
        fi
    fi
    for p in "${wanted[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        landfall_log "apt: all ${#wanted[@]} packages already installed, skipping apt"
        return 0
    fi
    local sudo=()
    if [[ $(id -u) != 0 ]]; then
        command -v sudo >/dev/null 2>&1 || landfall_die "apt: need root or sudo to install: ${missing[*]}"
        sudo=(sudo)
    fi
    landfall_log "apt: installing ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 ||
        landfall_die "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
        landfall_die "apt-get install failed for: ${missing[*]}"
}

# ------------------------------------------------------------------------- tansu
TANSU_ROOT="$CACHE/tansu-$TANSU_VERSION"
TANSU_BIN="$TANSU_ROOT/bin/tansu"

# PIDs of a `cargo install tansu ... --root $TANSU_ROOT` already running (from any
# caller, e.g. a concurrent ensure-tools.sh or a hand-started build).
other_tansu_builds() {
    pgrep -f -- "cargo install tansu .*--root $TANSU_ROOT( |\$)" 2>/dev/null || true
}

wait_for_other_tansu_build() {
    local pids wait_s="${LANDFALL_TANSU_WAIT_S:-3600}"
    local deadline=$((SECONDS + wait_s)) next_note=$SECONDS
    while pids="$(other_tansu_builds)" && [[ -n "$pids" ]]; do
        [[ -x "$TANSU_BIN" ]] && return 0
        if ((SECONDS >= deadline)); then
            landfall_die "tansu: another build (pid ${pids//$'\n'/ }) still running after ${wait_s}s"
        fi
        if ((SECONDS >= next_note)); then
            landfall_log "tansu: waiting for the build already running (pid ${pids//$'\n'/ }) to finish"
            next_note=$((SECONDS + 60))
        fi
        sleep 5
    done
}

ensure_tansu() {
    if [[ -x "$TANSU_BIN" ]]; then
        landfall_log "tansu: $TANSU_BIN present, skipping build"
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || landfall_die "tansu: cargo not found on PATH (a Rust toolchain is required)"
    wait_for_other_tansu_build
    # Serialise our own builds; re-check under the lock.
    exec 8>"$CACHE/.tansu-$TANSU_VERSION.lock"
    flock 8
    wait_for_other_tansu_build
    if [[ -x "$TANSU_BIN" ]]; then
        landfall_log "tansu: $TANSU_BIN appeared while waiting, skipping build"
        exec 8>&-
        return 0
    fi
    local log="$CACHE/tansu-$TANSU_VERSION.build.log" start=$SECONDS
    # A persistent target dir lets an interrupted build resume; removed on success.
    local target="$CACHE/tansu-$TANSU_VERSION.target"
    landfall_log "tansu: building $TANSU_VERSION from crates.io (10+ minutes on 2 cores); log: $log"
    if ! cargo install tansu --version "$TANSU_VERSION" --locked --features "$TANSU_FEATURES" \
        --root "$TANSU_ROOT" --target-dir "$target" >"$log" 2>&1; then
        landfall_tail_log "$log" 60
        landfall_die "tansu: cargo install failed (full log: $log)"
    fi
    [[ -x "$TANSU_BIN" ]] || landfall_die "tansu: build finished but $TANSU_BIN is missing"
    rm -rf "$target"
    landfall_log "tansu: built in $((SECONDS - start))s"
    exec 8>&-
}

# ------------------------------------------------------------------------- venvs
REQUIREMENTS="$ROOT/scripts/requirements-test.txt"
AIRFLOW_REQUIREMENTS="$ROOT/scripts/requirements-airflow.txt"

# build_venv LABEL REQUIREMENTS DIR_PREFIX REQUIRED_EXE IMPORT_CHECK: a venv named after the
# hash of its requirements file, built under a lock (concurrent runs wait rather than race), and
# complete only once its marker (the `pip freeze`) exists, so an interrupted build is rebuilt.
# Sets BUILT_VENV to its path.
build_venv() {
    local label="$1" requirements="$2" prefix="$3" exe="$4" imports="$5"
    local hash venv marker
    hash="$(landfall_sha256_file "$requirements")"
    venv="$CACHE/$prefix-${hash:0:16}"
    marker="$venv/.landfall-venv-complete"
    BUILT_VENV="$venv"
    if [[ -f "$marker" && -x "$venv/bin/$exe" ]]; then
        landfall_log "$label: $venv complete, skipping"
        return 0
    fi
    command -v "$PY_BOOTSTRAP" >/dev/null 2>&1 || landfall_die "$label: $PY_BOOTSTRAP not found"
    exec 9>"$CACHE/.$prefix-${hash:0:16}.lock"
    flock 9
    if [[ -f "$marker" && -x "$venv/bin/$exe" ]]; then
        landfall_log "$label: $venv completed by a concurrent run, skipping"
        exec 9>&-
        return 0
    fi
    local start=$SECONDS
    landfall_log "$label: creating $venv from $requirements with $("$PY_BOOTSTRAP" --version 2>&1)"
    rm -rf "$venv"
    "$PY_BOOTSTRAP" -m venv "$venv" >&2 || landfall_die "$label: '$PY_BOOTSTRAP -m venv' failed"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --prefer-binary \
        -r "$requirements" >&2 || {
        rm -rf "$venv"
        landfall_die "$label: pip install -r $requirements failed"
    }
    "$venv/bin/python" -c "$imports" || landfall_die "$label: import check failed in $venv"
    [[ -x "$venv/bin/$exe" ]] || landfall_die "$label: $venv/bin/$exe missing"
    "$venv/bin/python" -m pip freeze >"$marker"
    landfall_log "$label: created in $((SECONDS - start))s"
    exec 9>&-
}

ensure_venv() {
    build_venv venv "$REQUIREMENTS" venv moto_server \
        'import moto, boto3, pyarrow, duckdb, polars, pytest, confluent_kafka, helm_python, kubernetes_validate, yaml, ruff, mypy'
    VENV="$BUILT_VENV"
}

# Apart from the test venv: Airflow pins its own versions of much of what the tests use.
ensure_airflow_venv() {
    build_venv "airflow venv" "$AIRFLOW_REQUIREMENTS" airflow-venv airflow \
        'import airflow.sdk, airflow.providers.amazon.aws.sensors.s3, airflow.providers.apache.kafka.triggers.msg_queue, aiobotocore, pyarrow, pytest, mypy'
    AIRFLOW_VENV="$BUILT_VENV"
}

# -------------------------------------------------------------------------- main
if [[ $do_apt == 1 ]]; then ensure_apt; fi
if [[ $do_tansu == 1 ]]; then ensure_tansu; fi
if [[ $do_venv == 1 ]]; then ensure_venv; fi
if [[ $do_airflow == 1 ]]; then ensure_airflow_venv; fi

if [[ $do_tansu == 1 ]]; then
    landfall_emit_export TANSU_BIN "$TANSU_BIN"
fi
if [[ $do_venv == 1 ]]; then
    landfall_emit_export LANDFALL_PYTHON "$VENV/bin/python"
    landfall_emit_export MOTO_SERVER "$VENV/bin/moto_server"
fi
if [[ $do_airflow == 1 ]]; then
    landfall_emit_export LANDFALL_AIRFLOW_PYTHON "$AIRFLOW_VENV/bin/python"
fi
