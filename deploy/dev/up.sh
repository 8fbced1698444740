#!/usr/bin/env bash
# deploy/dev/up.sh — start Landfall's local dev/test stack, idempotently:
#
#   kafka  tansu broker (SQLite storage engine)       127.0.0.1:${LANDFALL_KAFKA_PORT:-9092}
#   s3     moto S3 server, bucket `lake` created      http://127.0.0.1:${LANDFALL_S3_PORT:-9000}
#   gcs    landfall-fakegcs fixture, bucket `lake`    http://127.0.0.1:${LANDFALL_GCS_PORT:-4443}
#
# Tools come from scripts/ensure-tools.sh (installed/cached on first use). A service
# whose port already accepts connections is left alone. State, logs and pidfiles live
# in ${LANDFALL_DEV_DIR:-${LANDFALL_CACHE:-$HOME/.cache/landfall}/dev}; stop with
# deploy/dev/down.sh. Everything is logged to stderr; the LAST lines on stdout are
# `export NAME=value`, so use it as:
#     eval "$(deploy/dev/up.sh)"
# The same lines are also written to $LANDFALL_DEV_DIR/env.sh.
#
# Options:
#   --check     after start-up, self-test moto: PutObject and CompleteMultipartUpload
#               with `If-None-Match: *` must return 412 when the key exists.
# Env:
#   LANDFALL_KAFKA_PORT / LANDFALL_S3_PORT / LANDFALL_GCS_PORT   ports (defaults above)
#   LANDFALL_FAKEGCS_BIN     prebuilt landfall-fakegcs (else target/release/…, built if missing)
#   LANDFALL_REQUIRE_GCS=1   fail instead of warning when landfall-fakegcs is unavailable
#   LANDFALL_START_TIMEOUT_S per-service start deadline in seconds (default 60)
#   TANSU_LOG                RUST_LOG filter for tansu (default warn)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

do_check=0
for arg in "$@"; do
    case "$arg" in
        --check) do_check=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
            exit 0
            ;;
        *) landfall_die "unknown argument: $arg (try --help)" ;;
    esac
done

HOST=127.0.0.1
KAFKA_PORT="${LANDFALL_KAFKA_PORT:-9092}"
S3_PORT="${LANDFALL_S3_PORT:-9000}"
GCS_PORT="${LANDFALL_GCS_PORT:-4443}"
BUCKET=lake
START_TIMEOUT_S="${LANDFALL_START_TIMEOUT_S:-60}"

CACHE="$(landfall_cache_dir)"
DEV="${LANDFALL_DEV_DIR:-$CACHE/dev}"
mkdir -p "$DEV"
touch "$DEV/.landfall-dev" # marks the dir as ours, so down.sh --purge may delete it
DEV="$(cd "$DEV" && pwd -P)"

# --------------------------------------------------------------------- tools
tool_exports="$("$ROOT/scripts/ensure-tools.sh")" || landfall_die "scripts/ensure-tools.sh failed"
eval "$tool_exports"
: "${TANSU_BIN:?ensure-tools.sh did not set TANSU_BIN}"
: "${LANDFALL_PYTHON:?ensure-tools.sh did not set LANDFALL_PYTHON}"
: "${MOTO_SERVER:?ensure-tools.sh did not set MOTO_SERVER}"

# ------------------------------------------------------------------ launching
# launch NAME CWD CMD... — start CMD detached (own session, stdin /dev/null, output
# appended to $DEV/NAME.log); the process writes its own pid to $DEV/NAME.pid
# before exec'ing CMD, so the pidfile names the real server process.
launch() {
    local name="$1" cwd="$2"
    shift 2
    local log="$DEV/$name.log" pidfile="$DEV/$name.pid"
    rm -f "$pidfile"
    printf '\n===== %s starting %s: %s\n' "$(date -Is)" "$name" "$*" >>"$log"
    # shellcheck disable=SC2016  # expanded by the inner bash
    (cd "$cwd" && exec setsid bash -c 'echo "$$" >"$0"; exec "$@"' "$pidfile" "$@") \
        </dev/null >>"$log" 2>&1 &
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s "$pidfile" ]] && return 0
        sleep 0.1
    done
    landfall_tail_log "$log"
    landfall_die "$name: process did not start (no pidfile $pidfile)"
}

# already_up NAME PORT MATCH — true if PORT accepts connections (service left alone).
already_up() {
    local name="$1" port="$2" match="$3" pid=""
    port_open "$HOST" "$port" || return 1
    [[ -f "$DEV/$name.pid" ]] && pid="$(cat "$DEV/$name.pid")"
    if [[ -n "$pid" ]] && landfall_pid_alive "$pid" "$match"; then
        landfall_log "$name: already up on $HOST:$port (pid $pid), leaving it"
    else
        landfall_warn "$name: $HOST:$port is already in use by a process up.sh did not start; leaving it and assuming it is $name"
    fi
    return 0
}

# wait_up NAME PORT — wait for the freshly launched NAME, fail loudly with its log.
wait_up() {
    local name="$1" port="$2" pid start=$SECONDS
    pid="$(cat "$DEV/$name.pid")"
    if ! wait_for_port "$HOST" "$port" "$START_TIMEOUT_S" "$DEV/$name.log" "$pid"; then
        # Do not leave a half-started service behind: a re-run should start it afresh.
        if landfall_pid_alive "$pid"; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        fi
        rm -f "$DEV/$name.pid"
        landfall_die "$name did not come up on $HOST:$port within ${START_TIMEOUT_S}s (pid $pid, log $DEV/$name.log)"
    fi
    landfall_log "$name: up on $HOST:$port (pid $pid) in $((SECONDS - start))s"
}

# ---------------------------------------------------------------------- kafka
# tansu resolves sqlite:// URLs relative to its working directory (the URL's host +
# path are appended to cwd), so it runs in $DEV with a relative URL. Running in $DEV
# also keeps tansu's dotenv loader away from any .env in the repository.
# tansu 0.6.0 opens only the Kafka listener; metrics are push-only (OTLP) and are
# disabled by leaving OTEL_EXPORTER_OTLP_ENDPOINT unset.
start_kafka() {
    if already_up kafka "$KAFKA_PORT" tansu; then return 0; fi
    launch kafka "$DEV" env -u OTEL_EXPORTER_OTLP_ENDPOINT -u SCHEMA_REGISTRY -u DATA_LAKE \
        RUST_LOG="${TANSU_LOG:-warn}" NO_COLOR=1 \
        "$TANSU_BIN" broker \
        --cluster-id landfall-dev \
        --storage-engine "sqlite://tansu.db" \
        --listener-url "tcp://$HOST:$KAFKA_PORT" \
        --advertised-listener-url "tcp://$HOST:$KAFKA_PORT"
    wait_up kafka "$KAFKA_PORT"
}

# ------------------------------------------------------------------------- s3
start_s3() {
    if ! already_up s3 "$S3_PORT" moto_server; then
        launch s3 "$DEV" "$MOTO_SERVER" -H "$HOST" -p "$S3_PORT"
        wait_up s3 "$S3_PORT"
    fi
    # moto keeps state in memory only: (re)create the bucket every time (idempotent).
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
        "$LANDFALL_PYTHON" - "http://$HOST:$S3_PORT" "$BUCKET" <<'PY' || landfall_die "s3: could not create bucket $BUCKET"
import sys, time
import boto3, botocore.exceptions
endpoint, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
deadline = time.monotonic() + 30
while True:
    try:
        try:
            s3.head_bucket(Bucket=bucket)
            print(f"[landfall] s3: bucket {bucket} already exists", file=sys.stderr)
            break
        except botocore.exceptions.ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
                raise
        s3.create_bucket(Bucket=bucket)
        print(f"[landfall] s3: created bucket {bucket}", file=sys.stderr)
        break
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            print(f"[landfall] s3: bucket {bucket} already exists", file=sys.stderr)
            break
        raise
    except botocore.exceptions.EndpointConnectionError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.5)
PY
}

check_s3_conditional_writes() {
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
        "$LANDFALL_PYTHON" - "http://$HOST:$S3_PORT" "$BUCKET" <<'PY' || landfall_die "s3: conditional-write self-check failed"
import sys, uuid
import boto3, botocore.exceptions
endpoint, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
prefix = f"_landfall_selfcheck/{uuid.uuid4()}"

def status(fn):
    try:
        fn()
        return 200
    except botocore.exceptions.ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]

def put():
    s3.put_object(Bucket=bucket, Key=f"{prefix}/put", Body=b"x", IfNoneMatch="*")

def mpu():
    key = f"{prefix}/mpu"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1, Body=b"y")
    try:
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=up, IfNoneMatch="*",
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    except botocore.exceptions.ClientError:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=up)
        raise

results = {"PutObject": (status(put), status(put)),
           "CompleteMultipartUpload": (status(mpu), status(mpu))}
for key in ("put", "mpu"):
    s3.delete_object(Bucket=bucket, Key=f"{prefix}/{key}")
ok = True
for op, (first, second) in results.items():
    good = (first, second) == (200, 412)
    ok &= good
    print(f"[landfall] s3 check: {op} If-None-Match:* first={first} second={second} "
          f"{'OK' if good else 'UNEXPECTED (want 200 then 412)'}", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}

# ------------------------------------------------------------------------ gcs
GCS_RUNNING=0
start_gcs() {
    if already_up gcs "$GCS_PORT" landfall-fakegcs; then
        GCS_RUNNING=1
        return 0
    fi
    local bin="${LANDFALL_FAKEGCS_BIN:-}"
    if [[ -z "$bin" ]]; then
        bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/landfall-fakegcs"
        if [[ ! -x "$bin" ]]; then
            if [[ -f "$ROOT/crates/landfall-fakegcs/Cargo.toml" ]]; then
                landfall_log "gcs: building landfall-fakegcs (cargo build --release -p landfall-fakegcs)"
                (cd "$ROOT" && cargo build --release -p landfall-fakegcs >&2) ||
                    gcs_unavailable "cargo build --release -p landfall-fakegcs failed"
            else
                gcs_unavailable "crate crates/landfall-fakegcs does not exist yet"
            fi
            if [[ $GCS_UNAVAILABLE == 1 ]]; then return 0; fi
        fi
    fi
    if [[ ! -x "$bin" ]]; then
        gcs_unavailable "$bin is not an executable"
        return 0
    fi
    launch gcs "$DEV" "$bin" --port "$GCS_PORT" --bucket "$BUCKET"
    wait_up gcs "$GCS_PORT"
    GCS_RUNNING=1
}

GCS_UNAVAILABLE=0
gcs_unavailable() {
    GCS_UNAVAILABLE=1
    if [[ "${LANDFALL_REQUIRE_GCS:-0}" == 1 ]]; then
        landfall_die "gcs: $1 (LANDFALL_REQUIRE_GCS=1)"
    fi
    landfall_warn "gcs: $1 — skipping the GCS stand-in; GOOGLE_BASE_URL will not be exported"
}

# ----------------------------------------------------------------------- main
start=$SECONDS
start_kafka
start_s3
if [[ $do_check == 1 ]]; then check_s3_conditional_writes; fi
start_gcs
landfall_log "stack ready in $((SECONDS - start))s (state and logs in $DEV)"

{
    landfall_emit_export LANDFALL_DEV_DIR "$DEV"
    landfall_emit_export LANDFALL_BOOTSTRAP "$HOST:$KAFKA_PORT"
    landfall_emit_export AWS_ENDPOINT "http://$HOST:$S3_PORT"
    landfall_emit_export AWS_ENDPOINT_URL "http://$HOST:$S3_PORT"
    landfall_emit_export AWS_ALLOW_HTTP true
    landfall_emit_export AWS_ACCESS_KEY_ID test
    landfall_emit_export AWS_SECRET_ACCESS_KEY test
    landfall_emit_export AWS_REGION us-east-1
    if [[ $GCS_RUNNING == 1 ]]; then
        landfall_emit_export GOOGLE_BASE_URL "http://$HOST:$GCS_PORT"
        # The fixture accepts any bearer token; object_store needs one to skip the metadata server.
        landfall_emit_export GOOGLE_BEARER_TOKEN "landfall-dev"
    fi
    landfall_emit_export TANSU_BIN "$TANSU_BIN"
    landfall_emit_export LANDFALL_PYTHON "$LANDFALL_PYTHON"
} >"$DEV/env.sh.tmp"
mv "$DEV/env.sh.tmp" "$DEV/env.sh"
cat "$DEV/env.sh"
