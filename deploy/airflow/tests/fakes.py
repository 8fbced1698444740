"""An in-memory `Store` and a tiny Landfall that commits chains into it."""

from __future__ import annotations

import json
from typing import Any


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.gets = 0

    def describe(self, key: str) -> str:
        return f"mem://{key}"

    def get(self, key: str) -> bytes | None:
        self.gets += 1
        return self.objects.get(key)

    def list_dirs(self, prefix: str) -> list[str]:
        names = {k[len(prefix) :].split("/", 1)[0] for k in self.objects if k.startswith(prefix)}
        return sorted(n for n in names if any(k.startswith(f"{prefix}{n}/") for k in self.objects))

    def list_keys(self, prefix: str) -> list[str]:
        return [k for k in self.objects if k.startswith(prefix)]

    def put_if_absent(self, key: str, body: bytes) -> bool:
        if key in self.objects:
            return False
        self.objects[key] = body
        return True


class FakeLandfall:
    """Commits batches the way Landfall lays them out (`docs/markers.md`)."""

    def __init__(self, store: MemoryStore, sink: str = "orders", topic: str = "orders") -> None:
        self.store, self.sink, self.topic = store, sink, topic
        self.next: dict[int, int] = {}

    def assign(self, partition: int, first_offset: int = 0) -> None:
        self.next[partition] = first_offset
        key = f"_commits/{self.sink}/{self.topic}/{partition:05}/genesis.json"
        body = {
            "format_version": 1,
            "sink": self.sink,
            "topic": self.topic,
            "partition": partition,
            "first_offset": first_offset,
        }
        self.store.put_if_absent(key, json.dumps(body).encode())

    def commit(self, partition: int, records: int, files: int = 1) -> dict[str, Any]:
        first = self.next[partition]
        nxt = first + records
        m = {
            "format_version": 1,
            "sink": self.sink,
            "topic": self.topic,
            "partition": partition,
            "offsets": {"first": first, "last": nxt - 1, "next": nxt},
            "records": records,
            "rows": records,
            "dead_lettered": 0,
            "files": [
                {
                    "url": f"s3://lake/raw/{self.topic}/{partition}-{first}-{i}.parquet",
                    "key": f"raw/{self.topic}/{partition}-{first}-{i}.parquet",
                    "rows": records // files + (1 if i < records % files else 0),
                    "size_bytes": 100,
                    "sha256": "0" * 64,
                    "time_partition": "dt=2026-11-21/hour=10",
                    "min_offset": first,
                    "max_offset": nxt - 1,
                    "schema_fingerprint": "sha256:x",
                }
                for i in range(files)
            ],
            "dead_letter_files": [],
        }
        key = f"_commits/{self.sink}/{self.topic}/{partition:05}/{first:020}.json"
        assert self.store.put_if_absent(key, json.dumps(m).encode())
        self.next[partition] = nxt
        return m
