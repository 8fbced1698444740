"""The exact cursor: walking each partition's commit chain, and the cursor object in the store.

Pure Python, no Airflow import, so it is unit-tested against an in-memory store.

Landfall's commit records tile each partition's log (`docs/markers.md`, contract §2): the record
after one with `offsets.next = N` is at `_commits/{sink}/{topic}/{partition:05}/{N:020}.json`. A
cursor is therefore just the `next` offset of every partition, and "what landed since" is a
sequence of GETs from there until a key does not exist — no listing by landing time, no
look-back, no gap by construction.

The cursor is **committed** as a new object `{seq:020}.json` under
`{cursor_url}/{dag_id}/{task_id}/`, written create-only, by the DAG's last task once everything
downstream of the sensor succeeded. Create-only makes it a compare-and-swap on `seq`: two runs
that started from the same cursor cannot both commit it, so no batch is handed to two
successful runs, and a run that fails never commits, so its batches go to the next run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from landfall_airflow.manifest import (
    FORMAT_VERSION,
    Manifest,
    ManifestError,
    commit_dir,
    commit_key,
    genesis_key,
    parse_genesis,
    parse_manifest,
)

# topic -> partition -> next offset to hand out
Offsets = dict[str, dict[int, int]]


class Store(Protocol):
    """The few object-store calls the cursor needs; keys are relative to the store's root URL."""

    def describe(self, key: str) -> str:
        """The full URL of `key`, for error messages."""
        ...

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        ...

    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the immediate "sub-directories" of `prefix` (which ends with `/`)."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """Keys (relative to the root) of the objects under `prefix`, any order."""
        ...

    def put_if_absent(self, key: str, body: bytes) -> bool:
        """Create the object; False (and nothing written) when it exists already."""
        ...


class CursorConflictError(RuntimeError):
    """Another run committed the cursor first: this run's batches were not handed off."""


@dataclass(frozen=True)
class Walk:
    """The batches found from a cursor and the cursor after them."""

    manifests: list[Manifest]
    next: Offsets
    # Partitions whose chain has no genesis yet (assigned, nothing to read): left out.
    waiting: list[tuple[str, int]] = field(default_factory=list)


def partitions(store: Store, sink: str, topic: str) -> list[int]:
    """Partitions that have a commit directory (created with their genesis record)."""
    out = []
    for name in store.list_dirs(commit_dir(sink, topic)):
        if name.isdigit():
            out.append(int(name))
    return sorted(out)


def walk(
    store: Store,
    sink: str,
    topics: Iterable[str],
    start: Offsets,
    max_batches: int | None = None,
) -> Walk:
    """Every committed batch of `topics` at or after `start`, partition by partition.

    A partition missing from `start` (new since the cursor was taken, e.g. the topic grew) starts
    at its `genesis.json` `first_offset`. At most `max_batches` manifests are returned; the cursor
    then stops right after the last one returned, so nothing is skipped.
    """
    manifests: list[Manifest] = []
    nxt: Offsets = {t: dict(ps) for t, ps in start.items()}
    waiting: list[tuple[str, int]] = []
    for topic in topics:
        offsets = nxt.setdefault(topic, {})
        for p in sorted(set(partitions(store, sink, topic)) | set(offsets)):
            if p not in offsets:
                gkey = genesis_key(sink, topic, p)
                body = store.get(gkey)
                if body is None:
                    waiting.append((topic, p))
                    continue
                offsets[p] = parse_genesis(body, store.describe(gkey))
            n = offsets[p]
            while max_batches is None or len(manifests) < max_batches:
                key = commit_key(sink, topic, p, n)
                body = store.get(key)
                if body is None:
                    break
                m = parse_manifest(body, store.describe(key))
                _check_link(m, sink, topic, p, n, store.describe(key))
                manifests.append(m)
                n = m["offsets"]["next"]
            offsets[p] = n
    return Walk(manifests=manifests, next=nxt, waiting=waiting)


def _check_link(m: Manifest, sink: str, topic: str, p: int, n: int, where: str) -> None:
    got = (m["sink"], m["topic"], m["partition"], m["offsets"]["first"])
    if got != (sink, topic, p, n):
        raise ManifestError(
            f"{where}: expected the commit of sink {sink!r} topic {topic!r} partition {p} "
            f"starting at offset {n}, found sink {got[0]!r} topic {got[1]!r} partition {got[2]} "
            f"first offset {got[3]}"
        )
    if m["offsets"]["next"] <= n:
        raise ManifestError(
            f"{where}: offsets.next {m['offsets']['next']} does not advance past {n}"
        )


# ------------------------------------------------------------------------------ cursor


@dataclass(frozen=True)
class Cursor:
    """A committed cursor: `seq` 0 means none was ever committed (start at each genesis)."""

    seq: int
    next: Offsets

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "next": offsets_to_json(self.next)}

    @staticmethod
    def from_json(doc: dict[str, Any]) -> Cursor:
        return Cursor(seq=int(doc["seq"]), next=offsets_from_json(doc["next"]))


def offsets_to_json(o: Offsets) -> dict[str, dict[str, int]]:
    """JSON object keys are strings: partitions become "0", "1", ..."""
    return {t: {str(p): n for p, n in sorted(ps.items())} for t, ps in sorted(o.items())}


def offsets_from_json(doc: dict[str, dict[str, int]]) -> Offsets:
    return {t: {int(p): int(n) for p, n in ps.items()} for t, ps in doc.items()}


def cursor_dir(dag_id: str, task_id: str) -> str:
    return f"{dag_id}/{task_id}/"


def read_cursor(store: Store, dag_id: str, task_id: str) -> Cursor:
    """The latest committed cursor of (dag_id, task_id), or the empty cursor."""
    prefix = cursor_dir(dag_id, task_id)
    seqs = []
    for key in store.list_keys(prefix):
        name = key[len(prefix) :] if key.startswith(prefix) else key.rsplit("/", 1)[-1]
        stem = name.removesuffix(".json")
        if name.endswith(".json") and stem.isdigit():
            seqs.append(int(stem))
    if not seqs:
        return Cursor(seq=0, next={})
    seq = max(seqs)
    key = f"{prefix}{seq:020}.json"
    body = store.get(key)
    if body is None:
        raise ManifestError(f"{store.describe(key)}: listed but cannot be read")
    try:
        doc = json.loads(body)
        if doc.get("format_version") != FORMAT_VERSION or doc.get("seq") != seq:
            raise ValueError(f"format_version/seq mismatch: {doc.get('format_version')!r}")
        return Cursor(seq=seq, next=offsets_from_json(doc["next"]))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ManifestError(f"{store.describe(key)}: not a cursor: {e}") from e


def commit_cursor(
    store: Store,
    dag_id: str,
    task_id: str,
    base_seq: int,
    nxt: Offsets,
    run_id: str | None = None,
    now: datetime | None = None,
) -> Cursor:
    """Commit `nxt` as the cursor after `base_seq`, create-only. Raises CursorConflictError when
    another run committed `base_seq + 1` first."""
    seq = base_seq + 1
    key = f"{cursor_dir(dag_id, task_id)}{seq:020}.json"
    doc = {
        "format_version": FORMAT_VERSION,
        "kind": "airflow_cursor",
        "dag_id": dag_id,
        "task_id": task_id,
        "seq": seq,
        "next": offsets_to_json(nxt),
        "run_id": run_id,
        "committed_at": (now or datetime.now(timezone.utc)).isoformat(timespec="milliseconds"),
    }
    body = json.dumps(doc, indent=2, sort_keys=True).encode()
    if not store.put_if_absent(key, body):
        raise CursorConflictError(
            f"{store.describe(key)} exists: another run of {dag_id}.{task_id} committed its "
            f"cursor after #{base_seq} first; this run hands nothing off (the next run starts "
            "from that cursor)"
        )
    return Cursor(seq=seq, next=nxt)
