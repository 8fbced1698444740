"""`apply_function` for `KafkaMessageQueueTrigger` on Landfall's notification topic.

Landfall produces one message per committed batch and per window marker (`[notify]`,
`docs/markers.md`): value = the manifest JSON as written to the store, key
`{sink}/{topic}/{partition:05}` or `{sink}/{topic}/window`, headers `landfall-kind`,
`landfall-sink`, `landfall-topic` (and `landfall-partition` for batches).

Use it in an `AssetWatcher`::

    KafkaMessageQueueTrigger(
        topics=["landfall.batches"],
        apply_function="landfall_airflow.kafka.notification_event",
        apply_function_kwargs={"sink": "orders", "kind": "batch"},
    )

The returned payload becomes the asset event's `extra["payload"]`; `files_of_events` turns the
events of a run into the file list for `.expand()`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from landfall_airflow.manifest import (
    FileEntry,
    Manifest,
    ManifestError,
    batch_files,
    parse_manifest,
    parse_window,
    window_files,
)


class Message(Protocol):
    """The part of `confluent_kafka.Message` used here."""

    def value(self) -> bytes | None: ...
    def headers(self) -> list[tuple[str, bytes | None]] | None: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...


def headers_of(message: Message) -> dict[str, str]:
    return {k: (v or b"").decode("utf-8", "replace") for k, v in (message.headers() or [])}


def notification_event(
    message: Message,
    sink: str | None = None,
    topic: str | None = None,
    kind: str | None = None,
) -> dict[str, Any] | None:
    """The event payload of one notification, or None (ignored) when it is not one of
    `sink`/`topic`/`kind` (`batch` or `window`), is a tombstone, or is not a Landfall message.

    Payload: `{"kind", "sink", "topic", "partition" (batches), "files": [...], "manifest": {...},
    "kafka": {"topic", "partition", "offset"}}`; `files` is ready for `.expand()`.
    """
    value = message.value()
    hdrs = headers_of(message)
    msg_kind = hdrs.get("landfall-kind")
    if value is None or msg_kind not in ("batch", "window"):
        return None
    if (sink and hdrs.get("landfall-sink") != sink) or (
        topic and hdrs.get("landfall-topic") != topic
    ):
        return None
    if kind and msg_kind != kind:
        return None
    where = f"kafka {message.topic()}/{message.partition()}@{message.offset()}"
    manifest = parse_window(value, where) if msg_kind == "window" else parse_manifest(value, where)
    files = window_files(manifest) if msg_kind == "window" else batch_files(manifest)
    payload: dict[str, Any] = {
        "kind": msg_kind,
        "sink": manifest["sink"],
        "topic": manifest["topic"],
        "files": files,
        "manifest": manifest,
        "kafka": {
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
        },
    }
    if msg_kind == "batch":
        payload["partition"] = manifest["partition"]
    return payload


def payloads_of_events(events: Iterable[Any]) -> list[dict[str, Any]]:
    """The notification payloads of a run's triggering asset events (objects with `.extra`, or
    dicts with `"extra"`), in order; events not from a Landfall trigger are skipped."""
    out = []
    for ev in events:
        extra = ev.get("extra") if isinstance(ev, Mapping) else getattr(ev, "extra", None)
        payload = (extra or {}).get("payload")
        if isinstance(payload, dict) and payload.get("kind") in ("batch", "window"):
            out.append(payload)
    return out


def files_of_events(events: Iterable[Any]) -> list[FileEntry]:
    """All files of the events of a run (several notifications can start one run), once each:
    a notification repeated after a crash (at-least-once) does not map a file twice."""
    seen: set[str] = set()
    out: list[FileEntry] = []
    for payload in payloads_of_events(events):
        for f in payload["files"]:
            if f["url"] not in seen:
                seen.add(f["url"])
                out.append(f)
    return out


def manifest_from_value(value: bytes | str) -> Manifest:
    """Parse a notification value without knowing its kind (tools, tests)."""
    doc = json.loads(value)
    if not isinstance(doc, dict):
        raise ManifestError("notification value is not a JSON object")
    if doc.get("kind") == "window":
        return parse_window(value, "notification")
    return parse_manifest(value, "notification")
