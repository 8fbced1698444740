"""The example DAGs of deploy/airflow/dags, run by real Airflow 3.3 (`airflow dags test`: SQLite,
deferred sensors' triggers run inline) against output `landfall run` lands into moto.

Every test starts the DAG before anything lands (and before `landfall run` starts), waits until
the sensor is deferred, then lets Landfall land, and checks what a user would: the mapped task
count equals the files the manifests list, and the rows the mapped tasks read equal the rows
produced. Tools: LANDFALL_BIN, TANSU_BIN, LANDFALL_AIRFLOW_PYTHON (scripts/ensure-tools.sh).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import landfall_stack as ls

NEEDED = ("LANDFALL_BIN", "TANSU_BIN", "LANDFALL_AIRFLOW_PYTHON")
pytestmark = pytest.mark.skipif(
    any(not os.environ.get(v) for v in NEEDED),
    reason=f"needs {', '.join(NEEDED)} (scripts/ensure-tools.sh; scripts/test.sh sets them)",
)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("airflow-dags")


@pytest.fixture(scope="module")
def s3(work: Path) -> Iterator[ls.Moto]:
    with ls.moto(work) as m:
        yield m


@pytest.fixture(scope="module")
def kafka(work: Path) -> Iterator[ls.Tansu]:
    with ls.tansu(work) as t:
        yield t


@pytest.fixture(scope="module")
def airflow(work: Path, s3: ls.Moto) -> ls.Airflow:
    return ls.Airflow(work / "airflow", s3.endpoint)


def dag_env(sink: str, topic: str) -> dict[str, str]:
    return {
        "LANDFALL_MARKER_URL": f"s3://{ls.BUCKET}/{sink}/_landfall",
        "LANDFALL_DATA_URL": f"s3://{ls.BUCKET}/{sink}/raw",
        "LANDFALL_SINK": sink,
        "LANDFALL_TOPIC": topic,
        # Sensors look every second (the examples' defaults are 5 s and 30 s).
        "LANDFALL_POKE_INTERVAL_S": "1",
    }


def listed(manifests: list[dict[str, Any]]) -> tuple[int, int]:
    """(files, rows) the manifests list."""
    files = [f for m in manifests for f in m["files"]]
    return len(files), sum(f["rows"] for f in files)


def test_batch_markers_dag_with_stock_s3keysensor(
    work: Path, s3: ls.Moto, kafka: ls.Tansu, airflow: ls.Airflow
) -> None:
    sink = topic = "markers"
    date = "2026-11-21T12:00:00+00:00"
    kafka.create_topic(topic, 1)
    cfg = ls.sink_config(work, name=sink, topic=topic, bootstrap=kafka.bootstrap,
                         endpoint=s3.endpoint, flush="max_age_ms = 2000")  # fmt: skip
    t0 = time.monotonic()
    run = airflow.dags_test("landfall_batch_markers", date, dag_env(sink, topic))
    airflow.wait_deferred(run, "landfall_batch_markers", date, "wait_for_batch_marker")
    assert ls.commit_records(s3.client(), sink) == []
    # Event times over three hours: one batch, three data files (one per dt=/hour=).
    produced = [(0, ls.record(i, i % 3)) for i in range(600)]
    kafka.produce(topic, produced)
    with ls.landfall_run(work, cfg):
        rc = airflow.finish(run, "landfall_batch_markers", date)
    assert rc == 0, ls.tail(airflow.log_of("landfall_batch_markers", date), 80)
    manifests = ls.commit_records(s3.client(), sink)
    n_files, n_rows = listed(manifests)
    run_id = airflow.last_run_id("landfall_batch_markers")
    loads = airflow.ti_states("landfall_batch_markers", run_id, "load")
    summary = airflow.xcom("landfall_batch_markers", run_id, "total")
    print(f"markers DAG: {len(manifests)} batch(es), {n_files} files listed, "
          f"{len(loads)} mapped loads, rows read {summary['rows']} of {len(produced)} produced, "
          f"{time.monotonic() - t0:.1f}s")  # fmt: skip
    assert n_files == 3
    assert loads == ["success"] * n_files
    assert summary == {"files": n_files, "rows": len(produced)} == {"files": 3, "rows": n_rows}


def test_cursor_dag_hands_every_batch_to_exactly_one_successful_run(
    work: Path, s3: ls.Moto, kafka: ls.Tansu, airflow: ls.Airflow
) -> None:
    """The example cursor DAG, five runs while Landfall keeps landing (3 partitions, more records
    produced before each run). Run 0 starts before anything exists and defers. Run 2 fails on
    purpose: one data file it is handed is corrupted in the store (its sha256 no longer matches
    the manifest) until the run has failed. The successful runs' hand-offs tile every chain."""
    dag_id, sink, parts = "landfall_batch_cursor", "chain", 3
    kafka.create_topic(sink, parts)
    cfg = ls.sink_config(work, name=sink, topic=sink, bootstrap=kafka.bootstrap,
                         endpoint=s3.endpoint, flush="max_age_ms = 500")  # fmt: skip
    env = dag_env(sink, sink)
    client = s3.client()
    produced = 0
    runs: list[dict[str, Any]] = []

    def chunk(n: int) -> None:
        nonlocal produced
        # Two event-time hours: two data files per batch.
        kafka.produce(sink, [(i % parts, ls.record(produced + i, (i // 3) % 2)) for i in range(n)])
        produced += n

    def all_landed() -> bool:
        landed: int = sum(m["records"] for m in ls.commit_records(client, sink))
        return landed == produced

    def run_dag(i: int, defer_first: bool = False) -> subprocess.Popen[bytes]:
        date = f"2026-11-22T0{i}:00:00+00:00"
        run = airflow.dags_test(dag_id, date, env)
        if defer_first:
            airflow.wait_deferred(run, dag_id, date, "batches")
        return run

    def record(i: int, run: subprocess.Popen[bytes]) -> None:
        date = f"2026-11-22T0{i}:00:00+00:00"
        rc = airflow.finish(run, dag_id, date)
        run_id = airflow.last_run_id(dag_id)
        state = airflow.run_state(dag_id, run_id)
        r: dict[str, Any] = {
            "rc": rc,
            "state": state,
            "handed": airflow.xcom(dag_id, run_id, "batches", "manifests"),
            "files": airflow.xcom(dag_id, run_id, "batches"),
            "loads": airflow.ti_states(dag_id, run_id, "load"),
            "commit": airflow.ti_states(dag_id, run_id, "commit_cursor"),
        }
        r["rows"] = airflow.xcom(dag_id, run_id, "total")["rows"] if state == "success" else None
        runs.append(r)
        print(f"run {i}: {state}, {len(r['handed'])} batch(es), {len(r['files'])} files, "
              f"{r['loads'].count('success')} loads ok, rows read {r['rows']}")  # fmt: skip

    t0 = time.monotonic()
    first = run_dag(0, defer_first=True)
    assert ls.commit_records(client, sink) == []
    chunk(150)
    with ls.landfall_run(work, cfg):
        record(0, first)
        for i in range(1, 5):
            chunk(150 + 50 * i)
            if i in (2, 4):  # everything produced landed: run 2's batches are known, run 4 drains
                ls.eventually("every record landed", 60, lambda: all_landed() or None)
            if i == 2:
                pending = [m for m in ls.commit_records(client, sink) if m["files"]
                           and all(ident(m) not in ident_set(r["handed"]) for r in runs
                                   if r["state"] == "success")]  # fmt: skip
                victim = pending[0]["files"][0]["key"]
                original = client.get_object(Bucket=ls.BUCKET, Key=victim)["Body"].read()
                client.put_object(Bucket=ls.BUCKET, Key=victim, Body=b"not what was landed")
            run = run_dag(i)
            record(i, run)
            if i == 2:
                client.put_object(Bucket=ls.BUCKET, Key=victim, Body=original)
        ls.eventually("every record landed", 60, lambda: all_landed() or None)

    # Run 0: deferred before anything landed, then mapped one load per file it was handed.
    assert runs[0]["state"] == "success"
    assert listed(runs[0]["handed"]) == (len(runs[0]["files"]), runs[0]["rows"])
    assert runs[0]["loads"] == ["success"] * len(runs[0]["files"])
    # Run 2 failed (a load could not verify its file) and committed no cursor.
    assert [r["state"] for r in runs] == ["success", "success", "failed", "success", "success"]
    assert "failed" in runs[2]["loads"]
    assert runs[2]["commit"] == ["upstream_failed"]

    ok = [ident(m) for r in runs if r["state"] == "success" for m in r["handed"]]
    failed = ident_set(runs[2]["handed"])
    commits = sorted(ident(m) for m in ls.commit_records(client, sink))
    rows_read = sum(r["rows"] for r in runs if r["state"] == "success")
    print(f"{len(commits)} batches committed, {len(ok)} handed to successful runs, "
          f"{len(failed)} to the failed run (all re-handed to run 3), rows read {rows_read} "
          f"of {produced} produced, {time.monotonic() - t0:.0f}s")  # fmt: skip
    assert len(ok) == len(set(ok)), "a batch was handed to two successful runs"
    assert sorted(ok) == commits, "a committed batch was never handed to a successful run"
    assert failed
    assert failed <= ident_set(runs[3]["handed"])
    assert rows_read == produced


def ident(m: dict[str, Any]) -> tuple[int, int]:
    return (m["partition"], m["offsets"]["first"])


def ident_set(ms: list[dict[str, Any]]) -> set[tuple[int, int]]:
    return {ident(m) for m in ms}


@pytest.fixture(scope="module")
def features(work: Path) -> dict[str, bool]:
    """What the binary under test supports: window markers and notifications arrive with the
    issue 9 work; until then the tests of those patterns skip (and say so)."""
    return {
        "windows": ls.supports(work, "[windows]\nenabled = true\nallowed_lateness_ms = 1000"),
        "notify": ls.supports(work, '[notify]\nkafka_topic = "landfall.batches"'),
    }


def test_hourly_dag_maps_the_files_of_the_window_success(
    work: Path, s3: ls.Moto, kafka: ls.Tansu, airflow: ls.Airflow, features: dict[str, bool]
) -> None:
    if not features["windows"]:
        pytest.skip("landfall binary has no [windows] (window _SUCCESS markers) yet")
    dag_id, sink = "landfall_hourly", "hourly"
    # The run at 10:00 takes the hour 09:00-10:00 (event time, UTC).
    date = "2026-11-21T10:00:00+00:00"
    kafka.create_topic(sink, 2)
    cfg = ls.sink_config(work, name=sink, topic=sink, bootstrap=kafka.bootstrap,
                         endpoint=s3.endpoint, flush="max_age_ms = 1000",
                         extra="[windows]\nenabled = true\nallowed_lateness_ms = 1000")  # fmt: skip
    t0 = time.monotonic()
    run = airflow.dags_test(dag_id, date, dag_env(sink, sink))
    airflow.wait_deferred(run, dag_id, date, "wait_for_window")
    # Hours 09, 10 and 11 on both partitions: the later hours move each partition past 09:00's
    # end plus the lateness, which closes the 09 window.
    produced = [(i % 2, ls.record(i, i % 3)) for i in range(900)]
    in_window = sum(1 for i in range(900) if i % 3 == 0)
    kafka.produce(sink, produced)
    with ls.landfall_run(work, cfg):
        rc = airflow.finish(run, dag_id, date)
    assert rc == 0, ls.tail(airflow.log_of(dag_id, date), 80)
    run_id = airflow.last_run_id(dag_id)
    files = airflow.xcom(dag_id, run_id, "window_files")
    loads = airflow.ti_states(dag_id, run_id, "load")
    summary = airflow.xcom(dag_id, run_id, "total")
    print(
        f"hourly DAG: {len(files)} files in the window, {len(loads)} mapped loads, rows read "
        f"{summary['rows']} of {in_window} produced for 09:00, {time.monotonic() - t0:.1f}s"
    )
    assert files
    assert loads == ["success"] * len(files)
    assert {f["time_partition"] for f in files} == {"dt=2026-11-21/hour=09"}
    assert summary == {"files": len(files), "rows": in_window}


def test_event_dag_runs_per_notification_under_scheduler_and_triggerer(
    work: Path, s3: ls.Moto, kafka: ls.Tansu, features: dict[str, bool]
) -> None:
    """The event pattern end to end: `airflow standalone` (scheduler, triggerer, API server, DAG
    processor) with the example event DAG, whose AssetWatcher (KafkaMessageQueueTrigger with the
    package's apply_function, against tansu) is running before Landfall starts. Each asset event
    carries the manifest of a batch Landfall just committed; the runs map over its files."""
    if not features["notify"]:
        pytest.skip("landfall binary has no [notify] (Kafka notifications) yet")
    dag_id, sink, notify = "landfall_event", "evrun", "landfall.batches.evrun"
    kafka.create_topic(sink, 2)
    kafka.create_topic(notify, 1)
    cfg = ls.sink_config(work, name=sink, topic=sink, bootstrap=kafka.bootstrap,
                         endpoint=s3.endpoint, flush="max_age_ms = 1000",
                         extra=f'[notify]\nkafka_topic = "{notify}"')  # fmt: skip
    consumer = {
        "bootstrap.servers": kafka.bootstrap,
        "group.id": "airflow-landfall-evrun",
        "auto.offset.reset": "earliest",
    }
    kafka_conn = {"conn_type": "kafka", "extra": consumer}
    aws_conn = {"conn_type": "aws", "login": "test", "password": "test",
                "extra": {"endpoint_url": s3.endpoint, "region_name": "us-east-1"}}  # fmt: skip
    env = {
        **dag_env(sink, sink),
        "LANDFALL_NOTIFY_TOPIC": notify,
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(kafka_conn),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws_conn),
    }
    t0 = time.monotonic()
    with ls.airflow_standalone(work / "standalone", [ls.EXAMPLE_DAGS / "landfall_event.py"],
                               env) as af:  # fmt: skip
        log = af.home / "standalone.log"

        def watching() -> bool:
            if not (af.home / "airflow.db").exists():
                return False
            try:
                rows = af.query("SELECT classpath FROM trigger")
            except Exception:  # tables not migrated yet
                return False
            return any("AwaitMessageTrigger" in r[0] for r in rows)

        ls.eventually("the AssetWatcher's trigger in the triggerer", 180, watching, step=1)
        t_watch = time.monotonic() - t0
        # Two event-time hours per partition: two files per batch.
        produced = [(i % 2, ls.record(i, (i // 2) % 2)) for i in range(400)]
        kafka.produce(sink, produced)

        def runs_rows() -> list[tuple[str, dict[str, int]]]:
            runs = af.query(
                "SELECT run_id FROM dag_run WHERE dag_id = ? AND state = 'success'", dag_id
            )
            return [(r[0], af.xcom(dag_id, r[0], "total")) for r in runs]

        with ls.landfall_run(work, cfg):
            done = ls.eventually(
                "successful event runs that read every produced row", 240,
                lambda: (lambda rr: rr if sum(t["rows"] for _, t in rr) >= len(produced)
                         else None)(runs_rows()),
                step=2,
            )  # fmt: skip
        commits = ls.commit_records(s3.client(), sink)
        n_files, n_rows = listed(commits)
        events = af.query("SELECT extra FROM asset_event")
        payloads = [json.loads(r[0])["payload"] for r in events]
        loads = sum(t["files"] for _, t in done)
        print(f"event DAG under scheduler+triggerer: watcher up after {t_watch:.0f}s, "
              f"{len(commits)} batches, {len(payloads)} asset events, {len(done)} runs, "
              f"{loads} mapped loads of {n_files} files, "
              f"rows read {sum(t['rows'] for _, t in done)} of {len(produced)}, "
              f"{time.monotonic() - t0:.0f}s")  # fmt: skip
        assert log.exists()
    # One asset event per committed batch, each carrying that batch's commit record.
    assert sorted(p["manifest"]["commit_url"] for p in payloads) == sorted(
        m["commit_url"] for m in commits
    )
    assert all(p["manifest"] in commits and p["kind"] == "batch" for p in payloads)
    assert loads == n_files
    assert sum(t["rows"] for _, t in done) == n_rows == len(produced)
