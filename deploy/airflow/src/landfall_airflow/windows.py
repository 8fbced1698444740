"""Window `_SUCCESS` markers: `{store.url}/{topic}/dt=YYYY-MM-DD/hour=HH/_SUCCESS`.

Written create-only by Landfall once every partition passed the window's end plus the allowed
lateness; the body lists every data file of the window (across batches, partitions, workers).
Wait for it with `S3KeySensor(deferrable=True)` and read it with `window_files_at`.
"""

from __future__ import annotations

from datetime import datetime

from landfall_airflow.manifest import (
    FileEntry,
    Manifest,
    parse_window,
    window_files,
    window_success_key,
)
from landfall_airflow.stores import read_url


def time_partition(start: datetime) -> str:
    """`dt=YYYY-MM-DD/hour=HH` of a window start (already in `partitioning.timezone`)."""
    return f"dt={start:%Y-%m-%d}/hour={start:%H}"


def success_url(data_url: str, topic: str, start: datetime) -> str:
    """The `_SUCCESS` URL of the hour starting at `start`."""
    return window_success_key(data_url, topic, time_partition(start))


def read_window(url: str, conn_id: str | None = None) -> Manifest:
    """The parsed `_SUCCESS` at `url`; FileNotFoundError names the URL when it is absent."""
    body = read_url(url, conn_id)
    if body is None:
        raise FileNotFoundError(f"{url}: no window marker (the window is not closed yet)")
    return parse_window(body, url)


def window_files_at(url: str, conn_id: str | None = None) -> list[FileEntry]:
    """Every data file of the window whose `_SUCCESS` is at `url`, for `.expand()`."""
    return window_files(read_window(url, conn_id))
