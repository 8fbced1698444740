"""Event pattern: a run per Landfall notification (Airflow 3 event-driven scheduling).

With `[notify] kafka_topic = "landfall.batches"` Landfall produces every committed batch's
manifest to Kafka. An `AssetWatcher` runs `KafkaMessageQueueTrigger` in the triggerer; the
package's `notification_event` turns each message of this sink and topic into an asset event
whose payload carries the manifest and its files; each asset event queues a run of this DAG.
Several events can be folded into one run, so the run maps over the files of all of them
(`files_of_events`, which also drops a notification repeated after a crash).

Connection `kafka_default` (type `kafka`): its extra is the consumer config, e.g.
`{"bootstrap.servers": "kafka:9092", "group.id": "airflow-landfall",
"auto.offset.reset": "earliest"}`.
"""

from __future__ import annotations

import io
import json
import os
from datetime import datetime
from typing import Any

from airflow.providers.apache.kafka.triggers.msg_queue import KafkaMessageQueueTrigger
from airflow.sdk import Asset, AssetWatcher, dag, get_current_context, task

from landfall_airflow.kafka import files_of_events
from landfall_airflow.stores import read_listed_file

SINK = os.environ.get("LANDFALL_SINK", "orders")
TOPIC = os.environ.get("LANDFALL_TOPIC", "orders")
NOTIFY_TOPIC = os.environ.get("LANDFALL_NOTIFY_TOPIC", "landfall.batches")
KAFKA_CONN = os.environ.get("LANDFALL_KAFKA_CONN_ID", "kafka_default")
AWS_CONN = os.environ.get("LANDFALL_AWS_CONN_ID", "aws_default")

notifications = KafkaMessageQueueTrigger(
    topics=[NOTIFY_TOPIC],
    kafka_config_id=KAFKA_CONN,
    apply_function="landfall_airflow.kafka.notification_event",
    apply_function_kwargs={"sink": SINK, "topic": TOPIC, "kind": "batch"},
    poll_interval=1,
)
landed = Asset(
    f"landfall_{SINK}_{TOPIC}_batches",
    watchers=[AssetWatcher(name=f"landfall_{SINK}_{TOPIC}_notify", trigger=notifications)],
)


@dag(schedule=[landed], start_date=datetime(2026, 11, 1), catchup=False, tags=["landfall"])
def landfall_event() -> None:
    @task
    def files_of_run() -> list[dict[str, Any]]:
        events = get_current_context()["triggering_asset_events"][landed]
        files = files_of_events(events)
        print(json.dumps({"events": len(events), "files": len(files)}))
        return files

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

    total(load.expand(file=files_of_run()))


landfall_event()
