"""Landfall's manifests (batch manifest, window `_SUCCESS`) and the keys they live at.

Pure Python, no Airflow import: the format is the contract in `docs/markers.md`. Readers accept
`format_version` 1 only and ignore fields they do not know.
"""

from __future__ import annotations

import json
from typing import Any

FORMAT_VERSION = 1

Manifest = dict[str, Any]
FileEntry = dict[str, Any]


class ManifestError(ValueError):
    """A manifest Landfall's reader cannot use; the message names the object and the field."""


def parse_manifest(body: bytes | str, where: str) -> Manifest:
    """Parse and check a batch manifest (commit record or batch marker). `where` names the
    object (its URL or key) in every error."""
    doc = _load(body, where)
    _require_version(doc, where)
    for field in ("sink", "topic", "partition", "offsets", "files"):
        if field not in doc:
            raise ManifestError(f"{where}: batch manifest has no '{field}'")
    offsets = doc["offsets"]
    if not isinstance(offsets, dict) or not all(
        isinstance(offsets.get(k), int) for k in ("first", "next")
    ):
        raise ManifestError(f"{where}: 'offsets' needs integer 'first' and 'next', got {offsets!r}")
    if not isinstance(doc["files"], list):
        raise ManifestError(f"{where}: 'files' is not a list")
    return doc


def parse_window(body: bytes | str, where: str) -> Manifest:
    """Parse and check a window `_SUCCESS` manifest (`kind` = `window`)."""
    doc = _load(body, where)
    _require_version(doc, where)
    if doc.get("kind") != "window":
        raise ManifestError(f"{where}: expected kind 'window', got {doc.get('kind')!r}")
    if not isinstance(doc.get("files"), list):
        raise ManifestError(f"{where}: window manifest has no 'files' list")
    return doc


def batch_files(manifest: Manifest) -> list[FileEntry]:
    """The data files of one batch, each with `partition` and `commit_first` added (the shape a
    window manifest lists them in), ready for `.expand()`."""
    out: list[FileEntry] = []
    for f in manifest["files"]:
        entry = dict(f)
        entry.setdefault("partition", manifest["partition"])
        entry.setdefault("commit_first", manifest["offsets"]["first"])
        out.append(entry)
    return out


def files_of(manifests: list[Manifest]) -> list[FileEntry]:
    """Every data file the manifests list, in manifest order: one `.expand()` element each."""
    return [f for m in manifests for f in batch_files(m)]


def window_files(window: Manifest) -> list[FileEntry]:
    """The files a window `_SUCCESS` lists (already carrying `partition` and `commit_first`)."""
    return [dict(f) for f in window["files"]]


# --------------------------------------------------------------------------------- keys


def commit_dir(sink: str, topic: str, partition: int | None = None) -> str:
    """`_commits/{sink}/{topic}/` or, with a partition, `_commits/{sink}/{topic}/{p:05}/`,
    relative to `marker.prefix`."""
    base = f"_commits/{sink}/{topic}/"
    return base if partition is None else f"{base}{partition:05}/"


def commit_key(sink: str, topic: str, partition: int, first: int) -> str:
    return f"{commit_dir(sink, topic, partition)}{first:020}.json"


def genesis_key(sink: str, topic: str, partition: int) -> str:
    return f"{commit_dir(sink, topic, partition)}genesis.json"


def parse_genesis(body: bytes | str, where: str) -> int:
    """`first_offset` of a `genesis.json`."""
    doc = _load(body, where)
    _require_version(doc, where)
    first = doc.get("first_offset")
    if not isinstance(first, int) or first < 0:
        raise ManifestError(f"{where}: genesis 'first_offset' is not an offset: {first!r}")
    return first


def batch_marker_glob(marker_prefix: str, sink: str, topic: str) -> str:
    """The documented sensor pattern for "a batch landed" (fnmatch: `*` also matches `/`)."""
    return f"{join(marker_prefix, 'batches', sink, topic)}/*.json"


def window_success_key(data_prefix: str, topic: str, time_partition: str) -> str:
    """`{store.url}/{topic}/dt=YYYY-MM-DD/hour=HH/_SUCCESS`."""
    return f"{join(data_prefix, topic, time_partition)}/_SUCCESS"


def join(*parts: str) -> str:
    """Join key parts with single slashes (keeps `s3://` intact)."""
    out = parts[0].rstrip("/")
    for p in parts[1:]:
        p = p.strip("/")
        if p:
            out = f"{out}/{p}" if out else p
    return out


def _load(body: bytes | str, where: str) -> Manifest:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"{where}: not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    return doc


def _require_version(doc: Manifest, where: str) -> None:
    if doc.get("format_version") != FORMAT_VERSION:
        raise ManifestError(
            f"{where}: format_version {doc.get('format_version')!r} is not supported "
            f"(this reader knows {FORMAT_VERSION})"
        )
