"""Test DAG: the cursor example's shape, with a load that fails on purpose when the run's conf
says `{"fail": true}` (so a test can show a failed run's batches going to the next run)."""

from __future__ import annotations

import io
import json
import os
from datetime import datetime
from typing import Any

from airflow.sdk import dag, get_current_context, task
from landfall_airflow.sensors import LandfallBatchSensor, LandfallCommitCursorOperator
from landfall_airflow.stores import read_listed_file

MARKERS = os.environ.get("LANDFALL_MARKER_URL", "s3://lake/_landfall")
SINK = os.environ.get("LANDFALL_SINK", "orders")
TOPIC = os.environ.get("LANDFALL_TOPIC", "orders")


@dag(schedule=None, start_date=datetime(2026, 11, 1), catchup=False, max_active_runs=1)
def landfall_cursor_with_failure() -> None:
    batches = LandfallBatchSensor(
        task_id="batches", marker_url=MARKERS, sink=SINK, topics=[TOPIC], poke_interval=1
    )

    @task(retries=0)
    def load(file: dict[str, Any]) -> int:
        import pyarrow.parquet as pq

        conf = get_current_context()["dag_run"].conf or {}
        if conf.get("fail"):
            raise RuntimeError(f"failing on purpose: {file['url']}")
        return int(pq.read_table(io.BytesIO(read_listed_file(file))).num_rows)

    @task
    def total(rows: list[int]) -> dict[str, int]:
        summary = {"files": len(rows), "rows": sum(rows)}
        print(json.dumps(summary))
        return summary

    done = total(load.expand(file=batches.output))
    done >> LandfallCommitCursorOperator(task_id="commit_cursor", sensor_task_id="batches")


landfall_cursor_with_failure()
