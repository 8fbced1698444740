"""The trigger of `LandfallBatchSensor`: polls the commit chains in the triggerer.

It holds no worker slot: the sensor reads the committed cursor, defers to this trigger with it,
and the trigger fires once at least `min_batches` batches were committed after that cursor.
The event carries only the cursor it started from (the sensor needs it back: its
`seq` is what the final commit compares against); the worker walks the chains again in
`execute_complete` (commit records are immutable, so it finds at least what the trigger saw),
which keeps the event, stored in Airflow's database, small whatever the number of batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from landfall_airflow.chain import offsets_from_json, walk
from landfall_airflow.stores import open_store


class LandfallBatchTrigger(BaseTrigger):
    def __init__(
        self,
        *,
        marker_url: str,
        sink: str,
        topics: list[str],
        start: dict[str, dict[str, int]],
        cursor_seq: int = 0,
        conn_id: str | None = None,
        poke_interval: float = 30.0,
        min_batches: int = 1,
    ) -> None:
        # BaseTrigger and TriggerEvent are not annotated in Airflow 3.3.
        super().__init__()  # type: ignore[no-untyped-call]
        self.marker_url = marker_url
        self.sink = sink
        self.topics = list(topics)
        self.start = start
        self.cursor_seq = cursor_seq
        self.conn_id = conn_id
        self.poke_interval = poke_interval
        self.min_batches = min_batches

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "marker_url": self.marker_url,
                "sink": self.sink,
                "topics": self.topics,
                "start": self.start,
                "cursor_seq": self.cursor_seq,
                "conn_id": self.conn_id,
                "poke_interval": self.poke_interval,
                "min_batches": self.min_batches,
            },
        )

    def count_new(self) -> int:
        """Batches committed after `start` (stops counting at `min_batches`)."""
        store = open_store(self.marker_url, self.conn_id)
        found = walk(store, self.sink, self.topics, offsets_from_json(self.start), self.min_batches)
        return len(found.manifests)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            try:
                n = await asyncio.to_thread(self.count_new)
            except Exception as e:  # the worker turns this into a task failure with the reason
                yield TriggerEvent(  # type: ignore[no-untyped-call]
                    {"status": "error", "message": f"{type(e).__name__}: {e}"}
                )
                return
            if n >= self.min_batches:
                self.log.info("%d new batch(es) of sink %s committed", n, self.sink)
                yield TriggerEvent(  # type: ignore[no-untyped-call]
                    {"status": "landed", "cursor": {"seq": self.cursor_seq, "next": self.start}}
                )
                return
            await asyncio.sleep(self.poke_interval)
