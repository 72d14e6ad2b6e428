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
import socket
import sys
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass

from .._lazy import require
from ..errors import NotFoundError, StorageError, UsageError
from .base import Storage, check_key


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a bucket client raises for a failed request besides OSError (botocore's
    own, e.g. EndpointConnectionError), so they become one-line StorageErrors."""
    errors: tuple[type[BaseException], ...] = (OSError,)
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None:
        errors += (botocore.BotoCoreError, botocore.ClientError)
    return errors


def _short(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 300 else text[:299] + "…"


class FsspecStorage(Storage):
    """A bucket prefix on an fsspec filesystem; subclasses build the filesystem."""

    protocol = ""
    #: the endpoint the client talks to when it is known (an emulator's, MinIO's, GCS's)
    endpoint: str | None = None

    def __init__(self, url: str, fs: Any) -> None:
        bucket, prefix = _split(url, self.protocol)
        self.bucket = bucket
        self.prefix = prefix
        self.url = f"{self.protocol}://{bucket}" + (f"/{prefix}" if prefix else "")
        self.fs = fs

    def unreachable(self, timeout: float) -> str | None:
        """One TCP connection to the endpoint, bounded by ``timeout``: a refused or unanswered
        connection is told in milliseconds instead of after the client's retries. Not checked
        (None) when the endpoint is not known here or a proxy stands in between."""
        if not self.endpoint:
            return None
        parts = urlsplit(self.endpoint if "://" in self.endpoint else f"http://{self.endpoint}")
        host = parts.hostname
        if not host:
            return None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme in getproxies_environment() and not proxy_bypass(host):
            return None  # the client connects to the proxy, not to the endpoint
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return None
        except socket.gaierror as exc:
            return f"cannot resolve {host} ({exc.strerror or exc})"
        except TimeoutError:
            return f"{host}:{port} did not answer within {timeout:g}s"
        except OSError as exc:
            return f"cannot connect to {host}:{port} ({exc.strerror or exc})"

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
        except _transport_errors() as exc:
            raise StorageError(f"cannot read {self.url}/{key}: {_short(exc)}") from exc

    def write_bytes(self, key: str, data: bytes) -> None:
        try:
            self.fs.pipe_file(self._path(key), data)
        except _transport_errors() as exc:
            raise StorageError(f"cannot write {self.url}/{key}: {_short(exc)}") from exc

    def put_if_absent(self, key: str, data: bytes) -> bool:
        try:
            self.fs.pipe_file(self._path(key), data, mode="create")
        except FileExistsError:
            return False
        except _transport_errors() as exc:
            if _is_precondition_failure(exc):
                return False
            raise StorageError(f"cannot create {self.url}/{key}: {_short(exc)}") from exc
        return True

    def copy(self, src: str, dst: str) -> None:
        try:
            self.fs.copy(self._path(src), self._path(dst))  # GCS rewrite / S3 CopyObject
        except FileNotFoundError as exc:
            raise NotFoundError(f"{self.url}/{src} does not exist") from exc
        except _transport_errors() as exc:
            raise StorageError(f"cannot copy {self.url}/{src} to {dst}: {_short(exc)}") from exc

    def exists(self, key: str) -> bool:
        path = self._path(key)
        self.fs.invalidate_cache(path)
        try:
            return bool(self.fs.isfile(path))
        except _transport_errors() as exc:
            raise StorageError(f"cannot look up {self.url}/{key}: {_short(exc)}") from exc

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self._root()
        where = f"{base}/{check_key(prefix)}" if prefix else base
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(where)
        except FileNotFoundError:
            return iter(())
        except _transport_errors() as exc:
            raise StorageError(f"cannot list {self.url}/{prefix}: {_short(exc)}") from exc
        start = len(base) + 1
        return iter(sorted(p[start:] for p in found if p.startswith(base + "/")))

    def delete(self, key: str) -> None:
        try:
            self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            pass
        except _transport_errors() as exc:
            raise StorageError(f"cannot delete {self.url}/{key}: {_short(exc)}") from exc

    def open_read(self, key: str) -> IO[bytes]:
        try:
            return self.fs.open(self._path(key), "rb")  # type: ignore[no-any-return]
        except FileNotFoundError as exc:
            raise NotFoundError(f"{self.url}/{key} does not exist") from exc
        except _transport_errors() as exc:
            raise StorageError(f"cannot read {self.url}/{key}: {_short(exc)}") from exc

    def read_range(self, key: str, start: int, length: int) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._path(key), start=start, end=start + length))
        except FileNotFoundError as exc:
            raise NotFoundError(f"{self.url}/{key} does not exist") from exc
        except _transport_errors() as exc:
            raise StorageError(f"cannot read {self.url}/{key}: {_short(exc)}") from exc

    def size(self, key: str) -> int:
        try:
            return int(self.fs.size(self._path(key)))
        except FileNotFoundError as exc:
            raise NotFoundError(f"{self.url}/{key} does not exist") from exc
        except _transport_errors() as exc:
            raise StorageError(f"cannot look up {self.url}/{key}: {_short(exc)}") from exc


class GCSStorage(FsspecStorage):
    """``gs://bucket/prefix``. Options go to ``gcsfs.GCSFileSystem`` (``project``, ``token``,
    ``endpoint_url``...). With ``STORAGE_EMULATOR_HOST`` set (fake-gcs-server), that endpoint
    is used anonymously."""

    protocol = "gs"

    def __init__(self, url: str, endpoint_url: str | None = None, **options: Any) -> None:
        gcsfs = require("gcsfs", "gcs", "Google Cloud Storage (gs://) access")
        filesystem = gcsfs.GCSFileSystem
        endpoint = endpoint_url or os.environ.get("STORAGE_EMULATOR_HOST") or None
        self.endpoint = endpoint or "https://storage.googleapis.com"  # what gcsfs talks to
        if endpoint:
            if "://" not in endpoint:
                endpoint = f"http://{endpoint}"
            self.endpoint = endpoint
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
        # AWS's own endpoint depends on the region botocore resolves: only a configured
        # endpoint (MinIO, an emulator) is checked before a write
        self.endpoint = endpoint or None
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
