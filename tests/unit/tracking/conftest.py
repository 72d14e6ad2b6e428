"""Fixtures for the tracking tests: a local bucket, a fixed author, and storages that fail."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from hypermodel.errors import StorageError
from hypermodel.storage import Storage
from hypermodel.storage.local import LocalStorage


@pytest.fixture(autouse=True)
def _author(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HML_AUTHOR", "alice@example.org")


@pytest.fixture
def storage(hml_root: Path) -> LocalStorage:
    return LocalStorage(hml_root)


class FlakyStorage(Storage):
    """A local bucket that can be switched to fail (or hang) on every call, like a dead S3."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.url = "s3://flaky-bucket/prefix"
        self.failing = False
        self.hang = 0.0
        self.lock = threading.Lock()
        self.failed_calls = 0

    def _check(self) -> None:
        if self.hang:
            time.sleep(self.hang)
        if self.failing:
            with self.lock:
                self.failed_calls += 1
            raise StorageError("connection refused (simulated)")

    def read_bytes(self, key: str) -> bytes:
        self._check()
        return self.inner.read_bytes(key)

    def write_bytes(self, key: str, data: bytes) -> None:
        self._check()
        self.inner.write_bytes(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._check()
        return self.inner.put_if_absent(key, data)

    def exists(self, key: str) -> bool:
        self._check()
        return self.inner.exists(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        self._check()
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self._check()
        self.inner.delete(key)

    def open_read(self, key: str) -> IO[bytes]:
        self._check()
        return self.inner.open_read(key)

    def size(self, key: str) -> int:
        self._check()
        return self.inner.size(key)


@pytest.fixture
def flaky(storage: LocalStorage) -> FlakyStorage:
    return FlakyStorage(storage)
