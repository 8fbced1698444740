#!/usr/bin/env python3
"""The Python baseline of Landfall's end-to-end benchmark (`landfall-bench`'s `e2e`).

What a Python shop writes in an afternoon to land a Kafka topic as Parquet: a confluent-kafka
Consumer (the group settings Landfall's consumer uses: earliest, no auto commit, the same
`fetch.wait.max.ms`), records buffered per partition, each value parsed with `json.loads`
(orjson if installed), the rows turned into a table with `pyarrow.Table.from_pylist` (schema
inferred by pyarrow), Landfall's four metadata columns appended (`_topic`, `_partition`,
`_offset`, `_timestamp`), and the table written as a zstd Parquet file with
`pyarrow.parquet.write_table` once a partition has buffered `--flush-input-bytes` of values
(the e2e harness picks that so the files come out about the size Landfall's do). After each
file the partition's offset is committed synchronously. `--parser arrow` instead parses a
whole file's worth at once with `pyarrow.json.read_json` over the newline-joined values (the
faster, less obvious choice).

It stops once every partition has reached the end offset given on the command line, then
prints one JSON line: records, bytes, files, file bytes, and every file with its partition,
offsets, rows, size and the wall-clock time (ms) it was written and committed.

    bench-baseline.py --bootstrap 127.0.0.1:9092 --topic events --group g \\
        --ends 0:1000,1:1000 --out DIR --flush-input-bytes 200000000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.json as pajson  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition


def _json_loads() -> tuple[str, Callable[[bytes], Any]]:
    try:
        import orjson  # type: ignore[import-not-found,unused-ignore]

        return "orjson", orjson.loads  # type: ignore[no-any-return,unused-ignore]
    except ImportError:
        return "json", json.loads


@dataclass
class Buffer:
    values: list[bytes] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    nbytes: int = 0


@dataclass
class Landed:
    partition: int
    first: int
    last: int
    rows: int
    size: int
    path: str
    landed_ms: int


def parse_ends(text: str) -> dict[int, int]:
    ends: dict[int, int] = {}
    for item in text.split(","):
        p, end = item.split(":")
        ends[int(p)] = int(end)
    return ends


class Sink:
    def __init__(self, args: argparse.Namespace, consumer: Consumer) -> None:
        self.topic: str = args.topic
        self.out: str = args.out
        self.parser: str = args.parser
        self.consumer = consumer
        self.loads_name, self.loads = _json_loads()
        self.landed: list[Landed] = []

    def table(self, b: Buffer, partition: int) -> pa.Table:
        if self.parser == "arrow":
            t = pajson.read_json(io.BytesIO(b"\n".join(b.values)))
        else:
            t = pa.Table.from_pylist([self.loads(v) for v in b.values])
        n = len(b.offsets)
        t = t.append_column("_topic", pa.array([self.topic] * n, pa.string()))
        t = t.append_column("_partition", pa.array([partition] * n, pa.int32()))
        t = t.append_column("_offset", pa.array(b.offsets, pa.int64()))
        ts = pa.array(b.timestamps, pa.timestamp("ms", tz="UTC"))
        return t.append_column("_timestamp", ts.cast(pa.timestamp("us", tz="UTC")))

    def write(self, partition: int, b: Buffer) -> None:
        first, last = b.offsets[0], b.offsets[-1]
        d = os.path.join(self.out, self.topic, f"partition={partition}")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"{first:020d}-{last:020d}.parquet")
        pq.write_table(self.table(b, partition), path, compression="zstd")
        self.consumer.commit(
            offsets=[TopicPartition(self.topic, partition, last + 1)], asynchronous=False
        )
        self.landed.append(
            Landed(
                partition=partition,
                first=first,
                last=last,
                rows=len(b.offsets),
                size=os.path.getsize(path),
                path=path,
                landed_ms=int(time.time() * 1000),
            )
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    started_ms = int(time.time() * 1000)
    ends = parse_ends(args.ends)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            "queued.max.messages.kbytes": 65536,
            "fetch.wait.max.ms": args.fetch_wait_max_ms,
        }
    )
    consumer.subscribe([args.topic])
    sink = Sink(args, consumer)
    buffers: dict[int, Buffer] = {p: Buffer() for p in ends}
    next_offset = {p: 0 for p in ends}
    records = nbytes = 0
    deadline = time.monotonic() + args.timeout_secs
    while any(next_offset[p] < end for p, end in ends.items()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{records} records after {args.timeout_secs}s")
        msgs: list[Message] = consumer.consume(num_messages=10_000, timeout=0.1)
        for m in msgs:
            err = m.error()
            if err is not None:
                raise KafkaException(err)
            p = m.partition()
            value = m.value()
            offset = m.offset()
            if p is None or value is None or offset is None:
                raise ValueError(f"record without partition, value or offset: {m}")
            b = buffers[p]
            b.values.append(value)
            b.offsets.append(offset)
            b.timestamps.append(m.timestamp()[1])
            b.nbytes += len(value)
            records += 1
            nbytes += len(value)
            next_offset[p] = offset + 1
            if b.nbytes >= args.flush_input_bytes:
                sink.write(p, b)
                buffers[p] = Buffer()
        # A partition at its end offset lands its tail now (Landfall does so at shutdown).
        for p, end in ends.items():
            if next_offset[p] >= end and buffers[p].offsets:
                sink.write(p, buffers[p])
                buffers[p] = Buffer()
    consumer.close()
    return {
        "records": records,
        "bytes": nbytes,
        "files": len(sink.landed),
        "file_bytes": sum(f.size for f in sink.landed),
        "parser": args.parser if args.parser == "arrow" else sink.loads_name,
        "started_ms": started_ms,
        "last_landed_ms": max((f.landed_ms for f in sink.landed), default=started_ms),
        "file_list": [f.__dict__ for f in sink.landed],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--ends", required=True, help="PARTITION:END_OFFSET,... (offsets from 0)")
    ap.add_argument("--out", required=True, help="directory for the Parquet files")
    ap.add_argument("--flush-input-bytes", type=int, default=200_000_000)
    ap.add_argument("--fetch-wait-max-ms", type=int, default=100)
    ap.add_argument("--parser", choices=["json", "arrow"], default="json")
    ap.add_argument("--timeout-secs", type=int, default=900)
    args = ap.parse_args()
    report = run(args)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
