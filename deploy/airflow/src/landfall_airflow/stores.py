"""Object stores behind the cursor's `Store` protocol, through Airflow's own connections.

`s3://bucket/prefix` uses the Amazon provider's `S3Hook` (an `aws` connection: keys, role,
`endpoint_url` in its extra for S3-compatible stores); `gs://bucket/prefix` uses the Google
provider's `GCSHook` (a `google_cloud_platform` connection); `file:///path` is the local disk
(tests, a single-machine deployment). Hooks are imported only when their scheme is used, so the
package needs only the provider of the store it reads.

Calls are synchronous; the trigger runs them in a thread (`asyncio.to_thread`), which keeps the
triggerer's event loop free and needs no second (async) implementation per store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from landfall_airflow.chain import Store


def split_url(url: str) -> tuple[str, str, str]:
    """(scheme, bucket, prefix-without-slashes) of `s3://`, `gs://` or `file://` URLs."""
    parts = urlsplit(url)
    if parts.scheme not in ("s3", "gs", "file"):
        raise ValueError(f"unsupported store URL {url!r}: expected s3://, gs:// or file://")
    if parts.scheme == "file":
        return "file", "", parts.path.rstrip("/")
    if not parts.netloc:
        raise ValueError(f"store URL {url!r} has no bucket")
    return parts.scheme, parts.netloc, parts.path.strip("/")


def open_store(url: str, conn_id: str | None = None) -> Store:
    """A store rooted at `url`. `conn_id` is the Airflow connection (default `aws_default` for
    S3, `google_cloud_default` for GCS; unused for `file://`)."""
    scheme, bucket, prefix = split_url(url)
    if scheme == "s3":
        return S3Store(bucket, prefix, conn_id or "aws_default")
    if scheme == "gs":
        return GcsStore(bucket, prefix, conn_id or "google_cloud_default")
    return LocalStore(Path(prefix))


def read_url(url: str, conn_id: str | None = None) -> bytes | None:
    """One object by full URL (e.g. a window `_SUCCESS`), None when absent."""
    head, _, name = url.rstrip("/").rpartition("/")
    return open_store(head, conn_id).get(name)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key


class S3Store:
    def __init__(self, bucket: str, prefix: str, conn_id: str) -> None:
        self.bucket, self.prefix, self.conn_id = bucket, prefix, conn_id
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            self._client = S3Hook(aws_conn_id=self.conn_id).get_conn()
        return self._client

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{_join(self.prefix, key)}"

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            obj = self.client().get_object(Bucket=self.bucket, Key=_join(self.prefix, key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        body: bytes = obj["Body"].read()
        return body

    def _list(self, prefix: str, delimiter: str | None) -> tuple[list[str], list[str]]:
        full = _join(self.prefix, prefix)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": full}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        keys: list[str] = []
        dirs: list[str] = []
        for page in self.client().get_paginator("list_objects_v2").paginate(**kwargs):
            keys += [o["Key"] for o in page.get("Contents", [])]
            dirs += [d["Prefix"] for d in page.get("CommonPrefixes", [])]
        return keys, dirs

    def list_dirs(self, prefix: str) -> list[str]:
        full = _join(self.prefix, prefix)
        _, dirs = self._list(prefix, "/")
        return [d[len(full) :].strip("/") for d in dirs]

    def list_keys(self, prefix: str) -> list[str]:
        keys, _ = self._list(prefix, None)
        cut = len(self.prefix) + 1 if self.prefix else 0
        return [k[cut:] for k in keys]

    def put_if_absent(self, key: str, body: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            # S3 conditional write: If-None-Match: * fails with 412 when the key exists.
            self.client().put_object(
                Bucket=self.bucket,
                Key=_join(self.prefix, key),
                Body=body,
                IfNoneMatch="*",
                ContentType="application/json",
            )
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise
        return True


class GcsStore:
    def __init__(self, bucket: str, prefix: str, conn_id: str) -> None:
        self.bucket, self.prefix, self.conn_id = bucket, prefix, conn_id
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            from airflow.providers.google.cloud.hooks.gcs import (
                GCSHook,
            )

            self._client = GCSHook(gcp_conn_id=self.conn_id).get_conn()
        return self._client

    def describe(self, key: str) -> str:
        return f"gs://{self.bucket}/{_join(self.prefix, key)}"

    def get(self, key: str) -> bytes | None:
        from google.api_core.exceptions import NotFound

        blob = self.client().bucket(self.bucket).blob(_join(self.prefix, key))
        try:
            data: bytes = blob.download_as_bytes()
        except NotFound:
            return None
        return data

    def list_dirs(self, prefix: str) -> list[str]:
        full = _join(self.prefix, prefix)
        it = self.client().list_blobs(self.bucket, prefix=full, delimiter="/")
        for _ in it.pages:  # prefixes fill in as pages are read
            pass
        return sorted(d[len(full) :].strip("/") for d in it.prefixes)

    def list_keys(self, prefix: str) -> list[str]:
        cut = len(self.prefix) + 1 if self.prefix else 0
        blobs = self.client().list_blobs(self.bucket, prefix=_join(self.prefix, prefix))
        return [b.name[cut:] for b in blobs]

    def put_if_absent(self, key: str, body: bytes) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        blob = self.client().bucket(self.bucket).blob(_join(self.prefix, key))
        try:
            # ifGenerationMatch=0: create only when no live object has the name.
            blob.upload_from_string(body, content_type="application/json", if_generation_match=0)
        except PreconditionFailed:
            return False
        return True


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self, key: str) -> str:
        return f"file://{self.root / key}"

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def list_dirs(self, prefix: str) -> list[str]:
        d = self.root / prefix
        return sorted(e.name for e in d.iterdir() if e.is_dir()) if d.is_dir() else []

    def list_keys(self, prefix: str) -> list[str]:
        d = self.root / prefix
        if not d.is_dir():
            return []
        return [str(p.relative_to(self.root)) for p in d.rglob("*") if p.is_file()]

    def put_if_absent(self, key: str, body: bytes) -> bool:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(body)
        try:
            # link() fails when the target exists: create-only, and never a partial object.
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        return True


def read_listed_file(entry: dict[str, Any], conn_id: str | None = None) -> bytes:
    """The bytes of a data file a manifest lists, checked against its `size_bytes` and `sha256`
    (when present), so a loader never reads a truncated or replaced object unknowingly."""
    import hashlib

    url = entry["url"]
    data = read_url(url, conn_id)
    if data is None:
        raise FileNotFoundError(f"{url}: listed by a manifest but missing from the store")
    size = entry.get("size_bytes")
    if size is not None and len(data) != size:
        raise ValueError(f"{url}: {len(data)} bytes, the manifest lists {size}")
    digest = entry.get("sha256")
    if digest is not None and hashlib.sha256(data).hexdigest() != digest:
        raise ValueError(f"{url}: sha256 differs from the manifest's {digest}")
    return data
