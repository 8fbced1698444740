"""Batch pattern with the exact cursor: each run gets the batches committed since the last
successful run — every batch to exactly one successful run, a failed run's batches to the next.

`LandfallBatchSensor` defers to the triggerer until a batch was committed after this task's
cursor, then returns the files (for `.expand()`); `LandfallCommitCursorOperator`, downstream of
everything that uses them, commits the cursor only if nothing failed.
"""

from __future__ import annotations

import io
import json
import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from landfall_airflow.sensors import LandfallBatchSensor, LandfallCommitCursorOperator
from landfall_airflow.stores import read_listed_file

MARKERS = os.environ.get("LANDFALL_MARKER_URL", "s3://lake/_landfall")  # marker.prefix
SINK = os.environ.get("LANDFALL_SINK", "orders")
TOPIC = os.environ.get("LANDFALL_TOPIC", "orders")
AWS_CONN = os.environ.get("LANDFALL_AWS_CONN_ID", "aws_default")
# How often the trigger looks (seconds); each look is a few requests to the store.
POKE_S = float(os.environ.get("LANDFALL_POKE_INTERVAL_S", "5"))


@dag(
    schedule=timedelta(minutes=15),
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,  # runs from one cursor at a time; a second would fail at commit anyway
    tags=["landfall"],
)
def landfall_batch_cursor() -> None:
    batches = LandfallBatchSensor(
        task_id="batches",
        marker_url=MARKERS,
        sink=SINK,
        topics=[TOPIC],
        conn_id=AWS_CONN,
        poke_interval=POKE_S,
        timeout=3600,
    )

    @task
    def load(file: dict[str, Any]) -> int:
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(read_listed_file(file, AWS_CONN)))
        return table.num_rows

    @task
    def total(rows: list[int]) -> dict[str, int]:
        summary = {"files": len(rows), "rows": sum(rows)}
        print(json.dumps(summary))
        return summary

    done = total(load.expand(file=batches.output))
    done >> LandfallCommitCursorOperator(task_id="commit_cursor", sensor_task_id="batches")


landfall_batch_cursor()
