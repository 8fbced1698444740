"""Hourly pattern: wait for the window's `_SUCCESS`, map one task per file it lists.

Landfall writes `{store.url}/{topic}/dt=YYYY-MM-DD/hour=HH/_SUCCESS` (create-only) once every
partition of the topic passed the hour's end plus `windows.allowed_lateness_ms`; its body lists
every data file of the hour across batches, partitions and workers. The run at HH:00 takes the
hour that just ended, so the sensor usually waits (deferred, in the triggerer) for the lateness.
`dt=`/`hour=` are in the sink's `partitioning.timezone` (UTC here); with another timezone, render
the date with `logical_date.in_timezone(...)`.
"""

from __future__ import annotations

import io
import json
import os
from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import dag, task

from landfall_airflow.manifest import join
from landfall_airflow.stores import read_listed_file
from landfall_airflow.windows import window_files_at

DATA = os.environ.get("LANDFALL_DATA_URL", "s3://lake/raw")  # store.url
TOPIC = os.environ.get("LANDFALL_TOPIC", "orders")
AWS_CONN = os.environ.get("LANDFALL_AWS_CONN_ID", "aws_default")
# How often the trigger looks (seconds); each look is a few requests to the store.
POKE_S = float(os.environ.get("LANDFALL_POKE_INTERVAL_S", "30"))

# The hour before the run's logical date (the hour that just ended).
HOUR = "(logical_date - macros.timedelta(hours=1))"
SUCCESS = join(
    DATA,
    TOPIC,
    f"dt={{{{ {HOUR}.strftime('%Y-%m-%d') }}}}/hour={{{{ {HOUR}.strftime('%H') }}}}/_SUCCESS",
)


@dag(schedule="@hourly", start_date=datetime(2026, 11, 1), catchup=False, tags=["landfall"])
def landfall_hourly() -> None:
    wait = S3KeySensor(
        task_id="wait_for_window",
        bucket_key=SUCCESS,
        deferrable=True,
        aws_conn_id=AWS_CONN,
        poke_interval=POKE_S,
        timeout=4 * 3600,
    )

    @task
    def window_files(success_url: str) -> list[dict[str, Any]]:
        return window_files_at(success_url, AWS_CONN)

    @task
    def load(file: dict[str, Any]) -> int:
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(read_listed_file(file, AWS_CONN)))
        return int(table.num_rows)

    @task
    def total(rows: list[int]) -> dict[str, int]:
        summary = {"files": len(rows), "rows": sum(rows)}
        print(json.dumps(summary))
        return summary

    files = window_files(SUCCESS)  # op_kwargs are templated: the rendered URL
    wait >> files
    total(load.expand(file=files))


landfall_hourly()
