"""Helpers shared by dataset tests: a storage counting what streams read, a storage holding a
publisher inside its publish window, writing a dataset through per-chunk jobs as a task's
workers do, and killing a writer process at a chosen moment."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

from hypermodel.data.dataset import Dataset
from hypermodel.storage import Storage
from hypermodel.storage.local import LocalStorage


class CountingStorage(LocalStorage):
    """Counts the bytes read through ``open_read`` (how streams read chunk members): a remote
    read must not download whole chunks."""

    read = 0

    def open_read(self, key: str) -> IO[bytes]:
        inner = super().open_read(key)
        owner = self

        class Counted:
            def __enter__(self) -> Counted:
                return self

            def __exit__(self, *exc: object) -> None:
                inner.close()

            def seek(self, offset: int) -> int:
                return inner.seek(offset)

            def read(self, n: int = -1) -> bytes:
                data = inner.read(n)
                owner.read += len(data)
                return data

        return Counted()  # type: ignore[return-value]


def write_by_chunk_jobs(
    ds: Dataset, objs: list[Any], token: str, flush_bytes: int
) -> dict[str, str]:
    """Each chunk written by its own chunk writer (token-scoped), flushing every
    ``flush_bytes``; the chunk checksums, for ``ds.publish``."""
    sums = {}
    for cid in ds.chunk_ids():
        with ds.chunk_writer(cid, token=token, chunk_flush_bytes=flush_bytes) as writer:
            for obj in objs:
                if ds.chunk_id_of(obj) == cid:
                    writer.append(obj)
        sums[cid] = writer.close()
    return sums


class PublishGate(Storage):
    """Any backend, holding the thread named ``held`` just before it writes a .def (inside the
    publish window: its chunks are under their final names) until ``release`` is set."""

    def __init__(self, inner: Storage, held: str) -> None:
        self.inner, self.held, self.url = inner, held, inner.url
        self.inside, self.release = threading.Event(), threading.Event()

    def write_bytes(self, key: str, data: bytes) -> None:
        if key.endswith(".def") and threading.current_thread().name == self.held:
            self.inside.set()
            assert self.release.wait(60), "the test never released the held writer"
        self.inner.write_bytes(key, data)

    def read_bytes(self, key: str) -> bytes:
        return self.inner.read_bytes(key)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.inner.put_if_absent(key, data)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def open_read(self, key: str) -> IO[bytes]:
        return self.inner.open_read(key)

    def size(self, key: str) -> int:
        return self.inner.size(key)

    def copy(self, src: str, dst: str) -> None:
        self.inner.copy(src, dst)

    def local_path(self, key: str) -> str | None:
        return self.inner.local_path(key)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        return self.inner.read_range(key, start, length)


def hold(gate: PublishGate, fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` on the held thread until it is inside the window; its outcome in the dict."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = fn()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=gate.held)
    thread.start()
    assert gate.inside.wait(60), f"{gate.held} never reached the .def: {outcome}"
    return thread, outcome


def kill_when(script: str, marker: bytes) -> None:
    """Run ``script`` in a new interpreter and SIGKILL it as soon as it prints ``marker``."""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == marker
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
