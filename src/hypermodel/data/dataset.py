"""Datasets: chunked, gzipped JSON lines with SHA1 checksums and lineage, in any storage.

Files and checksums follow Hypergol 0.2.1 exactly (see ``format``). What differs is how they
are written and read:

- Publishing is atomic. Chunks are written under temporary names (local disk) and the
  ``.def`` then the ``.chk`` are written last; a dataset exists only once its ``.chk`` does.
  A writer that raises, is interrupted or killed publishes nothing, and the same write can
  simply be run again.
- Readers verify each chunk's SHA1 while decompressing it and raise DatasetCorruptError
  naming the file on a mismatch, a truncated or missing chunk.
- Writers buffer lines per chunk in memory and spill compressed gzip members, one file open
  at a time, so 4096 chunks need neither 4096 open files nor 4096 compressor states.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..context import OpContext, maybe_context
from ..errors import NotFoundError
from ..storage import Storage, open_storage
from . import format as fmt
from .deflate import gzip_member
from .errors import (
    DatasetCorruptError,
    DatasetError,
    DatasetExistsError,
    DatasetNotClosedError,
    DatasetNotFoundError,
    DatasetUsageError,
)
from .lineage import check_clean_for_pipeline, repo_state

if TYPE_CHECKING:
    from .model import BaseData

# Uncompressed bytes a writer buffers before spilling every chunk (a ChunkWriter: its chunk).
BUFFER_BYTES = 64 << 20
CHUNK_FLUSH_BYTES = 8 << 20


class Dataset:
    """A dataset of ``dataType`` objects at ``<location>/<project>/<branch>/<name>/``.

    ``location`` is a local path, a storage URL (``gs://b/p``, ``s3://b/p``) or a Storage; left
    out, it is the running op's bucket root (or ``$HML_ROOT``, default ``.hml``).
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
    ) -> None:
        from .model import BaseData

        if not (isinstance(dataType, type) and issubclass(dataType, BaseData)):
            raise DatasetUsageError(f"dataType must be a BaseData subclass, not {dataType!r}")
        self.dataType = dataType
        self.project = fmt.check_dataset_name(project, "project")
        self.branch = fmt.check_dataset_name(branch, "branch")
        self.name = fmt.check_dataset_name(name or "", "dataset")
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
        """The dataset's key prefix in its storage."""
        return f"{self.project}/{self.branch}/{self.name}"

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
        return f"Dataset({self.dataType.__name__}, {self.storage.url}/{self.directory})"

    # -- state --------------------------------------------------------------------------------
    def exists(self) -> bool:
        """True once published (its .chk is in place)."""
        return self.storage.exists(self.chk_key)

    def chk_text(self) -> str:
        try:
            return self.storage.read_text(self.chk_key)
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
        text = self.chk_text()
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DatasetCorruptError(f"{self._where(self.chk_key)} is not valid JSON") from exc
        if not isinstance(data, dict):
            raise DatasetCorruptError(f"{self._where(self.chk_key)} is not a JSON object")
        return data

    def read_def(self) -> dict[str, Any]:
        """The .def of the published dataset (checked against the .chk)."""
        chk = self.read_chk()
        text = self._read_def_text(chk)
        return json.loads(text)  # type: ignore[no-any-return]

    def _read_def_text(self, chk: dict[str, str]) -> str:
        try:
            text = self.storage.read_text(self.def_key)
        except NotFoundError as exc:
            raise DatasetCorruptError(f"{self._where(self.def_key)} is missing") from exc
        if chk.get(fmt.def_file_name(self.name)) != fmt.sha1_text(text):
            raise DatasetCorruptError(
                f"{self._where(self.def_key)} does not match its checksum in the .chk"
            )
        return text

    def dependency_record(self) -> dict[str, Any]:
        """What a dataset made from this one embeds: this .def plus ``chkFileChecksum``."""
        chk_text = self.chk_text()
        record = json.loads(self._read_def_text(json.loads(chk_text)))
        record["chkFileChecksum"] = fmt.sha1_text(chk_text)
        return record  # type: ignore[no-any-return]

    def add_dependency(self, dataset: Dataset) -> None:
        """Record ``dataset`` (published) in this one's lineage when it is written."""
        if not isinstance(dataset, Dataset):
            raise DatasetUsageError(f"add_dependency expects a Dataset, not {dataset!r}")
        if not dataset.exists():
            raise DatasetUsageError(
                f"cannot depend on {dataset!r}: it is not published (write and close it first)"
            )
        self._dependencies.append(dataset)

    def delete(self) -> None:
        """Remove the dataset's files (the .chk first, so it stops existing at once)."""
        self.storage.delete(self.chk_key)
        self.storage.delete_prefix(self.directory)
        self._remove_local_leftovers(all_files=True)

    # -- open -----------------------------------------------------------------------------------
    def open(self, mode: str = "r", **options: Any) -> DatasetReader | DatasetWriter:
        if mode == "w":
            return DatasetWriter(self, **options)
        if mode == "r":
            return DatasetReader(self, **options)
        raise DatasetUsageError(f"invalid mode {mode!r} for {self!r}: use 'r' or 'w'")

    def __iter__(self) -> Iterator[Any]:
        return iter(DatasetReader(self))

    def read_chunk(self, chunk_id: str) -> Iterator[Any]:
        """The objects of one chunk, verified (for one job per chunk)."""
        return DatasetReader(self).read_chunk(chunk_id)

    def stream(self, **options: Any) -> Any:
        """A training stream (shuffle, shards, resume, prefetch): see ``hypermodel.data.stream``."""
        from .stream import stream

        return stream(self, **options)

    def chunk_writer(self, chunk_id: str, token: str, **options: Any) -> ChunkWriter:
        """A writer of one chunk (one job per chunk); publish all chunks with ``publish``."""
        return ChunkWriter(self, chunk_id, token, **options)

    def publish(
        self, checksums: dict[str, str], token: str, creation_time: str | None = None
    ) -> str:
        """Publish chunks written by ``chunk_writer(..., token)``: ``checksums`` maps every chunk
        id to the SHA1 its ChunkWriter returned. Returns the dataset checksum."""
        return _Publisher(self, token, creation_time).publish(checksums)

    def verify(self) -> dict[str, int]:
        """Read every chunk and check every checksum; the object count per chunk."""
        reader = DatasetReader(self, record_input=False)
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
    if isinstance(location, Storage):
        return location
    if location is None:
        ctx = maybe_context()
        if ctx is not None:
            return ctx.storage
        location = os.environ.get("HML_ROOT", ".hml")
    return open_storage(os.fspath(location))


# -- writing ------------------------------------------------------------------------------------
class _ChunkSpill:
    """Lines of one chunk: buffered, hashed, and spilled as gzip members (one open file at a time)."""

    __slots__ = ("hasher", "lines", "members", "path", "size", "spill")

    def __init__(self, path: str | None) -> None:
        self.lines: list[str] = []
        self.size = 0
        self.hasher = hashlib.sha1()
        self.path = path  # the staged file on local disk, else None (spill to a temp file)
        self.spill: str | None = None
        self.members = 0

    def flush(self, level: int, temp_dir: Any) -> None:
        data = "".join(self.lines).encode("utf-8")
        self.lines = []
        self.size = 0
        self.hasher.update(data)
        member = gzip_member(data, level)
        self.members += 1
        target = self.path
        if target is None:
            if self.spill is None:
                self.spill = os.path.join(temp_dir(), f"{id(self):x}.gz")
            target = self.spill
        with open(target, "ab") as fh:
            fh.write(member)

    def finish(self, level: int, temp_dir: Any) -> tuple[str, bytes | None]:
        """Flush what is left; the SHA1 and, when not on local disk, the whole compressed file."""
        if self.path is not None:
            if self.lines or self.members == 0:
                self.flush(level, temp_dir)
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
            body += gzip_member(data, level)
        return self.hasher.hexdigest(), body


class _Staging:
    """Where a writer puts chunks before publishing: temp names beside the final ones on local
    disk (renamed at publish), or the final names in a bucket (an object PUT is atomic and
    there is no rename; the .chk, written last, is what makes them a dataset)."""

    def __init__(self, dataset: Dataset, token: str) -> None:
        self.dataset = dataset
        self.token = token
        self.local_dir = dataset._local_dir()
        self._temp: str | None = None

    def staged_path(self, chunk_id: str) -> str | None:
        if self.local_dir is None:
            return None
        os.makedirs(self.local_dir, exist_ok=True)
        name = fmt.chunk_file_name(self.dataset.name, chunk_id)
        return os.path.join(self.local_dir, f".{name}.{self.token}.tmp")

    def temp_dir(self) -> str:
        if self._temp is None:
            import tempfile

            self._temp = tempfile.mkdtemp(prefix="hml-dataset-")
        return self._temp

    def store(self, chunk_id: str, body: bytes | None) -> None:
        if body is not None:
            self.dataset.storage.write_bytes(self.dataset.chunk_key(chunk_id), body)

    def promote(self, chunk_id: str) -> None:
        staged = self.staged_path(chunk_id)
        if staged is None:
            return
        final = self.dataset.storage.local_path(self.dataset.chunk_key(chunk_id))
        try:
            os.replace(staged, final)  # type: ignore[arg-type]
        except FileNotFoundError as exc:
            raise DatasetError(
                f"chunk {chunk_id} of {self.dataset!r} was not written under token {self.token!r}"
            ) from exc

    def discard(self, chunk_ids: list[str]) -> None:
        for cid in chunk_ids:
            staged = (
                self.staged_path(cid) if self.local_dir and os.path.isdir(self.local_dir) else None
            )
            if staged and os.path.exists(staged):
                os.unlink(staged)
        if self.local_dir is not None:
            try:
                os.rmdir(self.local_dir)  # only when empty: leave nothing behind an abort
            except OSError:
                pass
        self.cleanup()

    def cleanup(self) -> None:
        if self._temp is not None:
            import shutil

            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None


def _finish_local(
    ids: list[str], chunks: list[_ChunkSpill], level: int, temp_dir: Any
) -> dict[str, str]:
    """Compress, hash and write the last pieces of every chunk on local disk, on two threads:
    deflate, SHA1 and file writes release the GIL, and chunks are independent."""
    if len(ids) < 2:
        return {
            cid: chunk.finish(level, temp_dir)[0] for cid, chunk in zip(ids, chunks, strict=True)
        }
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="hml-chunk") as pool:
        sums = list(pool.map(lambda chunk: chunk.finish(level, temp_dir)[0], chunks))
    return dict(zip(ids, sums, strict=True))


class _Uploads:
    """Chunk uploads to a bucket run on a few threads (a bucket PUT is mostly waiting) while the
    next chunk compresses; at most ``limit`` compressed chunks are held at once."""

    def __init__(self, staging: _Staging, limit: int = 8) -> None:
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


class _Publisher:
    """Writes the .def then the .chk (last, create-if-absent): the commit point of a dataset."""

    def __init__(self, dataset: Dataset, token: str, creation_time: str | None) -> None:
        self.dataset = dataset
        self.token = token
        self.creation_time = creation_time or dt.datetime.now().isoformat()
        self.ctx = maybe_context()
        self.repo = _repo_record(dataset, self.ctx)

    def publish(self, checksums: dict[str, str]) -> str:
        ds = self.dataset
        missing = [cid for cid in ds.chunk_ids() if cid not in checksums]
        if missing:
            raise DatasetUsageError(
                f"cannot publish {ds!r}: no checksum for chunk(s) {', '.join(missing[:5])}"
            )
        if ds.exists():
            raise _exists_error(ds)
        staging = _Staging(ds, self.token)
        for cid in ds.chunk_ids():
            staging.promote(cid)
        def_text = fmt.dump_def(self._definition())
        chk = {fmt.chunk_file_name(ds.name, cid): checksums[cid] for cid in ds.chunk_ids()}
        chk[fmt.def_file_name(ds.name)] = fmt.sha1_text(def_text)
        chk_text = fmt.dump_chk(chk)
        ds.storage.write_text(ds.def_key, def_text)
        if not ds.storage.put_if_absent(ds.chk_key, chk_text.encode("utf-8")):
            raise _exists_error(ds)
        ds._remove_local_leftovers()
        checksum = fmt.sha1_text(chk_text)
        if self.ctx is not None and checksum not in self.ctx.output_datasets:
            self.ctx.output_datasets.append(checksum)
        return checksum

    def _definition(self) -> dict[str, Any]:
        ds = self.dataset
        deps = [d.dependency_record() for d in ds._dependencies]
        seen = {d["chkFileChecksum"] for d in deps}
        for record in _context_inputs(self.ctx):
            if record["chkFileChecksum"] not in seen:
                seen.add(record["chkFileChecksum"])
                deps.append(record)
        return {
            "branch": ds.branch,
            "chunkCount": ds.chunkCount,
            "creationTime": self.creation_time,
            "dataType": ds.dataType.__name__,
            "dependencies": deps,
            "name": ds.name,
            "project": ds.project,
            "repo": self.repo,
        }


def _exists_error(ds: Dataset) -> DatasetExistsError:
    return DatasetExistsError(
        f"dataset {ds.storage.url}/{ds.directory} already exists; datasets are immutable: "
        "delete it first (Dataset.delete()) or write under another name or branch"
    )


def _repo_record(ds: Dataset, ctx: OpContext | None) -> dict[str, Any]:
    if ds.repoData is not None:
        data = ds.repoData.to_data() if hasattr(ds.repoData, "to_data") else dict(ds.repoData)
        return dict(data)
    state = repo_state()
    if ctx is not None:
        state = check_clean_for_pipeline(state, ds.directory, ctx.force)
    return state


def _context_inputs(ctx: OpContext | None) -> list[dict[str, Any]]:
    """Dependency records of every dataset the running op read."""
    if ctx is None:
        return []
    records: dict[str, dict[str, Any]] = getattr(ctx, "dataset_records", {})
    return [records[c] for c in ctx.input_datasets if c in records]


def _nothing() -> None:
    return None


class DatasetWriter:
    """Appends objects to their chunks; ``close()`` publishes, an exception publishes nothing."""

    def __init__(self, dataset: Dataset, buffer_bytes: int = BUFFER_BYTES) -> None:
        self.dataset = dataset
        if dataset.exists():
            raise _exists_error(dataset)
        self.token = uuid.uuid4().hex[:16]
        # lineage is taken (and a dirty repository refused) now, before anything is written
        self._publisher = _Publisher(dataset, self.token, None)
        self._staging = _Staging(dataset, self.token)
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
                chunk.flush(level, self._staging.temp_dir)
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
        try:
            if self.dataset.exists():  # published meanwhile: do not touch its chunks
                raise _exists_error(self.dataset)
            checksums = {}
            level = self.dataset.compresslevel
            for chunk, lines in zip(self._chunks, self._lines, strict=True):
                chunk.lines = lines
                self.count += len(lines)
            if self._staging.local_dir is not None:
                checksums = _finish_local(self._ids, self._chunks, level, self._staging.temp_dir)
            else:
                with _Uploads(self._staging) as uploads:
                    for cid, chunk in zip(self._ids, self._chunks, strict=True):
                        checksums[cid], body = chunk.finish(level, self._staging.temp_dir)
                        uploads.store(cid, body)
            self._chunks = []
            self.checksum = self._publisher.publish(checksums)
        except BaseException:
            self._staging.discard(self._ids)
            raise
        self._staging.cleanup()
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
        self._staging = _Staging(dataset, token)
        self._chunk = _ChunkSpill(self._staging.staged_path(chunk_id))
        self._encode = fmt.line_encoder(dataset.dataType)
        self._flush = chunk_flush_bytes
        self.count = 0

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
            self._chunk.flush(self.dataset.compresslevel, self._staging.temp_dir)

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
            chunk.flush(self.dataset.compresslevel, self._staging.temp_dir)

    def close(self) -> str:
        """Store the chunk (not yet visible) and return its SHA1 for ``Dataset.publish``."""
        try:
            sha, body = self._chunk.finish(self.dataset.compresslevel, self._staging.temp_dir)
            self._staging.store(self.chunk_id, body)
        finally:
            self._staging.cleanup()
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
