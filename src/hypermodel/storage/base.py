"""The storage interface: a few primitives every backend implements, everything else built on them."""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from typing import IO

from ..errors import UnsafeNameError, UsageError

#: seconds a connection to a bucket's endpoint may take before the bucket counts as
#: unreachable (``$HML_CONNECT_TIMEOUT``)
CONNECT_TIMEOUT = 2.0


def connect_timeout(value: float | None = None) -> float:
    """``value``, else ``$HML_CONNECT_TIMEOUT``, else 2 seconds."""
    if value is not None:
        return float(value)
    text = os.environ.get("HML_CONNECT_TIMEOUT", "").strip()
    try:
        return float(text) if text else CONNECT_TIMEOUT
    except ValueError:
        raise UsageError(
            f"$HML_CONNECT_TIMEOUT is {text!r}, not a number of seconds (e.g. 2 or 0.5)"
        ) from None


def check_key(key: str) -> str:
    """A key is a relative '/'-separated path that never escapes the storage root."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise UnsafeNameError(f"storage key {key!r} is not a relative path under the root")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafeNameError(f"storage key {key!r} has an empty, '.' or '..' component")
    return key


class Storage(abc.ABC):
    """A bucket root. Keys are relative paths; writes of whole objects are atomic."""

    url: str

    # -- primitives -------------------------------------------------------------------------
    @abc.abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """Return the object's bytes; raise NotFoundError if absent."""

    @abc.abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Create or replace the object atomically (readers see old or new, never half)."""

    @abc.abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object only if it does not exist; True if this call created it."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix`` (a directory-like prefix), recursively, sorted."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object if present (no error when absent)."""

    @abc.abstractmethod
    def open_read(self, key: str) -> IO[bytes]:
        """A binary stream of the object; raise NotFoundError if absent."""

    @abc.abstractmethod
    def size(self, key: str) -> int: ...

    # -- built on the primitives --------------------------------------------------------------
    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def write_text(self, key: str, text: str) -> None:
        self.write_bytes(key, text.encode("utf-8"))

    def delete_prefix(self, prefix: str) -> None:
        for key in list(self.list(prefix)):
            self.delete(key)

    def copy(self, src: str, dst: str) -> None:
        """Create or replace ``dst`` with ``src``'s bytes; NotFoundError if ``src`` is absent.
        Buckets override it with a copy inside the store (nothing downloaded)."""
        self.write_bytes(dst, self.read_bytes(src))

    def local_path(self, key: str) -> str | None:
        """A local filesystem path for the key, when the backend is on local disk."""
        return None

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer at the end); buckets override it with one
        ranged GET, so random access never downloads the rest of the object."""
        with self.open_read(key) as stream:
            stream.seek(start)
            return stream.read(length)

    def unreachable(self, timeout: float) -> str | None:
        """Why the bucket cannot be reached now (its endpoint refuses, or does not answer a
        connection within ``timeout`` seconds), or None when it can or cannot be told. A fast
        check before a write that would otherwise spend its client's retries on a dead
        endpoint; local disks are always reachable."""
        return None

    def join(self, *parts: str) -> str:
        return check_key("/".join(p.strip("/") for p in parts if p))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
