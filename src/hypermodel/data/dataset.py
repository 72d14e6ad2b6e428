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
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..context import maybe_context
from ..storage import Storage, resolve_storage
from . import format as fmt
from .errors import DatasetUsageError
from .io import header as headers
from .io.address import DatasetAddress
from .io.header import Header
from .io.publish import Publisher
from .io.reader import DatasetReader
from .io.staging import Staging
from .io.writer import BUFFER_BYTES, CHUNK_FLUSH_BYTES, ChunkWriter, DatasetWriter

if TYPE_CHECKING:
    from .model import BaseData

__all__ = [
    "BUFFER_BYTES",
    "CHUNK_FLUSH_BYTES",
    "ChunkWriter",
    "Dataset",
    "DatasetAddress",
    "DatasetReader",
    "DatasetWriter",
    "Header",
]


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
        self.location = storage if storage is not None else location
        self._storage: Storage | None = None
        self._dependencies: list[Dataset] = []

    # -- where --------------------------------------------------------------------------------
    @property
    def storage(self) -> Storage:
        if self._storage is None:
            self._storage = resolve_storage(self.location)
        return self._storage

    @property
    def address(self) -> DatasetAddress:
        """Where the version a read sees now lives (what the I/O modules take)."""
        return DatasetAddress(
            self.storage,
            self.project,
            self.branch,
            self.name,
            self.resolved_version(),
            self.chunkCount,
        )

    @property
    def directory(self) -> str:
        """The dataset's key prefix in its storage (of the version a read sees now)."""
        return self.address.directory

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

    # Keys of the version a read sees now: the address derives them.
    def key(self, file_name: str) -> str:
        return self.address.key(file_name)

    @property
    def def_key(self) -> str:
        return self.address.def_key

    @property
    def chk_key(self) -> str:
        return self.address.chk_key

    def chunk_key(self, chunk_id: str) -> str:
        return self.address.chunk_key(chunk_id)

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
        return headers.read_chk_text(self.address)

    @property
    def checksum(self) -> str:
        """SHA1 of the .chk text: one hash for the content and the whole lineage."""
        return fmt.sha1_text(self.chk_text())

    def read_chk(self) -> dict[str, str]:
        return headers.read_chk(self.pinned().address)

    def read_def(self) -> dict[str, Any]:
        """The .def of the published dataset (checked against the .chk)."""
        return self.read_header().definition

    def read_header(self) -> Header:
        """The .chk and the .def, checked (see ``io.header.read_header``)."""
        return headers.read_header(self.pinned().address)

    def dependency_record(self) -> dict[str, Any]:
        """What a dataset made from this one embeds: this .def plus ``chkFileChecksum``."""
        header = self.read_header()
        return {**header.definition, "chkFileChecksum": header.checksum}

    def add_dependency(self, dataset: Dataset) -> None:
        """Record ``dataset`` (published) in this one's lineage when it is written."""
        self._dependencies.append(checked_dependency(dataset))

    @property
    def dependencies(self) -> tuple[Dataset, ...]:
        """The datasets added with ``add_dependency`` (what a write records by default)."""
        return tuple(self._dependencies)

    def delete(self) -> None:
        """Remove the dataset's files (the .chk first, so it stops existing at once): the
        version a read sees now, or the plain dataset."""
        from .versions import forget

        target = self.pinned()
        target.storage.delete(target.chk_key)
        target.storage.delete_prefix(target.directory)
        target.address.remove_local_leftovers(all_files=True)
        forget(target, target.version)

    # -- open -----------------------------------------------------------------------------------
    def open(
        self,
        mode: str = "r",
        *,
        dependencies: Iterable[Dataset] | None = None,
        **options: Any,
    ) -> DatasetReader | DatasetWriter:
        """``open("r")`` reads, ``open("w")`` writes (a ``DatasetWriter``). A write records
        ``dependencies`` (published datasets) as its lineage, else those added with
        ``add_dependency``."""
        if mode == "w":
            deps = None if dependencies is None else [checked_dependency(d) for d in dependencies]
            return DatasetWriter(self, dependencies=deps, **options)
        if dependencies is not None:
            raise DatasetUsageError(
                f"open('r', dependencies=...) on {self!r}: only a write records dependencies"
            )
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
        from .io.stream import stream

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
        *,
        dependencies: Iterable[Dataset] | None = None,
    ) -> str:
        """Publish chunks written by ``chunk_writer(..., token)``: ``checksums`` maps every chunk
        id to the SHA1 its ChunkWriter returned. Returns the dataset checksum. Raises
        DatasetBusyError when another writer is publishing this dataset, DatasetExistsError
        when it is published; either way nothing of this write is published. The lineage is
        ``dependencies``, else the datasets added with ``add_dependency``."""
        target = self.for_write(token)
        deps = None if dependencies is None else [checked_dependency(d) for d in dependencies]
        publisher = Publisher(target, token, creation_time, meta, deps)
        return publisher.publish(checksums, Staging(target.address, token))

    def verify(self) -> dict[str, int]:
        """Read every chunk and check every checksum; the object count per chunk."""
        reader = DatasetReader(self.pinned(), record_input=False)
        return {cid: reader.count_chunk(cid) for cid in self.chunk_ids()}


def checked_dependency(dataset: Any) -> Dataset:
    """``dataset`` as a lineage entry: a published Dataset, pinned to the version it is now
    (whatever is written later); DatasetUsageError otherwise."""
    if not isinstance(dataset, Dataset):
        raise DatasetUsageError(f"a dependency must be a Dataset, not {dataset!r}")
    dataset = dataset.pinned()
    if not dataset.exists():
        raise DatasetUsageError(
            f"cannot depend on {dataset!r}: it is not published (write and close it first)"
        )
    return dataset
