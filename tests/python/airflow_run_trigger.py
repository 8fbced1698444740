"""Run `KafkaMessageQueueTrigger` with Landfall's apply_function, as the triggerer would for an
AssetWatcher, and print the first event's payload as one JSON line (run by
test_airflow_dags.py with the Airflow venv's Python; the `kafka_default` connection comes from
the environment). Usage: airflow_run_trigger.py NOTIFY_TOPIC SINK TOPIC TIMEOUT_S
"""

from __future__ import annotations

import asyncio
import json
import sys

from airflow.providers.apache.kafka.triggers.msg_queue import KafkaMessageQueueTrigger


async def first_event(notify_topic: str, sink: str, topic: str) -> object:
    trigger = KafkaMessageQueueTrigger(
        topics=[notify_topic],
        apply_function="landfall_airflow.kafka.notification_event",
        apply_function_kwargs={"sink": sink, "topic": topic, "kind": "batch"},
        poll_interval=0.2,
    )
    print("polling", flush=True)
    async for event in trigger.run():
        return event.payload
    raise SystemExit("trigger ended without an event")


def main() -> None:
    notify_topic, sink, topic, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    payload = asyncio.run(asyncio.wait_for(first_event(notify_topic, sink, topic), timeout))
    print("EVENT " + json.dumps(payload), flush=True)


if __name__ == "__main__":
    main()
