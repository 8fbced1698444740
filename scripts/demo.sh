#!/usr/bin/env bash
# scripts/demo.sh — run Landfall end to end on this machine and show what it landed:
#
#   1. install the tools (scripts/ensure-tools.sh) and start the dev stack (deploy/dev/up.sh:
#      tansu broker on 127.0.0.1:9092, moto S3 with bucket `lake`, the GCS fixture);
#   2. build the landfall binary (cargo build --release -p landfall);
#   3. create a fresh topic orders-<epoch> with 3 partitions and produce ~3000 JSON orders plus
#      3 undecodable records (they go to the dead-letter file, not into the Parquet files);
#   4. run `landfall run` on a sink config written to a temp dir, wait until
#      `landfall verify` says every partition is landed, then SIGTERM it and expect exit 0;
#   5. print the landed object keys, one batch marker, and the rows read back with DuckDB from
#      the files the manifests list.
#
# Re-runnable: each run uses a new topic and sink name. The dev stack is left running (stop it with
# deploy/dev/down.sh); the temp dir with the config, the log and the downloaded files is kept
# and printed at the end.
# Env: DEMO_RECORDS (default 3000), DEMO_TIMEOUT_S (default 180, wait for landing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

log() { printf '[demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

RECORDS="${DEMO_RECORDS:-3000}"
TIMEOUT_S="${DEMO_TIMEOUT_S:-180}"

# ------------------------------------------------------------------ tools, stack, binary
eval "$(scripts/ensure-tools.sh)"
eval "$(deploy/dev/up.sh)"
: "${LANDFALL_PYTHON:?scripts/ensure-tools.sh did not set LANDFALL_PYTHON}"
: "${AWS_ENDPOINT:?deploy/dev/up.sh did not set AWS_ENDPOINT}"
: "${LANDFALL_DEV_DIR:?deploy/dev/up.sh did not set LANDFALL_DEV_DIR}"
BOOTSTRAP="${LANDFALL_BOOTSTRAP:-127.0.0.1:9092}"
export LANDFALL_BOOTSTRAP="$BOOTSTRAP"
PY="$LANDFALL_PYTHON"

log "building landfall (cargo build --release -p landfall; the first build takes minutes)"
cargo build --release -p landfall >&2
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/landfall"
[[ -x "$BIN" ]] || die "$BIN was not built"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/landfall-demo.XXXXXX")"
STAMP="$(date +%s)"
TOPIC="orders-$STAMP"
# A fresh sink name too: its own consumer group and commit chain, so `landfall verify` shows
# only this run.
SINK="demo-$STAMP"
CONFIG="$WORK/$SINK.toml"
LOG="$WORK/landfall.log"
LANDFALL_PID=""

# Never leave our landfall behind, whatever happens (only the process this script started).
cleanup() {
    if [[ -n "$LANDFALL_PID" ]] && kill -0 "$LANDFALL_PID" 2>/dev/null; then
        log "stopping landfall (pid $LANDFALL_PID)"
        kill -TERM "$LANDFALL_PID" 2>/dev/null || true
        sleep 2
        kill -KILL "$LANDFALL_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# --------------------------------------------------------------------------- produce
log "creating topic $TOPIC (3 partitions) and producing $RECORDS orders + 3 bad records"
"$PY" - "$BOOTSTRAP" "$TOPIC" "$RECORDS" <<'PY'
import json, random, sys, time
from datetime import datetime, timedelta, timezone
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": bootstrap})
for fut in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).values():
    fut.result(timeout=30)
# Wait until the topic's metadata shows all 3 partitions (deadline, not a fixed sleep).
deadline = time.monotonic() + 30
while True:
    md = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
    if md is not None and md.error is None and len(md.partitions) == 3:
        break
    if time.monotonic() > deadline:
        sys.exit(f"topic {topic} did not appear with 3 partitions")
    time.sleep(0.2)

rng = random.Random(42)
now = datetime.now(timezone.utc)
p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
failures = []
def report(err, _msg):
    if err is not None:
        failures.append(err)

for i in range(n):
    created = now - timedelta(seconds=rng.uniform(0, 2 * 3600))  # spread over ~3 hour directories
    order = {
        "order_id": i,
        "customer": f"customer-{rng.randrange(200):03d}",
        "amount": round(rng.uniform(1, 500), 2),
        "created_at": created.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "tags": rng.sample(["web", "mobile", "gift", "express", "b2b"], k=rng.randrange(3)),
    }
    p.produce(topic, key=f"order-{i}", value=json.dumps(order), on_delivery=report)
    p.poll(0)
# Bad input: never silent — these land in the batch's dead-letter file with their reason.
p.produce(topic, key="bad-json", value='{"order_id": 1, "amount": ', on_delivery=report)
p.produce(topic, key="bad-type", value='{"order_id": "not a number"}', on_delivery=report)
p.produce(topic, key="tombstone", value=None, on_delivery=report)
left = p.flush(60)
if left or failures:
    sys.exit(f"produce failed: {left} undelivered, errors: {failures[:3]}")
print(f"[demo] produced {n} orders + 3 bad records to {topic}", file=sys.stderr)
PY

# ---------------------------------------------------------------------------- config
# ${...} inside the TOML is Landfall's own environment substitution (escaped here from bash).
cat >"$CONFIG" <<EOF
# Written by scripts/demo.sh. Every key is documented in docs/configuration.md.
name = "$SINK"
topics = ["$TOPIC"]

[kafka]
bootstrap_servers = "\${LANDFALL_BOOTSTRAP}"

[format]
type = "json"
fields = [
  { name = "order_id", type = "int64", nullable = false },
  { name = "customer", type = "string" },
  { name = "amount", type = "decimal(10,2)" },
  { name = "created_at", type = "timestamp" },
  { name = "tags", type = "list<string>" },
]
metadata_columns = ["topic", "partition", "offset", "timestamp", "key"]

[partitioning]
event_time_field = "created_at"

[flush]
max_age_ms = 3000     # land at least every 3 s
max_records = 400     # small batches, so each partition gets several commits

[store]
url = "s3://lake/demo/raw"
# AWS_ENDPOINT, AWS_ALLOW_HTTP and the keys come from deploy/dev/up.sh's environment;
# naming the endpoint here shows the substitution.
options = { aws_endpoint = "\${AWS_ENDPOINT}" }

[marker]
prefix = "s3://lake/demo/_landfall"
EOF
log "sink config: $CONFIG"
"$BIN" validate -c "$CONFIG" >&2

# ------------------------------------------------------------------------------- run
METRICS_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log "starting landfall run (log: $LOG, metrics: http://127.0.0.1:$METRICS_PORT/metrics)"
"$BIN" run --config "$CONFIG" --metrics-addr "127.0.0.1:$METRICS_PORT" >"$LOG" 2>&1 &
LANDFALL_PID=$!

# Landed = `landfall verify` reports all 3 partitions ok with not_yet_landed = 0.
landed() {
    local out
    out="$("$BIN" verify -c "$CONFIG" --json 2>/dev/null)" || return 1
    "$PY" -c '
import json, sys
rows = [r for r in json.loads(sys.argv[1]) if r.get("topic") == sys.argv[2]]
ok = len(rows) == 3 and all(r["ok"] and r["not_yet_landed"] == 0 for r in rows)
sys.exit(0 if ok else 1)
' "$out" "$TOPIC"
}

deadline=$((SECONDS + TIMEOUT_S))
until landed; do
    if ! kill -0 "$LANDFALL_PID" 2>/dev/null; then
        tail -n 40 "$LOG" >&2 || true
        die "landfall exited before everything was landed (log above: $LOG)"
    fi
    if ((SECONDS >= deadline)); then
        "$BIN" verify -c "$CONFIG" >&2 || true
        tail -n 40 "$LOG" >&2 || true
        die "not everything landed within ${TIMEOUT_S}s"
    fi
    sleep 1
done
log "every partition is landed:"
"$BIN" verify -c "$CONFIG" --check-files >&2

"$PY" - "$METRICS_PORT" <<'PY' >&2
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
for line in body.splitlines():
    if line.startswith(("landfall_records_landed_total", "landfall_records_dead_lettered_total",
                        "landfall_batches_committed_total", "landfall_files_landed_total")):
        print("  " + line)
PY

log "sending SIGTERM: landfall lands what it buffered and exits 0"
kill -TERM "$LANDFALL_PID"
stop_deadline=$((SECONDS + 60))
while kill -0 "$LANDFALL_PID" 2>/dev/null; do
    ((SECONDS < stop_deadline)) || die "landfall did not exit within 60s of SIGTERM"
    sleep 0.2
done
rc=0
wait "$LANDFALL_PID" || rc=$?
LANDFALL_PID=""
((rc == 0)) || {
    tail -n 40 "$LOG" >&2 || true
    die "landfall exited with $rc after SIGTERM (log: $LOG)"
}
log "landfall exited 0"

# --------------------------------------------------------------------------- show it
"$PY" - "$AWS_ENDPOINT" "$SINK" "$TOPIC" "$RECORDS" "$WORK/files" <<'PY'
import base64, json, os, sys
import boto3, duckdb

endpoint, sink, topic, expected, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))

def keys(prefix):
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="lake", Prefix=prefix):
        found += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
    return found

print(f"\n== Landed objects in s3://lake (topic {topic})")
for prefix in (f"demo/raw/{topic}/", f"demo/_landfall/_commits/{sink}/{topic}/",
               f"demo/_landfall/_index/{sink}/{topic}/", f"demo/_landfall/batches/{sink}/{topic}/",
               f"demo/_landfall/_dead_letter/{sink}/{topic}/"):
    for key, size in keys(prefix):
        print(f"  {size:>8}  {key}")

markers = [k for k, _ in keys(f"demo/_landfall/batches/{sink}/{topic}/")]
manifests = [json.loads(s3.get_object(Bucket="lake", Key=k)["Body"].read()) for k in markers]
print(f"\n== One batch marker ({len(markers)} in all): s3://lake/{markers[0]}")
print(json.dumps(manifests[0], indent=2))

# Read only what the manifests list (the Airflow contract), downloaded without httpfs.
os.makedirs(out, exist_ok=True)
paths = []
for m in manifests:
    for f in m["files"]:
        local = os.path.join(out, f["key"].replace("/", "__"))
        s3.download_file("lake", f["key"], local)
        paths.append(local)
rows = sum(m["rows"] for m in manifests)
dead = sum(m["dead_lettered"] for m in manifests)
files = f"read_parquet({paths!r})"
count = duckdb.sql(f"select count(*) from {files}").fetchall()[0][0]
distinct = duckdb.sql(f"select count(*) from (select distinct _partition, _offset from {files})").fetchall()[0][0]
print(f"\n== Rows read back with DuckDB from {len(paths)} files")
print(f"  count(*) = {count}, distinct (_partition, _offset) = {distinct}, "
      f"manifests say rows = {rows}, dead_lettered = {dead}")
duckdb.sql(f"""select order_id, customer, amount, created_at, tags, _partition, _offset
               from {files} order by order_id limit 5""").show()
duckdb.sql(f"""select _partition, count(*) as rows, min(_offset) as first, max(_offset) as last
               from {files} group by all order by 1""").show()

for m in manifests:
    for f in m["dead_letter_files"]:
        body = s3.get_object(Bucket="lake", Key=f["key"])["Body"].read().decode()
        for line in body.splitlines():
            r = json.loads(line)
            value = base64.b64decode(r["value_base64"]).decode(errors="replace") if r["value_base64"] else None
            print(f"  dead letter {r['topic']}[{r['partition']}]@{r['offset']}: {r['reason']}  value={value!r}")

if count != expected or distinct != expected or dead != 3:
    sys.exit(f"expected {expected} rows once each and 3 dead letters; got {count} rows, "
             f"{distinct} distinct offsets, {dead} dead letters")
print(f"\nOK: {expected} orders landed exactly once, 3 bad records dead-lettered.")
PY

log "done. config, log and downloaded files: $WORK (remove with: rm -rf $WORK)"
log "look again later: source $LANDFALL_DEV_DIR/env.sh; $BIN verify -c $CONFIG"
log "the dev stack keeps running; stop it with deploy/dev/down.sh"
