"""Writing datasets: objects buffered per chunk, spilled as gzip members, then published.

Writers buffer lines per chunk in memory and spill compressed gzip members, one file open at a
time, so 4096 chunks need neither 4096 open files nor 4096 compressor states. ``close()``
stages the chunks (``staging``) and publishes them under the dataset's claim (``publish``); an
exception publishes nothing.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import TYPE_CHECKING, Any

from .. import format as fmt
from ..deflate import gzip_member
from ..errors import DatasetError, DatasetUsageError
from .index import remember_written
from .publish import Publisher, published_error
from .staging import Staging

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..model import BaseData

# Uncompressed bytes a writer buffers before spilling every chunk (a ChunkWriter: its chunk).
BUFFER_BYTES = 64 << 20
CHUNK_FLUSH_BYTES = 8 << 20


# -- writing ------------------------------------------------------------------------------------
class _ChunkSpill:
    """Lines of one chunk: buffered, hashed, and spilled as gzip members (one open file at a
    time). ``layout`` records each member written, ``(compressed length, records)``: what the
    index of the published dataset is made of, known without reading the chunk again."""

    __slots__ = ("digests", "hasher", "layout", "lines", "path", "size", "spill")

    def __init__(self, path: str | None) -> None:
        self.lines: list[str] = []
        self.size = 0
        self.hasher = hashlib.sha1()
        self.path = path  # the staged file on local disk, else None (spill to a temp file)
        self.spill: str | None = None
        self.layout: list[tuple[int, int]] = []
        self.digests: list[bytes] = []  # SHA1 of each member's compressed bytes

    def flush(self, level: int, temp_dir: Any, records: int) -> None:
        """Compress the buffered lines (``records`` of them) as one more member."""
        data = "".join(self.lines).encode("utf-8")
        self.lines = []
        self.size = 0
        self.hasher.update(data)
        member = gzip_member(data, level)
        self.layout.append((len(member), records))
        self.digests.append(hashlib.sha1(member).digest())
        target = self.path
        if target is None:
            if self.spill is None:
                self.spill = os.path.join(temp_dir(), f"{id(self):x}.gz")
            target = self.spill
        with open(target, "ab") as fh:
            fh.write(member)

    def finish(self, level: int, temp_dir: Any, records: int) -> tuple[str, bytes | None]:
        """Flush what is left (``records`` lines); the SHA1 and, when not on local disk, the
        whole compressed file."""
        if self.path is not None:
            if self.lines or not self.layout:
                self.flush(level, temp_dir, records)
            return self.hasher.hexdigest(), None
        data = "".join(self.lines).encode("utf-8")
        self.lines = []
        self.hasher.update(data)
        body = b""
        if self.spill is not None:
            with open(self.spill, "rb") as fh:
                body = fh.read()
            os.unlink(self.spill)
        if data or not body:
            member = gzip_member(data, level)
            self.layout.append((len(member), records))
            self.digests.append(hashlib.sha1(member).digest())
            body += member
        return self.hasher.hexdigest(), body


def _finish_local(
    ids: list[str], chunks: list[_ChunkSpill], counts: list[int], level: int, temp_dir: Any
) -> dict[str, str]:
    """Compress, hash and write the last pieces of every chunk on local disk, on two threads:
    deflate, SHA1 and file writes release the GIL, and chunks are independent."""
    if len(ids) < 2:
        return {
            cid: chunk.finish(level, temp_dir, n)[0]
            for cid, chunk, n in zip(ids, chunks, counts, strict=True)
        }
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="hml-chunk") as pool:
        sums = list(pool.map(lambda chunk, n: chunk.finish(level, temp_dir, n)[0], chunks, counts))
    return dict(zip(ids, sums, strict=True))


class _Uploads:
    """Chunk uploads to a bucket run on a few threads (a bucket PUT is mostly waiting) while the
    next chunk compresses; at most ``limit`` compressed chunks are held at once."""

    def __init__(self, staging: Staging, limit: int = 8) -> None:
        self.staging = staging
        self.limit = limit
        self.pool: Any = None
        self.pending: list[Any] = []

    def store(self, chunk_id: str, body: bytes | None) -> None:
        if body is None:  # local disk: already in place
            return
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=self.limit, thread_name_prefix="hml-upload")
        self.pending.append(self.pool.submit(self.staging.store, chunk_id, body))
        if len(self.pending) >= self.limit:
            self.pending.pop(0).result()

    def __enter__(self) -> _Uploads:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is None:
            return
        try:
            for future in self.pending:
                future.result()  # the first failed upload raises here
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _nothing() -> None:
    return None


class DatasetWriter:
    """Appends objects to their chunks; ``close()`` publishes, an exception publishes nothing."""

    def __init__(
        self,
        dataset: Dataset,
        buffer_bytes: int = BUFFER_BYTES,
        creation_time: str | None = None,
        meta: dict[str, Any] | None = None,
        dependencies: list[Dataset] | None = None,
    ) -> None:
        """``creation_time`` (ISO 8601) is the ``.def``'s ``creationTime``; now by default.
        ``meta`` goes into the version registry entry (a task's token and code digest).
        ``dependencies``: the published datasets this one is made from (default: those added
        with ``Dataset.add_dependency``)."""
        dataset = dataset.for_write()
        self.dataset = dataset
        if dataset.exists():
            raise published_error(dataset)
        self.token = uuid.uuid4().hex[:16]
        # lineage is taken (and a dirty repository refused) now, before anything is written
        self._publisher = Publisher(dataset, self.token, creation_time, meta, dependencies)
        # on a bucket the chunks go straight to their final keys, under the publish claim
        self._staging = Staging(dataset.address, self.token, direct=True)
        self._ids = dataset.chunk_ids()
        self._chunks = [_ChunkSpill(self._staging.staged_path(cid)) for cid in self._ids]
        self._lines: list[list[str]] = [[] for _ in self._ids]
        self._type = dataset.dataType
        self.buffer_bytes = buffer_bytes  # read by the generated append
        self._buffered = 0
        self._closed = False
        self.count = 0
        self.checksum: str | None = None
        self.append, self._seal, self._charge, self._reset = self._make_append()

    def _make_append(self) -> tuple[Any, ...]:
        """The append function: a closure over the writer's state, because it runs once per
        object and attribute lookups are most of its cost."""
        from ..codegen import appender_for, dumps_sorted

        typ = self._type
        chunk_count = self.dataset.chunkCount
        generic_line = fmt.line_encoder(typ)
        lines = self._lines
        writer = self

        def append(obj: BaseData) -> None:
            """Add ``obj`` to its chunk (raises at once for a wrong type or id)."""
            if writer._closed:
                raise DatasetUsageError(f"append to {writer.dataset!r} after its writer was closed")
            try:
                writer._check_type(obj)
                index = fmt.chunk_index(obj.get_hash_id(), chunk_count)
                line = (
                    generic_line(obj)
                    if obj.__class__ is typ
                    else dumps_sorted(obj.to_data()) + "\n"
                )
            except DatasetError:
                raise
            except Exception as exc:
                raise DatasetUsageError(
                    f"cannot store {obj!r} in {writer.dataset!r}: {type(exc).__name__}: {exc}"
                ) from exc
            lines[index].append(line)
            writer._charge(len(line))

        def charge(n: int) -> None:
            writer._buffered += n
            if writer._buffered >= writer.buffer_bytes:
                writer.spill_all()

        def reset() -> None:
            writer._buffered = 0

        generated = appender_for(typ, chunk_count, lines, writer, append)
        return generated or (append, _nothing, charge, reset)

    def _check_type(self, obj: Any) -> None:
        if not isinstance(obj, self._type):
            raise DatasetUsageError(
                f"cannot append a {type(obj).__name__} to {self.dataset!r}, which holds "
                f"{self._type.__name__} objects"
            )

    def spill_all(self) -> None:
        """Compress every buffered line into its chunk (the generated append calls it)."""
        # one chunk file open at a time, whatever the chunk count
        level = self.dataset.compresslevel
        for chunk, lines in zip(self._chunks, self._lines, strict=True):
            if lines:
                chunk.lines = lines
                self.count += len(lines)
                chunk.flush(level, self._staging.temp_dir, len(lines))
        for i in range(len(self._lines)):
            self._lines[i] = []
        self._reset()

    def close(self) -> str:
        """Write the remaining chunks and publish; returns the dataset checksum."""
        if self._closed:
            if self.checksum is None:
                raise DatasetUsageError(f"the writer of {self.dataset!r} was aborted")
            return self.checksum
        self._closed = True
        self._seal()
        publisher = self._publisher
        try:
            publisher.begin()  # the publish claim, before anything under a final name
            checksums: dict[str, str] = {}
            level = self.dataset.compresslevel
            counts: list[int] = []
            for chunk, lines in zip(self._chunks, self._lines, strict=True):
                chunk.lines = lines
                counts.append(len(lines))
                self.count += len(lines)
            if self._staging.local_dir is not None:
                checksums = _finish_local(
                    self._ids, self._chunks, counts, level, self._staging.temp_dir
                )
            else:
                with _Uploads(self._staging) as uploads:
                    for cid, chunk, n in zip(self._ids, self._chunks, counts, strict=True):
                        checksums[cid], body = chunk.finish(level, self._staging.temp_dir, n)
                        uploads.store(cid, body)
            layouts = {cid: c.layout for cid, c in zip(self._ids, self._chunks, strict=True)}
            digests = {cid: c.digests for cid, c in zip(self._ids, self._chunks, strict=True)}
            self._chunks = []
            self.checksum = publisher.commit(checksums, self._staging, layouts)
            for cid in self._ids:  # reading back what this process wrote verifies nothing twice
                remember_written(self.dataset, cid, checksums[cid], layouts[cid], digests[cid])
        except BaseException:
            try:  # final keys this writer uploaded go too, unless someone else owns them now
                self._staging.discard(self._ids, finals=publisher.owns_final_names())
            finally:
                publisher.abort()
            raise
        return self.checksum

    def abort(self) -> None:
        """Drop everything written so far; nothing is published."""
        self._closed = True
        self._seal()
        self._chunks = []
        self._lines.clear()
        self._staging.discard(self._ids)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class ChunkWriter:
    """Writes one chunk of a dataset under a token; ``Dataset.publish`` makes them a dataset."""

    def __init__(
        self,
        dataset: Dataset,
        chunk_id: str,
        token: str,
        check_chunk: bool = True,
        chunk_flush_bytes: int = CHUNK_FLUSH_BYTES,
    ) -> None:
        if chunk_id not in dataset.chunk_ids():
            raise DatasetUsageError(f"{chunk_id!r} is not a chunk id of {dataset!r}")
        fmt.check_dataset_name(token, "writer token")
        self.dataset = dataset
        self.chunk_id = chunk_id
        self.check_chunk = check_chunk
        self._staging = Staging(dataset.address, token)
        self._chunk = _ChunkSpill(self._staging.staged_path(chunk_id))
        self._encode = fmt.line_encoder(dataset.dataType)
        self._flush = chunk_flush_bytes
        self.count = 0
        self._flushed = 0  # records already in flushed members
        self.checksum: str | None = None  # the chunk's SHA1 once closed

    def append(self, obj: BaseData) -> None:
        if not isinstance(obj, self.dataset.dataType):
            raise DatasetUsageError(
                f"cannot append a {type(obj).__name__} to {self.dataset!r}, which holds "
                f"{self.dataset.dataType.__name__} objects"
            )
        if self.check_chunk and self.dataset.chunk_id_of(obj) != self.chunk_id:
            raise DatasetUsageError(
                f"{obj!r} belongs to chunk {self.dataset.chunk_id_of(obj)}, not {self.chunk_id}"
            )
        self.write_line(self._encode(obj))

    def write_line(self, line: str) -> None:
        """Append an already encoded line (ending with a newline)."""
        self._chunk.lines.append(line)
        self._chunk.size += len(line)
        self.count += 1
        if self._chunk.size >= self._flush:
            self._flush_member()

    def write_lines(self, lines: list[str]) -> None:
        """Append already encoded lines, given *without* their newlines, in order (one call
        for a batch: what a task job writes)."""
        if not lines:
            return
        text = "\n".join(lines)
        chunk = self._chunk
        chunk.lines += (text, "\n")
        chunk.size += len(text) + 1
        self.count += len(lines)
        if chunk.size >= self._flush:
            self._flush_member()

    def _flush_member(self) -> None:
        self._chunk.flush(
            self.dataset.compresslevel, self._staging.temp_dir, self.count - self._flushed
        )
        self._flushed = self.count

    def close(self) -> str:
        """Store the chunk and its layout (not yet visible) and return its SHA1 for
        ``Dataset.publish``. Closing again returns the same SHA1 and stores nothing."""
        if self.checksum is not None:
            return self.checksum
        try:
            sha, body = self._chunk.finish(
                self.dataset.compresslevel, self._staging.temp_dir, self.count - self._flushed
            )
            self._flushed = self.count
            self._staging.store(self.chunk_id, body)
            self._staging.store_layout(self.chunk_id, self._chunk.layout)
        finally:
            self._staging.cleanup()
        self.checksum = sha
        return sha

    def abort(self) -> None:
        self._staging.discard([self.chunk_id])

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
