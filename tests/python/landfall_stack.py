"""Real processes for the Airflow tests: tansu (Kafka protocol), moto (S3), `landfall run`, and
`airflow dags test` runs of the example DAGs in deploy/airflow/dags.

Tools come from scripts/ensure-tools.sh: TANSU_BIN, LANDFALL_AIRFLOW_PYTHON (Airflow 3.3 venv),
moto from this interpreter's venv; LANDFALL_BIN is the binary under test. Everything listens on
free loopback ports and is stopped by its fixture.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import boto3
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_PKG = REPO / "deploy" / "airflow"
EXAMPLE_DAGS = AIRFLOW_PKG / "dags"
BUCKET = "lake"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def eventually(what: str, timeout_s: float, check: Callable[[], T | None], step: float = 0.2) -> T:
    """Poll `check` until it returns something other than None/False, or fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got is not None and got is not False:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(step)


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}: {tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        return False

    eventually(f"{what} on port {port}", 30, up)


def tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except FileNotFoundError:
        return f"({path} missing)"


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------- servers


@dataclass
class Moto:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )


@contextlib.contextmanager
def moto(workdir: Path) -> Iterator[Moto]:
    port = free_port()
    log = workdir / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=out,
        )
    try:
        wait_port(port, proc, log, "moto")
        m = Moto(port, proc)
        m.client().create_bucket(Bucket=BUCKET)
        yield m
    finally:
        stop(proc)


@dataclass
class Tansu:
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def create_topic(self, topic: str, partitions: int) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for fut in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
            fut.result(20)

        def ready() -> bool:
            md = admin.list_topics(topic, timeout=5).topics.get(topic)
            return md is not None and md.error is None and len(md.partitions) == partitions

        eventually(f"topic {topic} with {partitions} partitions", 20, ready)

    def produce(self, topic: str, values: list[tuple[int, str]]) -> None:
        """(partition, JSON value) pairs, idempotently, all acknowledged."""
        p = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True})
        errors: list[str] = []

        def report(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        for partition, value in values:
            p.produce(topic, value=value.encode(), partition=partition, on_delivery=report)
        left = p.flush(30)
        assert left == 0, f"produce: {left} undelivered"
        assert not errors, f"produce errors: {errors[:3]}"


@contextlib.contextmanager
def tansu(workdir: Path) -> Iterator[Tansu]:
    binary = os.environ["TANSU_BIN"]
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    d = workdir / "tansu"
    d.mkdir()
    log = d / "tansu.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "broker", "--cluster-id", "landfall-airflow-test", "--storage-engine",
             "sqlite://tansu.db", "--listener-url", url, "--advertised-listener-url", url],
            cwd=d,
            stdout=out,
            stderr=out,
            env={**os.environ, "RUST_LOG": "warn"},
        )  # fmt: skip
    try:
        wait_port(port, proc, log, "tansu")
        yield Tansu(port)
    finally:
        stop(proc)


# ------------------------------------------------------------------------------ landfall

FIELDS = """fields = [
  { name = "seq", type = "int64", nullable = false },
  { name = "name", type = "string" },
  { name = "ts", type = "timestamp" },
]"""

BASE_HOUR = datetime(2026, 11, 21, 9, tzinfo=UTC)


def record(seq: int, hour: int) -> str:
    """A JSON record whose event time (`ts`) is in BASE_HOUR + `hour`."""
    ts = BASE_HOUR + timedelta(hours=hour, seconds=seq % 3600)
    return json.dumps({"seq": seq, "name": f"order-{seq}", "ts": ts.isoformat()})


def sink_config(
    workdir: Path,
    *,
    name: str,
    topic: str,
    bootstrap: str,
    endpoint: str,
    flush: str = "max_age_ms = 1000",
    extra: str = "",
) -> Path:
    opts = (
        f'{{ aws_endpoint = "{endpoint}", aws_allow_http = "true", aws_region = "us-east-1", '
        f'aws_access_key_id = "test", aws_secret_access_key = "test" }}'
    )
    body = f"""name = "{name}"
topics = ["{topic}"]

[kafka]
bootstrap_servers = "{bootstrap}"
session_timeout_ms = 6000

[format]
type = "json"
{FIELDS}

[partitioning]
event_time_field = "ts"

[flush]
{flush}

[store]
url = "s3://{BUCKET}/{name}/raw"
options = {opts}

[marker]
prefix = "s3://{BUCKET}/{name}/_landfall"
options = {opts}
{extra}
"""
    path = workdir / f"{name}.toml"
    path.write_text(body)
    return path


def landfall_bin() -> str:
    return os.environ["LANDFALL_BIN"]


def supports(workdir: Path, table: str) -> bool:
    """Whether the binary under test accepts a config with `table` (e.g. `[windows]`)."""
    cfg = sink_config(
        workdir, name="probe", topic="probe", bootstrap="127.0.0.1:9", endpoint="http://x",
        extra=table,
    )  # fmt: skip
    r = subprocess.run([landfall_bin(), "validate", "-c", str(cfg)], capture_output=True)
    return r.returncode == 0


@contextlib.contextmanager
def landfall_run(workdir: Path, config: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = workdir / f"landfall-{config.stem}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [landfall_bin(), "run", "--config", str(config), "--metrics-addr",
             f"127.0.0.1:{free_port()}"],
            stdout=out,
            stderr=out,
            env={**os.environ, "LANDFALL_LOG": "info"},
        )  # fmt: skip
    try:
        yield proc
    finally:
        stop(proc, 40)
        assert proc.returncode == 0, f"landfall exited {proc.returncode}: {tail(log)}"


def commit_records(s3: Any, sink: str) -> list[dict[str, Any]]:
    """Every commit record of `sink` (the truth of what landed)."""
    prefix = f"{sink}/_landfall/_commits/{sink}/"
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for o in page.get("Contents", []):
            if not o["Key"].endswith("genesis.json"):
                out.append(json.loads(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()))
    return out


# ------------------------------------------------------------------------------- airflow


class Airflow:
    """An AIRFLOW_HOME with a migrated SQLite database and the example DAGs (plus `extra_dags`)."""

    def __init__(
        self, home: Path, moto_endpoint: str, extra_dags: list[Path] | None = None
    ) -> None:
        self.home = home
        self.dags = home / "dags"
        self.dags.mkdir(parents=True)
        for f in [*EXAMPLE_DAGS.glob("*.py"), *(extra_dags or [])]:
            (self.dags / f.name).symlink_to(f)
        self.python = os.environ["LANDFALL_AIRFLOW_PYTHON"]
        self.bin = Path(self.python).parent / "airflow"
        conn = {
            "conn_type": "aws",
            "login": "test",
            "password": "test",
            "extra": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
        }
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn),
            # The package from the working tree, as `pip install deploy/airflow` would provide.
            "PYTHONPATH": str(AIRFLOW_PKG / "src"),
        }
        r = subprocess.run([self.bin, "db", "migrate"], env=self.env, capture_output=True, cwd=home)
        assert r.returncode == 0, r.stderr.decode()[-3000:]

    def dags_test(
        self,
        dag_id: str,
        logical_date: str,
        env: dict[str, str],
        conf: dict[str, Any] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `airflow dags test` (in-process executor; deferred tasks' triggers run inline)."""
        log = self.home / f"{dag_id}-{logical_date.replace(':', '')}.log"
        # -f: parse only the DAG's own file, not the whole folder.
        args = [str(self.bin), "dags", "test", dag_id, logical_date, "-f",
                str(self.dags / f"{dag_id}.py")]  # fmt: skip
        if conf is not None:
            args += ["--conf", json.dumps(conf)]
        with log.open("wb") as out:
            return subprocess.Popen(
                args, env={**self.env, **env}, stdout=out, stderr=out, cwd=self.home
            )

    def log_of(self, dag_id: str, logical_date: str) -> Path:
        return self.home / f"{dag_id}-{logical_date.replace(':', '')}.log"

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.home / "airflow.db", timeout=30)) as db:
            return db.execute(sql, args).fetchall()

    def last_run_id(self, dag_id: str) -> str:
        """`dags test` names its run after the wall clock, so runs are found by order."""
        rows = self.query(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", dag_id
        )
        assert rows, f"no run of {dag_id}"
        return str(rows[0][0])

    def run_state(self, dag_id: str, run_id: str) -> str:
        rows = self.query("SELECT state FROM dag_run WHERE run_id = ?", run_id)
        return str(rows[0][0])

    def ti_states(self, dag_id: str, run_id: str, task_id: str) -> list[str]:
        """States of a task's instances (one per map index), by map index."""
        rows = self.query(
            "SELECT state FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ?"
            " ORDER BY map_index",
            dag_id, run_id, task_id,
        )  # fmt: skip
        return [r[0] for r in rows]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        rows = self.query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ?"
            " AND map_index = -1",
            dag_id, run_id, task_id, key,
        )  # fmt: skip
        assert len(rows) == 1, f"{dag_id}.{task_id} {key}: {len(rows)} XComs"
        value = rows[0][0]
        return json.loads(value) if isinstance(value, str | bytes) else value

    def wait_deferred(self, proc: subprocess.Popen[bytes], dag_id: str, logical_date: str,
                      task_id: str) -> None:  # fmt: skip
        """Until the sensor handed its trigger to the (inline) triggerer: `dags test` logs
        "Pausing task as DEFERRED" for it, then "running trigger in line"."""
        log = self.log_of(dag_id, logical_date)

        def deferred() -> bool:
            text = log.read_text(errors="replace") if log.exists() else ""
            if proc.poll() is not None:
                raise AssertionError(
                    f"dags test {dag_id} ended ({proc.returncode}) before {task_id} deferred: "
                    f"{tail(log, 60)}"
                )
            paused = [ln for ln in text.splitlines() if "Pausing task as DEFERRED" in ln]
            return any(f"task_id={task_id}" in ln for ln in paused) and (
                "running trigger in line" in text
            )

        eventually(f"{dag_id}.{task_id} to defer", 120, deferred, step=0.3)

    def finish(self, proc: subprocess.Popen[bytes], dag_id: str, logical_date: str,
               timeout: float = 180) -> int:  # fmt: skip
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(
                f"dags test {dag_id} still running after {timeout}s: "
                f"{tail(self.log_of(dag_id, logical_date), 60)}"
            ) from None


@contextlib.contextmanager
def airflow_standalone(home: Path, dags: list[Path], env: dict[str, str]) -> Iterator[Airflow]:
    """`airflow standalone` (API server, scheduler, DAG processor, triggerer; SQLite,
    LocalExecutor) in its own process group, which is killed as a whole at the end."""
    af = Airflow.__new__(Airflow)
    af.home, af.dags = home, home / "dags"
    af.dags.mkdir(parents=True)
    for f in dags:
        (af.dags / f.name).symlink_to(f)
    af.python = os.environ["LANDFALL_AIRFLOW_PYTHON"]
    af.bin = Path(af.python).parent / "airflow"
    port = free_port()
    af.env = {
        **os.environ,
        **env,
        # standalone starts its components as `airflow ...` from PATH.
        "PATH": f"{af.bin.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(af.dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "PYTHONPATH": str(AIRFLOW_PKG / "src"),
    }
    log = home / "standalone.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(af.bin), "standalone"], env=af.env, stdout=out, stderr=out, cwd=home,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield af
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(20)
        # Components standalone started may outlive it; they are all in its session.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
