"""The notification apply_function and the window helpers, on contract-shaped inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeLandfall, MemoryStore

from landfall_airflow.kafka import files_of_events, notification_event
from landfall_airflow.manifest import ManifestError
from landfall_airflow.windows import read_window, success_url, window_files_at


class Msg:
    def __init__(self, value: bytes | None, headers: dict[str, str]) -> None:
        self._value = value
        self._headers = [(k, v.encode()) for k, v in headers.items()]

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return list(self._headers)

    def topic(self) -> str | None:
        return "landfall.batches"

    def partition(self) -> int | None:
        return 0

    def offset(self) -> int | None:
        return 42


def batch_message(sink: str = "orders", topic: str = "orders") -> tuple[Msg, dict[str, Any]]:
    lf = FakeLandfall(MemoryStore(), sink=sink, topic=topic)
    lf.assign(3, first_offset=100)
    m = lf.commit(3, 10, files=2)
    hdrs = {
        "landfall-kind": "batch",
        "landfall-sink": sink,
        "landfall-topic": topic,
        "landfall-partition": "3",
    }
    return Msg(json.dumps(m).encode(), hdrs), m


def window_body() -> dict[str, Any]:
    return {
        "format_version": 1,
        "kind": "window",
        "sink": "orders",
        "topic": "orders",
        "time_partition": "dt=2026-11-21/hour=10",
        "window": {
            "start": "2026-11-21T10:00:00Z",
            "end": "2026-11-21T11:00:00Z",
            "timezone": "UTC",
        },
        "rows": 5,
        "size_bytes": 20,
        "files": [
            {
                "url": "s3://lake/raw/orders/dt=2026-11-21/hour=10/a.parquet",
                "rows": 2,
                "partition": 0,
                "commit_first": 0,
            },
            {
                "url": "s3://lake/raw/orders/dt=2026-11-21/hour=10/b.parquet",
                "rows": 3,
                "partition": 1,
                "commit_first": 7,
            },
        ],
        "partitions": [{"partition": 0, "next_offset": 9, "closed_by": "watermark"}],
    }


def test_batch_notification_becomes_a_payload_with_files() -> None:
    msg, m = batch_message()
    payload = notification_event(msg)
    assert payload is not None
    assert (payload["kind"], payload["sink"], payload["partition"]) == ("batch", "orders", 3)
    assert payload["manifest"] == m
    assert [f["url"] for f in payload["files"]] == [f["url"] for f in m["files"]]
    assert all(f["commit_first"] == 100 for f in payload["files"])
    assert payload["kafka"] == {"topic": "landfall.batches", "partition": 0, "offset": 42}


def test_filters_and_non_landfall_messages_are_ignored() -> None:
    msg, _ = batch_message()
    assert notification_event(msg, sink="other") is None
    assert notification_event(msg, topic="other") is None
    assert notification_event(msg, kind="window") is None
    assert notification_event(Msg(None, {"landfall-kind": "batch"})) is None  # tombstone
    assert notification_event(Msg(b"{}", {})) is None  # not Landfall's


def test_window_notification_and_bad_value() -> None:
    hdrs = {"landfall-kind": "window", "landfall-sink": "orders", "landfall-topic": "orders"}
    payload = notification_event(Msg(json.dumps(window_body()).encode(), hdrs), kind="window")
    assert payload is not None
    assert sum(f["rows"] for f in payload["files"]) == 5
    assert "partition" not in payload
    with pytest.raises(ManifestError, match=r"kafka landfall.batches/0@42: not JSON"):
        notification_event(Msg(b"{", hdrs))


def test_files_of_events_dedupes_repeated_notifications() -> None:
    msg, m = batch_message()
    payload = notification_event(msg)
    events: list[dict[str, Any]] = [
        {"extra": {"from_trigger": True, "payload": payload}}
    ] * 2  # a repeat
    events.append({"extra": {"something": "else"}})
    assert [f["url"] for f in files_of_events(events)] == [f["url"] for f in m["files"]]


def test_window_success_read_from_a_store(tmp_path: Path) -> None:
    from datetime import datetime

    url = success_url(f"file://{tmp_path}/raw", "orders", datetime(2026, 11, 21, 10))
    assert url == f"file://{tmp_path}/raw/orders/dt=2026-11-21/hour=10/_SUCCESS"
    with pytest.raises(FileNotFoundError, match="not closed yet"):
        read_window(url)
    path = tmp_path / "raw/orders/dt=2026-11-21/hour=10/_SUCCESS"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(window_body()))
    files = window_files_at(url)
    assert [f["rows"] for f in files] == [2, 3]
    path.write_text(json.dumps({**window_body(), "kind": "batch"}))
    with pytest.raises(ManifestError, match="expected kind 'window'"):
        read_window(url)
