"""Datasets: chunked, gzipped JSON lines with SHA1 checksums and lineage, in any storage.

Files and checksums follow Hypergol 0.2.1 exactly (see ``format``). What differs is how they
are written and read:

- Publishing is atomic. Chunks are written under temporary names (``staging``); a writer then
  takes the dataset's publish claim (``publish``) before anything under a final name is
  touched, so of two concurrent writers one publishes and the other fails cleanly
  (DatasetBusyError / DatasetExistsError) without altering the winner's files. The holder
  promotes its chunks, writes the random-access index, the ``.def`` and last the ``.chk``; a
  dataset exists only once its ``.chk`` does. A writer that raises, is interrupted or killed
  publishes nothing, and the same write can simply be run again (a dead writer's claim is
  taken over).
- Readers verify each chunk's SHA1 while decompressing it and raise DatasetCorruptError
  naming the file on a mismatch, a truncated or missing chunk.
- Writers buffer lines per chunk in memory and spill compressed gzip members, one file open
  at a time, so 4096 chunks need neither 4096 open files nor 4096 compressor states.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..context import maybe_context
from ..errors import NotFoundError
from ..storage import Storage, resolve_storage
from . import format as fmt
from .deflate import gzip_member
from .errors import (
    DatasetCorruptError,
    DatasetError,
    DatasetNotClosedError,
    DatasetNotFoundError,
    DatasetUsageError,
)
from .index import remember_written
from .publish import Publisher, published_error
from .staging import Staging

if TYPE_CHECKING:
    from .model import BaseData


@dataclass(frozen=True)
class Header:
    """A published dataset's .chk (its text and its map) and .def, checked (``read_header``)."""

    chk_text: str
    chk: dict[str, str]
    definition: dict[str, Any]

    @property
    def checksum(self) -> str:
        return fmt.sha1_text(self.chk_text)


# Uncompressed bytes a writer buffers before spilling every chunk (a ChunkWriter: its chunk).
BUFFER_BYTES = 64 << 20
CHUNK_FLUSH_BYTES = 8 << 20


class Dataset:
    """A dataset of ``dataType`` objects at ``<location>/<project>/<branch>/<name>/``.

    ``location`` is a local path, a storage URL (``gs://b/p``, ``s3://b/p``) or a Storage; left
    out, it is the running op's bucket root (or ``$HML_ROOT``, default ``.hml``).

    Versions (see ``versions``): written inside a pipeline op, a dataset gets a new version
    (``versioned=None``, the default; ``True`` always, ``False`` never); read by name, it is the
    version this run wrote, else the newest, else the plain dataset. ``name="wines@VERSION"``
    or ``version="VERSION"`` picks one version.
    """

    def __init__(
        self,
        dataType: type[BaseData],
        location: str | os.PathLike[str] | Storage | None = None,
        project: str = "default",
        branch: str = "main",
        name: str | None = None,
        repoData: dict[str, Any] | Any | None = None,
        chunkCount: int = 16,
        *,
        storage: Storage | None = None,
        compresslevel: int = fmt.GZIP_LEVEL,
        version: str | None = None,
        versioned: bool | None = None,
    ) -> None:
        from .model import BaseData
        from .versions import split_ref

        if not (isinstance(dataType, type) and issubclass(dataType, BaseData)):
            raise DatasetUsageError(f"dataType must be a BaseData subclass, not {dataType!r}")
        self.dataType = dataType
        self.project = fmt.check_dataset_name(project, "project")
        name, in_name = split_ref(name or "")
        branch, in_branch = split_ref(branch)
        given = {v for v in (version, in_name, in_branch) if v is not None}
        if len(given) > 1:
            raise DatasetUsageError(
                f"dataset {name!r} names two versions ({', '.join(sorted(given))}); give one"
            )
        self.branch = fmt.check_dataset_name(branch, "branch")
        self.name = fmt.check_dataset_name(name, "dataset")
        self.version = fmt.check_dataset_name(given.pop(), "version") if given else None
        self.versioned = True if self.version is not None else versioned
        self.chunkCount = fmt.check_chunk_count(chunkCount)
        self.repoData = repoData
        self.compresslevel = compresslevel
        self._location = storage if storage is not None else location
        self._storage: Storage | None = None
        self._dependencies: list[Dataset] = []

    # -- where --------------------------------------------------------------------------------
    @property
    def storage(self) -> Storage:
        if self._storage is None:
            self._storage = _resolve_storage(self._location)
        return self._storage

    @property
    def directory(self) -> str:
        """The dataset's key prefix in its storage (of the version a read sees now)."""
        version = self.resolved_version()
        branch = f"{self.branch}@{version}" if version else self.branch
        return f"{self.project}/{branch}/{self.name}"

    @property
    def ref(self) -> str:
        """``name@version`` of the version a read sees now (the name alone for a plain one)."""
        version = self.resolved_version()
        return f"{self.name}@{version}" if version else self.name

    @property
    def pinned_version(self) -> bool:
        """True when no lookup decides which files this object means."""
        return self.version is not None or self.versioned is False

    def resolved_version(self) -> str | None:
        """The version reads see now: the given one, else this run's, the newest, or None
        (the plain dataset)."""
        if self.pinned_version:
            return self.version
        from .versions import resolve_read

        return resolve_read(self)

    def with_version(self, version: str | None) -> Dataset:
        """The same dataset at ``version`` (None: the plain one); shares the declared lineage."""
        pinned = copy.copy(self)
        pinned.version = fmt.check_dataset_name(version, "version") if version else None
        pinned.versioned = version is not None
        return pinned

    def pinned(self) -> Dataset:
        """This dataset with the version reads see now fixed: later lookups cannot move it."""
        return self if self.pinned_version else self.with_version(self.resolved_version())

    def for_write(self, token: str | None = None) -> Dataset:
        """Where a new write goes: the given version, else a new one inside a pipeline op (or
        with ``versioned=True``), else the plain dataset. With ``token`` (chunk jobs that each
        make a writer) the new version is derived from it, so every job agrees."""
        if self.pinned_version:
            return self
        from .versions import new_version, version_for_token

        ctx = maybe_context()
        if not (self.versioned or ctx is not None):
            return self.with_version(None)
        if token is None:
            return self.with_version(new_version())
        return self.with_version(version_for_token(token, ctx.run_id if ctx else ""))

    def key(self, file_name: str) -> str:
        return f"{self.directory}/{file_name}"

    @property
    def def_key(self) -> str:
        return self.key(fmt.def_file_name(self.name))

    @property
    def chk_key(self) -> str:
        return self.key(fmt.chk_file_name(self.name))

    def chunk_key(self, chunk_id: str) -> str:
        return self.key(fmt.chunk_file_name(self.name, chunk_id))

    def chunk_ids(self) -> list[str]:
        return fmt.chunk_ids(self.chunkCount)

    def chunk_id_of(self, obj: BaseData) -> str:
        return fmt.chunk_id_of(obj.get_hash_id(), self.chunkCount)

    def __repr__(self) -> str:
        where = f"{self.project}/{self.branch}/{self.name}"
        if self.version:
            where += f"@{self.version}"
        return f"Dataset({self.dataType.__name__}, {self.storage.url}/{where})"

    # -- state --------------------------------------------------------------------------------
    def exists(self) -> bool:
        """True once published (its .chk is in place)."""
        return self.storage.exists(self.chk_key)

    def chk_text(self) -> str:
        try:
            return self._read_file(self.chk_key)
        except NotFoundError as exc:
            if self._has_leftovers():
                raise DatasetNotClosedError(
                    f"dataset {self.storage.url}/{self.directory} was never closed (it has no "
                    f"{fmt.chk_file_name(self.name)}): its writer raised, was killed or did not "
                    "call close(). Run the write again; it replaces the leftovers"
                ) from exc
            raise DatasetNotFoundError(
                f"dataset {self.storage.url}/{self.directory} does not exist"
            ) from exc

    @property
    def checksum(self) -> str:
        """SHA1 of the .chk text: one hash for the content and the whole lineage."""
        return fmt.sha1_text(self.chk_text())

    def read_chk(self) -> dict[str, str]:
        if not self.pinned_version:
            return self.pinned().read_chk()
        return fmt.parse_chk(self.chk_text(), self._where(self.chk_key))

    def read_def(self) -> dict[str, Any]:
        """The .def of the published dataset (checked against the .chk)."""
        return self.read_header().definition

    def read_header(self) -> Header:
        """The .chk and the .def, checked as every read checks them before any chunk: the .chk
        a JSON map of file names to SHA1s, the .def present, matching its SHA1 in the .chk, and
        a JSON object with well-typed fields. DatasetCorruptError names the file otherwise."""
        if not self.pinned_version:
            return self.pinned().read_header()
        chk_text = self.chk_text()
        chk = fmt.parse_chk(chk_text, self._where(self.chk_key))
        definition = fmt.parse_def(self._read_def_text(chk), self._where(self.def_key))
        return Header(chk_text, chk, definition)

    def _read_def_text(self, chk: dict[str, str]) -> str:
        try:
            text = self._read_file(self.def_key)
        except NotFoundError as exc:
            raise DatasetCorruptError(
                f"{self._where(self.def_key)} is missing: {fmt.REWRITE}"
            ) from exc
        if chk.get(fmt.def_file_name(self.name)) != fmt.sha1_text(text):
            raise fmt.def_mismatch(text, self._where(self.def_key), "the .chk")
        return text

    def _read_file(self, key: str) -> str:
        """The text of one of the dataset's files (NotFoundError when it is absent); a directory
        in its place, or bytes that are not UTF-8, are DatasetCorruptError naming it."""
        try:
            return self.storage.read_text(key)
        except IsADirectoryError as exc:
            raise DatasetCorruptError(
                f"{self._where(key)} is a directory, not a file: {fmt.REWRITE}"
            ) from exc
        except UnicodeDecodeError as exc:
            raise DatasetCorruptError(
                f"{self._where(key)} is not UTF-8 text ({exc}): {fmt.REWRITE}"
            ) from exc

    def dependency_record(self) -> dict[str, Any]:
        """What a dataset made from this one embeds: this .def plus ``chkFileChecksum``."""
        header = self.read_header()
        return {**header.definition, "chkFileChecksum": header.checksum}

    def add_dependency(self, dataset: Dataset) -> None:
        """Record ``dataset`` (published) in this one's lineage when it is written."""
        if not isinstance(dataset, Dataset):
            raise DatasetUsageError(f"add_dependency expects a Dataset, not {dataset!r}")
        dataset = dataset.pinned()  # the version it is now, whatever is written later
        if not dataset.exists():
            raise DatasetUsageError(
                f"cannot depend on {dataset!r}: it is not published (write and close it first)"
            )
        self._dependencies.append(dataset)

    def delete(self) -> None:
        """Remove the dataset's files (the .chk first, so it stops existing at once): the
        version a read sees now, or the plain dataset."""
        from .versions import forget

        target = self.pinned()
        target.storage.delete(target.chk_key)
        target.storage.delete_prefix(target.directory)
        target._remove_local_leftovers(all_files=True)
        forget(target, target.version)

    # -- open -----------------------------------------------------------------------------------
    def open(self, mode: str = "r", **options: Any) -> DatasetReader | DatasetWriter:
        if mode == "w":
            return DatasetWriter(self, **options)
        if mode == "r":
            return DatasetReader(self.pinned(), **options)
        raise DatasetUsageError(f"invalid mode {mode!r} for {self!r}: use 'r' or 'w'")

    def __iter__(self) -> Iterator[Any]:
        return iter(DatasetReader(self.pinned()))

    def read_chunk(self, chunk_id: str) -> Iterator[Any]:
        """The objects of one chunk, verified (for one job per chunk)."""
        return DatasetReader(self.pinned()).read_chunk(chunk_id)

    def stream(self, **options: Any) -> Any:
        """A training stream (shuffle, shards, resume, prefetch): see ``hypermodel.data.stream``."""
        from .stream import stream

        return stream(self.pinned(), **options)

    def chunk_writer(self, chunk_id: str, token: str, **options: Any) -> ChunkWriter:
        """A writer of one chunk (one job per chunk); publish all chunks with ``publish``."""
        return ChunkWriter(self.for_write(token), chunk_id, token, **options)

    def publish(
        self,
        checksums: dict[str, str],
        token: str,
        creation_time: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> str:
        """Publish chunks written by ``chunk_writer(..., token)``: ``checksums`` maps every chunk
        id to the SHA1 its ChunkWriter returned. Returns the dataset checksum. Raises
        DatasetBusyError when another writer is publishing this dataset, DatasetExistsError
        when it is published; either way nothing of this write is published."""
        target = self.for_write(token)
        publisher = Publisher(target, token, creation_time, meta)
        return publisher.publish(checksums, Staging(target, token))

    def verify(self) -> dict[str, int]:
        """Read every chunk and check every checksum; the object count per chunk."""
        reader = DatasetReader(self.pinned(), record_input=False)
        return {cid: reader.count_chunk(cid) for cid in self.chunk_ids()}

    # -- helpers --------------------------------------------------------------------------------
    def _where(self, key: str) -> str:
        return f"{self.storage.url}/{key}"

    def _local_dir(self) -> str | None:
        path = self.storage.local_path(self.def_key)
        return os.path.dirname(path) if path else None

    def _has_leftovers(self) -> bool:
        local = self._local_dir()
        if local is not None:
            return os.path.isdir(local) and bool(os.listdir(local))
        return any(True for _ in self.storage.list(self.directory))

    def _remove_local_leftovers(self, all_files: bool = False) -> None:
        """Remove temporary files left by writers that died (local disk only)."""
        local = self._local_dir()
        if local is None or not os.path.isdir(local):
            return
        prefix = f".{self.name}_"
        for entry in os.listdir(local):
            if all_files or (entry.startswith(prefix) and entry.endswith(".tmp")):
                try:
                    os.unlink(os.path.join(local, entry))
                except FileNotFoundError:
                    pass
        if all_files:
            try:
                os.rmdir(local)
            except OSError:
                pass


def _resolve_storage(location: Any) -> Storage:
    return resolve_storage(location)


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
    ) -> None:
        """``creation_time`` (ISO 8601) is the ``.def``'s ``creationTime``; now by default.
        ``meta`` goes into the version registry entry (a task's token and code digest)."""
        dataset = dataset.for_write()
        self.dataset = dataset
        if dataset.exists():
            raise published_error(dataset)
        self.token = uuid.uuid4().hex[:16]
        # lineage is taken (and a dirty repository refused) now, before anything is written
        self._publisher = Publisher(dataset, self.token, creation_time, meta)
        # on a bucket the chunks go straight to their final keys, under the publish claim
        self._staging = Staging(dataset, self.token, direct=True)
        self._ids = dataset.chunk_ids()
        self._chunks = [_ChunkSpill(self._staging.staged_path(cid)) for cid in self._ids]
        self._lines: list[list[str]] = [[] for _ in self._ids]
        self._type = dataset.dataType
        self._buffer_bytes = buffer_bytes
        self._buffered = 0
        self._closed = False
        self.count = 0
        self.checksum: str | None = None
        self.append, self._seal, self._charge, self._reset = self._make_append()

    def _make_append(self) -> tuple[Any, ...]:
        """The append function: a closure over the writer's state, because it runs once per
        object and attribute lookups are most of its cost."""
        from .model import appender_for

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
                    else json.dumps(obj.to_data(), sort_keys=True) + "\n"
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
            if writer._buffered >= writer._buffer_bytes:
                writer._spill_all()

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

    def _spill_all(self) -> None:
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
        self._staging = Staging(dataset, token)
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


from .reader import DatasetReader  # noqa: E402 - re-exported; the reader needs no Dataset at import
