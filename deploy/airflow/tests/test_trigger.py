"""LandfallBatchTrigger outside a triggerer: it survives serialization (the triggerer rebuilds
it from `serialize()`), waits while nothing is new, and fires with the cursor it started from."""

from __future__ import annotations

import asyncio
import importlib
import json
from pathlib import Path

from landfall_airflow.triggers import LandfallBatchTrigger


def commit(root: Path, partition: int, first: int, n: int) -> None:
    d = root / "_commits/orders/orders" / f"{partition:05}"
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "genesis.json").exists():
        genesis = {"format_version": 1, "first_offset": first}
        (d / "genesis.json").write_text(json.dumps(genesis))
    offsets = {"first": first, "last": first + n - 1, "next": first + n}
    m = {"format_version": 1, "sink": "orders", "topic": "orders", "partition": partition,
         "offsets": offsets, "files": []}  # fmt: skip
    (d / f"{first:020}.json").write_text(json.dumps(m))


def test_serialize_round_trip_and_fire(tmp_path: Path) -> None:
    start = {"orders": {"0": 10}}
    trigger = LandfallBatchTrigger(
        marker_url=f"file://{tmp_path}", sink="orders", topics=["orders"], start=start,
        cursor_seq=4, poke_interval=0.05,
    )  # fmt: skip
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (path, kwargs)
    commit(tmp_path, 0, 0, 10)  # before the cursor: not new

    async def first_event() -> object:
        gen = again.run()
        task = asyncio.ensure_future(gen.__anext__())
        await asyncio.sleep(0.3)
        assert not task.done(), "fired although nothing new was committed"
        commit(tmp_path, 0, 10, 5)
        event = await asyncio.wait_for(task, 5)
        return event.payload

    payload = asyncio.run(first_event())
    assert payload == {"status": "landed", "cursor": {"seq": 4, "next": start}}


def test_store_error_is_an_event_naming_the_object(tmp_path: Path) -> None:
    commit(tmp_path, 0, 0, 10)
    (tmp_path / "_commits/orders/orders/00000/00000000000000000000.json").write_text("{")
    trigger = LandfallBatchTrigger(
        marker_url=f"file://{tmp_path}", sink="orders", topics=["orders"], start={}
    )

    async def first_event() -> object:
        async for event in trigger.run():
            return event.payload
        return None

    payload = asyncio.run(first_event())
    assert isinstance(payload, dict)
    assert payload["status"] == "error"
    assert "00000000000000000000.json: not JSON" in payload["message"]
