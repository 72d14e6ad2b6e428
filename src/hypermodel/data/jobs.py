"""The machinery under tasks: completion records, chunk staging, routing, the job pool, progress.

Layout in the output dataset's directory while a task runs (removed once it publishes)::

    .hml-task/<token>/plan.json                 creation time fixed by the first attempt
    .hml-task/<token>/done/<chunk>.json         a finished chunk job: {"sha1", "count"}
    .hml-task/<token>/parts/<source>.json       a finished one-to-many source job: its parts
    .hml-task/<token>/parts/<target>/<source>.gz  gzip members routed to a target chunk

``token`` is a digest of the task and the checksums of its inputs: a re-run of the same task on
the same inputs finds the records of the last attempt and skips what completed; other inputs
mean another token and a fresh start.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from . import format as fmt
from .deflate import decompressor, gzip_member
from .errors import DatasetError
from .io.staging import Staging

if TYPE_CHECKING:
    from .dataset import Dataset

PARTS_FLUSH_BYTES = 16 << 20  # a one-to-many job spills its routed lines beyond this
_COPY_BLOCK = 1 << 20


class TaskFailedError(DatasetError):
    """A chunk job of a task raised; nothing was published (completed chunks are kept)."""


class TaskJobError(Exception):
    """Raised inside a worker: one string, so it pickles back to the parent intact."""


def task_token(parts: Iterable[Any]) -> str:
    text = json.dumps(list(parts), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class Records:
    """Completion records of one task run, in the output dataset's storage."""

    def __init__(self, dataset: Dataset, token: str) -> None:
        self.dataset = dataset
        self.token = token
        self.prefix = dataset.key(f".hml-task/{token}")

    def creation_time(self, given: str | None) -> str:
        """The .def creation time: the first attempt's, so a resumed run publishes the same
        checksum as an uninterrupted one."""
        key = f"{self.prefix}/plan.json"
        proposed = json.dumps({"creationTime": given or dt.datetime.now().isoformat()})
        self.dataset.storage.put_if_absent(key, proposed.encode())
        return str(json.loads(self.dataset.storage.read_text(key))["creationTime"])

    def done(self, chunk_id: str) -> dict[str, Any] | None:
        return self._read(f"{self.prefix}/done/{chunk_id}.json")

    def mark_done(self, chunk_id: str, record: dict[str, Any]) -> None:
        self.dataset.storage.write_text(f"{self.prefix}/done/{chunk_id}.json", json.dumps(record))

    def parts(self, source: str) -> dict[str, Any] | None:
        return self._read(f"{self.prefix}/parts/{source}.json")

    def mark_parts(self, source: str, record: dict[str, Any]) -> None:
        self.dataset.storage.write_text(f"{self.prefix}/parts/{source}.json", json.dumps(record))

    def part_key(self, target: str, source: str) -> str:
        return f"{self.prefix}/parts/{target}/{source}.gz"

    def clear(self) -> None:
        self.dataset.storage.delete_prefix(self.prefix)  # a token directory: no sibling shares it
        local = self.dataset.storage.local_path(self.prefix)
        if local:
            shutil.rmtree(os.path.dirname(local), ignore_errors=True)

    def _read(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.dataset.storage.read_text(key))  # type: ignore[no-any-return]
        except NotFoundError:
            return None


# -- chunks staged for Dataset.publish ------------------------------------------------------------
def chunk_present(dataset: Dataset, chunk_id: str, token: str) -> bool:
    """Is the chunk written under ``token`` still where ``Dataset.publish`` will look for it?"""
    return Staging(dataset.address, token).present(chunk_id)


def store_chunk_members(
    dataset: Dataset,
    chunk_id: str,
    token: str,
    members: Iterable[bytes],
    layout: list[tuple[int, int]],
) -> None:
    """Write a chunk file made of already compressed gzip members, for ``Dataset.publish``,
    with its ``layout`` (each member's compressed length and record count: the index)."""
    staging = Staging(dataset.address, token)
    staged = staging.staged_path(chunk_id)
    if staged is None:
        staging.store(chunk_id, b"".join(members))
    else:
        tmp = f"{staged}.part"
        with open(tmp, "wb") as fh:
            for member in members:
                fh.write(member)
        os.replace(tmp, staged)
    staging.store_layout(chunk_id, layout)


def inflate(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(compressed length, uncompressed content) of each of concatenated gzip members."""
    while data:
        d = decompressor()
        text = d.decompress(data)
        if not d.eof:
            raise DatasetError("a routed part is truncated")
        yield len(data) - len(d.unused_data), text
        data = d.unused_data


# -- one-to-many routing ----------------------------------------------------------------------------
class Router:
    """``self.output`` of a one-to-many job: routes appended objects to their target chunks.

    Lines are buffered per target and spilled as gzip members to one local file per target
    once ``flush_bytes`` are buffered, so memory stays bounded whatever the job emits.
    """

    def __init__(self, dataset: Dataset, flush_bytes: int = PARTS_FLUSH_BYTES) -> None:
        self.dataset = dataset
        self.type = dataset.dataType
        self.encode = fmt.line_encoder(dataset.dataType)
        self.place = fmt.chunk_indexer(dataset.dataType, dataset.chunkCount)  # the writer's rule
        self.ids = dataset.chunk_ids()
        self.lines: dict[int, list[str]] = {}
        self.counts: dict[int, int] = {}
        self.buffered = 0
        self.flush_bytes = flush_bytes
        self.dir = tempfile.mkdtemp(prefix="hml-route-")
        self.appended = 0

    def append(self, obj: Any) -> None:
        if not isinstance(obj, self.type):
            raise TypeError(
                f"cannot append a {type(obj).__name__} to {self.dataset!r}, which holds "
                f"{self.type.__name__} objects"
            )
        # the fast placer knows the declared class; a subclass may override get_hash_id
        if obj.__class__ is self.type:
            target = self.place(obj)
        else:
            target = fmt.chunk_index(obj.get_hash_id(), self.dataset.chunkCount)
        line = self.encode(obj)
        self.lines.setdefault(target, []).append(line)
        self.counts[target] = self.counts.get(target, 0) + 1
        self.buffered += len(line)
        self.appended += 1
        if self.buffered >= self.flush_bytes:
            self.spill()

    def spill(self) -> None:
        level = self.dataset.compresslevel
        for target, lines in self.lines.items():
            with open(os.path.join(self.dir, self.ids[target]), "ab") as fh:
                fh.write(gzip_member("".join(lines).encode("utf-8"), level))
        self.lines = {}
        self.buffered = 0

    def finish(self, records: Records, source: str) -> dict[str, int]:
        """Store this job's parts in the bucket; {target chunk id: object count}."""
        self.spill()
        try:
            for target in sorted(self.counts):
                cid = self.ids[target]
                with open(os.path.join(self.dir, cid), "rb") as fh:
                    records.dataset.storage.write_bytes(records.part_key(cid, source), fh.read())
        finally:
            self.discard()
        return {self.ids[t]: n for t, n in sorted(self.counts.items())}

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def merge_parts(records: Records, target: str, sources: list[tuple[str, int]]) -> dict[str, Any]:
    """Target chunk = its parts' gzip members concatenated in source order (no recompression);
    the SHA1 of the chunk text is computed by inflating them once."""
    ds = records.dataset
    hasher = hashlib.sha1()
    bodies: list[bytes] = []
    members: list[list[int]] = []  # the chunk's index entries: [offset, length, first, count]
    offset = count = 0
    for source, _n in sources:
        body = ds.storage.read_bytes(records.part_key(target, source))
        for length, text in inflate(body):
            hasher.update(text)
            lines = text.count(b"\n")
            members.append([offset, length, count, lines])
            offset += length
            count += lines
        bodies.append(body)
    if not bodies:  # an empty chunk is still a valid gzip file, as every writer makes it
        bodies.append(gzip_member(b"", ds.compresslevel))
        members.append([0, len(bodies[0]), 0, 0])
    layout = [(length, lines) for _offset, length, _first, lines in members]
    store_chunk_members(ds, target, records.token, bodies, layout)
    return {"sha1": hasher.hexdigest(), "count": count}


# -- the pool -------------------------------------------------------------------------------------
class Progress:
    """Chunks done and objects/s, live: a rich bar on a terminal, nothing otherwise.

    ``advance(objects)`` counts one more chunk done and the objects it wrote;
    ``advance(objects, chunks=0)`` counts objects written by work still running (a source
    reports every batch that way, its chunks being done only when it publishes)."""

    def __init__(self, label: str, total: int, enabled: bool | None = None) -> None:
        self.total = total
        self.objects = 0
        self.chunks = 0
        self.started = time.perf_counter()
        self._bar: Any = None
        if enabled is None:
            enabled = sys.stderr.isatty()
        if enabled and total:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("chunks  {task.fields[objects]}  {task.fields[rate]}"),
                transient=False,
                console=Console(stderr=True),  # the terminal it was enabled for, not stdout
            )
            self._id = self._bar.add_task(label, total=total, objects="", rate="")
            self._bar.start()

    @property
    def rate(self) -> float:
        """Objects per second since the start."""
        return self.objects / max(time.perf_counter() - self.started, 1e-9)

    def advance(self, objects: int, chunks: int = 1) -> None:
        self.objects += objects
        self.chunks += chunks
        if self._bar is not None:
            self._bar.update(
                self._id,
                advance=chunks,
                objects=f"{self.objects:,} objects",
                rate=f"{self.rate:,.0f} objects/s",
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def run_jobs(
    jobs: list[str],
    job: Callable[[str], dict[str, Any]],
    workers: int,
    pool_factory: Callable[[int], ProcessPoolExecutor],
    progress: Progress,
) -> dict[str, dict[str, Any]]:
    """Run ``job(chunk)`` for every chunk; the first failure stops the rest (running jobs finish,
    so their completion records are kept) and raises TaskFailedError."""
    results: dict[str, dict[str, Any]] = {}
    if workers <= 1 or len(jobs) <= 1:
        for cid in jobs:
            results[cid] = _call(job, cid)
            progress.advance(results[cid].get("count", 0))
        return results
    pool = pool_factory(min(workers, len(jobs)))
    failure: BaseException | None = None
    try:
        # the pool forks its workers on the first submit: with the parent's objects frozen,
        # collections in the workers skip them instead of touching (and so copying) their pages
        gc.freeze()
        try:
            running: dict[Future[dict[str, Any]], str] = {
                pool.submit(job, cid): cid for cid in jobs
            }
        finally:
            gc.unfreeze()
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                cid = running.pop(fut)
                try:
                    results[cid] = fut.result()
                    progress.advance(results[cid].get("count", 0))
                except BaseException as exc:
                    if failure is None:
                        failure = exc
                        for other in running:
                            other.cancel()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if failure is not None:
        if isinstance(failure, TaskJobError):
            raise TaskFailedError(str(failure)) from None
        raise TaskFailedError(
            f"a chunk job failed: {type(failure).__name__}: {failure}"
        ) from failure
    return results


def _call(job: Callable[[str], dict[str, Any]], cid: str) -> dict[str, Any]:
    try:
        return job(cid)
    except TaskJobError as exc:
        raise TaskFailedError(str(exc)) from None
