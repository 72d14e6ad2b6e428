"""Buckets: GCS and S3 through fsspec (gcsfs, s3fs), imported only when a bucket URL is opened.

- ``write_bytes`` is one object PUT (or one multipart upload, completed at once), so readers
  see the old object or the new one, never half.
- ``put_if_absent`` uses the store's own precondition: GCS ``ifGenerationMatch=0``, S3
  ``If-None-Match: *``; the store, not a check-then-write, decides who created the object.
- Endpoints for emulators and S3-compatible stores come from options or the environment:
  ``STORAGE_EMULATOR_HOST`` (GCS), ``AWS_ENDPOINT_URL`` or ``HML_S3_ENDPOINT`` (S3).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, Any

from .._lazy import require
from ..errors import NotFoundError, StorageError, UsageError
from .base import Storage, check_key


class FsspecStorage(Storage):
    """A bucket prefix on an fsspec filesystem; subclasses build the filesystem."""

    protocol = ""

    def __init__(self, url: str, fs: Any) -> None:
        bucket, prefix = _split(url, self.protocol)
        self.bucket = bucket
        self.prefix = prefix
        self.url = f"{self.protocol}://{bucket}" + (f"/{prefix}" if prefix else "")
        self.fs = fs

    def _path(self, key: str) -> str:
        check_key(key)
        return f"{self.bucket}/{self.prefix}/{key}" if self.prefix else f"{self.bucket}/{key}"

    def _root(self) -> str:
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self._path(key))  # type: ignore[no-any-return]
        except FileNotFoundError as exc:
            raise NotFoundError(f"{self.url}/{key} does not exist") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {self.url}/{key}: {exc}") from exc

    def write_bytes(self, key: str, data: bytes) -> None:
        try:
            self.fs.pipe_file(self._path(key), data)
        except OSError as exc:
            raise StorageError(f"cannot write {self.url}/{key}: {exc}") from exc

    def put_if_absent(self, key: str, data: bytes) -> bool:
        try:
            self.fs.pipe_file(self._path(key), data, mode="create")
        except FileExistsError:
            return False
        except OSError as exc:
            if _is_precondition_failure(exc):
                return False
            raise StorageError(f"cannot create {self.url}/{key}: {exc}") from exc
        return True

    def copy(self, src: str, dst: str) -> None:
        try:
            self.fs.copy(self._path(src), self._path(dst))  # GCS rewrite / S3 CopyObject
        except FileNotFoundError as exc:
            raise NotFoundError(f"{self.url}/{src} does not exist") from exc
        except OSError as exc:
            raise StorageError(f"cannot copy {self.url}/{src} to {dst}: {exc}") from exc

    def exists(self, key: str) -> bool:
        path = self._path(key)
        self.fs.invalidate_cache(path)
        return bool(self.fs.isfile(path))

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self._root()
        where = f"{base}/{check_key(prefix)}" if prefix else base
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(where)
        except FileNotFoundError:
            return iter(())
        start = len(base) + 1
        return iter(sorted(p[start:] for p in found if p.startswith(base + "/")))

    def delete(self, key: str) -> None:
        try:
            self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            pass

    def open_read(self, key: str) -> IO[bytes]:
        try:
            return self.fs.open(self._path(key), "rb")  # type: ignore[no-any-return]
        except FileNotFoundError as exc:
            raise NotFoundError(f"{self.url}/{key} does not exist") from exc

    def read_range(self, key: str, start: int, length: int) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._path(key), start=start, end=start + length))
        except FileNotFoundError as exc:
            raise NotFoundError(f"{self.url}/{key} does not exist") from exc

    def size(self, key: str) -> int:
        try:
            return int(self.fs.size(self._path(key)))
        except FileNotFoundError as exc:
            raise NotFoundError(f"{self.url}/{key} does not exist") from exc


class GCSStorage(FsspecStorage):
    """``gs://bucket/prefix``. Options go to ``gcsfs.GCSFileSystem`` (``project``, ``token``,
    ``endpoint_url``...). With ``STORAGE_EMULATOR_HOST`` set (fake-gcs-server), that endpoint
    is used anonymously."""

    protocol = "gs"

    def __init__(self, url: str, endpoint_url: str | None = None, **options: Any) -> None:
        gcsfs = require("gcsfs", "gcs", "Google Cloud Storage (gs://) access")
        filesystem = gcsfs.GCSFileSystem
        endpoint = endpoint_url or os.environ.get("STORAGE_EMULATOR_HOST") or None
        if endpoint:
            if "://" not in endpoint:
                endpoint = f"http://{endpoint}"
            options.setdefault("token", "anon")
            options["endpoint_url"] = endpoint
            # the plain filesystem: the extended one (GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT) first
            # probes hierarchical-namespace APIs that emulators never answer, and hangs
            filesystem = require(
                "gcsfs.core", "gcs", "Google Cloud Storage (gs://) access"
            ).GCSFileSystem
        # a fresh instance: cached ones carry an event loop that does not survive fork()
        fs = filesystem(skip_instance_cache=True, **options)
        super().__init__(url.replace("gcs://", "gs://", 1), fs)


class S3Storage(FsspecStorage):
    """``s3://bucket/prefix``. Options go to ``s3fs.S3FileSystem`` (``key``, ``secret``,
    ``client_kwargs``...); ``endpoint_url`` (or ``AWS_ENDPOINT_URL`` / ``HML_S3_ENDPOINT``)
    points at an S3-compatible store such as MinIO or moto."""

    protocol = "s3"

    def __init__(self, url: str, endpoint_url: str | None = None, **options: Any) -> None:
        s3fs = require("s3fs", "s3", "Amazon S3 (s3://) access")
        endpoint = (
            endpoint_url or os.environ.get("HML_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
        )
        if endpoint:
            options["endpoint_url"] = endpoint
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
        super().__init__(url, fs)


def _split(url: str, protocol: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1] if "://" in url else url
    bucket, _, prefix = rest.rstrip("/").partition("/")
    if not bucket:
        raise UsageError(f"storage URL {url!r} names no bucket: use {protocol}://bucket/prefix")
    prefix = prefix.strip("/")
    if prefix:
        check_key(prefix)
    return bucket, prefix


def _is_precondition_failure(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return "412" in text or "PreconditionFailed" in text or "conditionNotMet" in text
