"""The exact cursor against an in-memory store: gap-free walks, create-only commits, and the
hand-off property over many runs with failures and concurrent runs."""

from __future__ import annotations

import json
import random

import pytest
from fakes import FakeLandfall, MemoryStore

from landfall_airflow.chain import (
    Cursor,
    CursorConflictError,
    commit_cursor,
    read_cursor,
    walk,
)
from landfall_airflow.manifest import ManifestError, files_of


def key_of(m: dict[str, object]) -> tuple[object, ...]:
    offsets = m["offsets"]
    assert isinstance(offsets, dict)
    return (m["topic"], m["partition"], offsets["first"])


def test_walk_from_nothing_starts_at_each_genesis() -> None:
    store = MemoryStore()
    lf = FakeLandfall(store)
    lf.assign(0)
    lf.assign(1, first_offset=500)  # e.g. retention had removed offsets before 500
    a = lf.commit(0, 10)
    b = lf.commit(1, 7)
    c = lf.commit(0, 5)
    got = walk(store, "orders", ["orders"], {})
    assert [key_of(m) for m in got.manifests] == [key_of(a), key_of(c), key_of(b)]
    assert got.next == {"orders": {0: 15, 1: 507}}


def test_walk_resumes_exactly_at_the_cursor() -> None:
    store = MemoryStore()
    lf = FakeLandfall(store)
    lf.assign(0)
    lf.commit(0, 10)
    first = walk(store, "orders", ["orders"], {})
    assert walk(store, "orders", ["orders"], first.next).manifests == []
    m = lf.commit(0, 3)
    again = walk(store, "orders", ["orders"], first.next)
    assert [key_of(x) for x in again.manifests] == [key_of(m)]
    assert again.next == {"orders": {0: 13}}


def test_new_partition_starts_at_its_genesis_and_unborn_waits() -> None:
    store = MemoryStore()
    lf = FakeLandfall(store)
    lf.assign(0)
    lf.commit(0, 4)
    cur = walk(store, "orders", ["orders"], {}).next
    lf.assign(1)  # the topic grew
    m = lf.commit(1, 2)
    # A partition directory without genesis yet (should not happen, but must not crash).
    store.objects["_commits/orders/orders/00002/x.tmp"] = b""
    got = walk(store, "orders", ["orders"], cur)
    assert [key_of(x) for x in got.manifests] == [key_of(m)]
    assert got.waiting == [("orders", 2)]
    assert 2 not in got.next["orders"]


def test_max_batches_stops_right_after_the_last_returned() -> None:
    store = MemoryStore()
    lf = FakeLandfall(store)
    lf.assign(0)
    for _ in range(5):
        lf.commit(0, 2)
    part = walk(store, "orders", ["orders"], {}, max_batches=2)
    assert len(part.manifests) == 2
    assert part.next == {"orders": {0: 4}}
    rest = walk(store, "orders", ["orders"], part.next)
    assert [m["offsets"]["first"] for m in rest.manifests] == [4, 6, 8]


def test_a_commit_that_does_not_link_is_a_clear_error() -> None:
    store = MemoryStore()
    lf = FakeLandfall(store)
    lf.assign(0)
    lf.commit(0, 5)
    key = "_commits/orders/orders/00000/00000000000000000000.json"
    doc = json.loads(store.objects[key])
    doc["offsets"]["first"] = 1
    store.objects[key] = json.dumps(doc).encode()
    with pytest.raises(
        ManifestError,
        match=r"mem://_commits/orders/orders/00000/0+\.json.*"
        r"starting at offset 0.*first offset 1",
    ):
        walk(store, "orders", ["orders"], {})


def test_unknown_format_version_is_refused() -> None:
    store = MemoryStore()
    lf = FakeLandfall(store)
    lf.assign(0)
    lf.commit(0, 5)
    key = "_commits/orders/orders/00000/00000000000000000000.json"
    doc = json.loads(store.objects[key])
    doc["format_version"] = 2
    store.objects[key] = json.dumps(doc).encode()
    with pytest.raises(ManifestError, match="format_version 2 is not supported"):
        walk(store, "orders", ["orders"], {})


def test_cursor_commit_is_create_only() -> None:
    store = MemoryStore()
    assert read_cursor(store, "d", "t") == Cursor(seq=0, next={})
    c1 = commit_cursor(store, "d", "t", 0, {"orders": {0: 10}}, run_id="r1")
    assert read_cursor(store, "d", "t") == c1 == Cursor(seq=1, next={"orders": {0: 10}})
    # A second run that also started from #0 loses: nothing is handed out twice.
    with pytest.raises(CursorConflictError, match="another run"):
        commit_cursor(store, "d", "t", 0, {"orders": {0: 12}}, run_id="r2")
    assert read_cursor(store, "d", "t").next == {"orders": {0: 10}}
    # Cursors of other tasks are separate.
    assert read_cursor(store, "d", "other").seq == 0


def test_every_batch_goes_to_exactly_one_successful_run() -> None:
    """Simulated DAG runs (read cursor, walk, maybe fail, commit) interleaved with landings,
    including failed runs and pairs of concurrent runs racing on the same cursor."""
    rng = random.Random(7)
    store = MemoryStore()
    lf = FakeLandfall(store)
    for p in range(3):
        lf.assign(p)
    handed: list[tuple[object, ...]] = []
    failed_runs = conflicts = 0
    for run in range(200):
        for _ in range(rng.randrange(0, 4)):
            if run == 50 and 3 not in lf.next:
                lf.assign(3)  # partitions grow mid-way
            lf.commit(rng.choice(sorted(lf.next)), rng.randrange(1, 50), files=rng.randrange(0, 3))
        racers = 2 if rng.random() < 0.2 else 1
        starts = [read_cursor(store, "dag", "batches") for _ in range(racers)]
        walks = [walk(store, "orders", ["orders"], c.next, max_batches=6) for c in starts]
        for c, w in zip(starts, walks, strict=True):
            if rng.random() < 0.25:
                failed_runs += 1  # downstream failed: the commit task never runs
                continue
            try:
                commit_cursor(store, "dag", "batches", c.seq, w.next)
            except CursorConflictError:
                conflicts += 1
                continue
            handed += [key_of(m) for m in w.manifests]
    final = walk(store, "orders", ["orders"], read_cursor(store, "dag", "batches").next)
    handed += [key_of(m) for m in final.manifests]
    committed = sorted(
        key_of(json.loads(v))
        for k, v in store.objects.items()
        if k.startswith("_commits/") and not k.endswith("genesis.json")
    )
    print(
        f"200 runs: {len(handed)} batches handed once each, {failed_runs} failed runs, "
        f"{conflicts} lost races"
    )
    assert failed_runs > 0
    assert conflicts > 0
    assert sorted(handed) == committed
    assert len(set(handed)) == len(handed)


def test_files_carry_partition_and_commit_first() -> None:
    store = MemoryStore()
    lf = FakeLandfall(store)
    lf.assign(2, first_offset=40)
    m = lf.commit(2, 9, files=3)
    files = files_of([m])
    assert [(f["partition"], f["commit_first"]) for f in files] == [(2, 40)] * 3
    assert sum(f["rows"] for f in files) == 9
