"""Batch pattern with the stock sensor: wait for a batch marker, map one task per landed file.

`S3KeySensor(deferrable=True, wildcard_match=True)` on
`{marker.prefix}/batches/{sink}/{topic}/*.json` waits in the triggerer until a batch marker
exists. It hands nothing downstream (its
`execute_complete` returns nothing), so `landed_files` lists the markers itself. This DAG takes
every batch landed so far; for "only what is new since the last successful run" use
`landfall_batch_cursor` (exact) or the look-back listing in `docs/markers.md`.

Settings come from the environment so the same file runs in tests and in a deployment.
"""

from __future__ import annotations

import io
import json
import os
from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import dag, task

from landfall_airflow.manifest import batch_marker_glob, files_of, join, parse_manifest
from landfall_airflow.stores import read_listed_file, split_url

MARKERS = os.environ.get("LANDFALL_MARKER_URL", "s3://lake/_landfall")  # marker.prefix
SINK = os.environ.get("LANDFALL_SINK", "orders")
TOPIC = os.environ.get("LANDFALL_TOPIC", "orders")
AWS_CONN = os.environ.get("LANDFALL_AWS_CONN_ID", "aws_default")
# How often the trigger looks (seconds); each look is a few requests to the store.
POKE_S = float(os.environ.get("LANDFALL_POKE_INTERVAL_S", "5"))


@dag(schedule=None, start_date=datetime(2026, 11, 1), catchup=False, tags=["landfall"])
def landfall_batch_markers() -> None:
    wait = S3KeySensor(
        task_id="wait_for_batch_marker",
        bucket_key=batch_marker_glob(MARKERS, SINK, TOPIC),
        wildcard_match=True,  # fnmatch: `*` also matches `/`, so every dt=/hour= is covered
        deferrable=True,
        aws_conn_id=AWS_CONN,
        poke_interval=POKE_S,
        timeout=3600,
    )

    @task
    def landed_files() -> list[dict[str, Any]]:
        _, bucket, prefix = split_url(join(MARKERS, "batches", SINK, TOPIC))
        s3 = S3Hook(aws_conn_id=AWS_CONN)
        manifests = []
        for key in s3.list_keys(bucket_name=bucket, prefix=f"{prefix}/"):
            if key.endswith(".json"):
                body = s3.read_key(key=key, bucket_name=bucket)
                manifests.append(parse_manifest(body, f"s3://{bucket}/{key}"))
        # Only files a manifest lists: anything else under the data prefix may be an orphan.
        return files_of(manifests)

    @task
    def load(file: dict[str, Any]) -> int:
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(read_listed_file(file, AWS_CONN)))
        # ... write `table` where it belongs; here: count what was read.
        return table.num_rows

    @task
    def total(rows: list[int]) -> dict[str, int]:
        summary = {"files": len(rows), "rows": sum(rows)}
        print(json.dumps(summary))
        return summary

    files = landed_files()
    wait >> files
    total(load.expand(file=files))


landfall_batch_markers()
