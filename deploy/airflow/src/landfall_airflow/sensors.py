"""`LandfallBatchSensor`: every batch committed since the last successful run, exactly once.

Wiring (see `docs/airflow.md`)::

    batches = LandfallBatchSensor(task_id="batches", marker_url="s3://lake/_landfall",
                                  sink="orders", topics=["orders"])
    counts = load.expand(file=batches.output)           # one mapped task per landed file
    counts >> LandfallCommitCursorOperator(task_id="commit_cursor", sensor_task_id="batches")

The sensor returns the data files (XCom `return_value`, for `.expand()`) and pushes the
manifests (XCom `manifests`) and the proposed cursor (XCom `cursor`). Nothing is handed off until
`LandfallCommitCursorOperator` commits that cursor, which it does only when nothing upstream
failed; a failed run commits nothing, so the next run gets its batches again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, BaseSensorOperator, Context, TriggerRule

from landfall_airflow.chain import (
    Cursor,
    commit_cursor,
    offsets_from_json,
    offsets_to_json,
    read_cursor,
    walk,
)
from landfall_airflow.manifest import FileEntry, files_of, join
from landfall_airflow.stores import open_store
from landfall_airflow.triggers import LandfallBatchTrigger

CURSOR_DIR = "_airflow/cursors"


class LandfallBatchSensor(BaseSensorOperator):
    """Waits (deferred, in the triggerer) until batches were committed after this task's cursor.

    :param marker_url: the sink's `marker.prefix`, e.g. `s3://lake/_landfall`.
    :param sink: the sink `name`.
    :param topics: the topics of the sink to hand out.
    :param conn_id: Airflow connection of the store (`aws_default` / `google_cloud_default`).
    :param cursor_url: where cursors are committed; default `{marker_url}/_airflow/cursors`
        (outside `batches/`, so batch-marker wildcards never see it). The cursor of a task is
        `{cursor_url}/{dag_id}/{task_id}/{seq:020}.json`.
    :param min_batches: fire once at least this many new batches exist.
    :param max_batches: hand out at most this many batches per run (the rest go to the next).
    """

    template_fields: Sequence[str] = ("marker_url", "sink", "topics", "cursor_url")

    def __init__(
        self,
        *,
        marker_url: str,
        sink: str,
        topics: Sequence[str],
        conn_id: str | None = None,
        cursor_url: str | None = None,
        min_batches: int = 1,
        max_batches: int = 1_000,
        poke_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        if isinstance(topics, str):
            raise TypeError("topics must be a list of topic names, not a string")
        if min_batches < 1 or max_batches < min_batches:
            raise ValueError(
                f"need 1 <= min_batches ({min_batches}) <= max_batches ({max_batches})"
            )
        self.marker_url = marker_url
        self.sink = sink
        self.topics = list(topics)
        self.conn_id = conn_id
        self.cursor_url = cursor_url
        self.min_batches = min_batches
        self.max_batches = max_batches

    def _cursor_url(self) -> str:
        return self.cursor_url or join(self.marker_url, CURSOR_DIR)

    def _read_cursor(self) -> Cursor:
        store = open_store(self._cursor_url(), self.conn_id)
        return read_cursor(store, self.dag_id, self.task_id)

    def poke(self, context: Context) -> bool:
        """Non-deferred use (`deferrable` is not an option here: the sensor always defers from
        `execute`); kept so `mode="reschedule"` style checks still work."""
        cursor = self._read_cursor()
        store = open_store(self.marker_url, self.conn_id)
        found = walk(store, self.sink, self.topics, cursor.next, self.min_batches)
        return len(found.manifests) >= self.min_batches

    def execute(self, context: Context) -> list[FileEntry]:
        cursor = self._read_cursor()
        done = self._collect(context, cursor)
        if done is not None:
            return done
        self.defer(
            trigger=LandfallBatchTrigger(
                marker_url=self.marker_url,
                sink=self.sink,
                topics=self.topics,
                start=offsets_to_json(cursor.next),
                cursor_seq=cursor.seq,
                conn_id=self.conn_id,
                poke_interval=self.poke_interval,
                min_batches=self.min_batches,
            ),
            method_name="execute_complete",
            timeout=self.timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[FileEntry]:
        if event.get("status") != "landed":
            raise RuntimeError(f"Landfall batch trigger failed: {event.get('message', event)}")
        cursor = event["cursor"]
        done = self._collect(context, Cursor.from_json(cursor))
        if done is None:  # commit records are never deleted while a cursor points before them
            raise RuntimeError(
                f"the trigger saw new batches of sink {self.sink!r} after cursor "
                f"#{cursor['seq']}, but they are gone"
            )
        return done

    def _collect(self, context: Context, cursor: Cursor) -> list[FileEntry] | None:
        store = open_store(self.marker_url, self.conn_id)
        found = walk(store, self.sink, self.topics, cursor.next, self.max_batches)
        if len(found.manifests) < self.min_batches:
            return None
        ti = context["ti"]
        ti.xcom_push(key="manifests", value=found.manifests)
        ti.xcom_push(
            key="cursor",
            value={
                "cursor_url": self._cursor_url(),
                "conn_id": self.conn_id,
                "dag_id": self.dag_id,
                "task_id": self.task_id,
                "base_seq": cursor.seq,
                "next": offsets_to_json(found.next),
                "batches": len(found.manifests),
            },
        )
        files = files_of(found.manifests)
        self.log.info(
            "%d batch(es), %d file(s) of sink %s after cursor #%d",
            len(found.manifests),
            len(files),
            self.sink,
            cursor.seq,
        )
        return files


class LandfallCommitCursorOperator(BaseOperator):
    """Commits the cursor a `LandfallBatchSensor` proposed: the hand-off of its batches.

    Put it downstream of every task that consumes the batches. Its trigger rule
    (`none_failed`) lets it run when mapping over zero files was skipped, and never after a
    failure. The write is create-only on the next sequence number, so if another run committed
    from the same cursor first, this task fails (`CursorConflictError`) instead of handing the same
    batches out twice.
    """

    def __init__(self, *, sensor_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.NONE_FAILED)
        super().__init__(**kwargs)
        self.sensor_task_id = sensor_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        proposed = context["ti"].xcom_pull(task_ids=self.sensor_task_id, key="cursor")
        if not proposed:
            raise RuntimeError(f"task {self.sensor_task_id!r} pushed no cursor in this run")
        store = open_store(proposed["cursor_url"], proposed["conn_id"])
        committed = commit_cursor(
            store,
            proposed["dag_id"],
            proposed["task_id"],
            int(proposed["base_seq"]),
            offsets_from_json(proposed["next"]),
            run_id=context["run_id"],
        )
        self.log.info(
            "cursor #%d committed: %d batch(es) handed off", committed.seq, proposed["batches"]
        )
        return committed.to_json()
