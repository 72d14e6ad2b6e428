"""Helpers shared by dataset tests: a storage counting what streams read, and writing a dataset
through per-chunk jobs as a task's workers do."""

from __future__ import annotations

from typing import IO, Any

from hypermodel.data.dataset import Dataset
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
