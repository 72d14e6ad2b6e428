"""Tasks over dataset chunks: ``Source``, ``OneToOne`` and ``OneToMany``, usable as pipeline ops.

- ``Source``: ``source_iterator()`` yields anything; ``run(item)`` (optional) turns each item
  into an object of the output dataset (``None`` skips it). Runs in one process.
- ``OneToOne``: for every id, ``run(obj1, obj2, ...)`` gets the objects with that id from each
  input dataset (same chunk count) and returns one output object with the same id (or None).
- ``OneToMany``: ``run(obj1, ...)`` calls ``self.output.append(obj)`` any number of times, with
  any ids; objects are routed to their chunks with bounded memory.

``loadedInputs`` are whole datasets loaded into ``self.loadedData`` (a list of lists) before
``init()``; members given as ``Delayed(cls, **kwargs)`` are built inside each worker (for things
that do not pickle); ``init()`` runs once per worker process.

A task is an op: called inside a pipeline function it adds a step (ordered after the tasks that
write its inputs); the local runner runs it in the parent, where it fans out one job per chunk
over its own fork process pool. Called outside a pipeline, ``task()`` simply runs it. Its output
is ``{"dataset", "checksum", "objects", "chunks", "resumed"}``.

Failure and resumption: a failing job fails the task with an error naming the chunk and the
object id; nothing is published. Every finished chunk leaves a completion record (see
``jobs``), so running the task again after a fix only runs the chunks that did not complete and
publishes the very checksum an uninterrupted run would have (the creation time in the .def is
the first attempt's).

For Kubeflow, ``step`` selects a part: ``"all"`` (default), ``"shard:<k>/<n>"``
(``run_shard``), ``"chunk:<id>"`` (``run_chunk``) or ``"publish"`` (``publish``);
``compile_kfp`` builds a ParallelFor over at most ``fan_out`` shards and a publish step
(docs/tasks-and-streams.md).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator
from typing import Any

from . import format as fmt
from .dataset import DatasetWriter, checked_dependency
from .errors import DatasetUsageError
from .jobs import (
    Progress,
    Records,
    Router,
    TaskFailedError,
    TaskJobError,
    chunk_present,
    merge_parts,
)
from .model import BaseData
from .task_base import BaseTask, ChunkTask, Delayed, LazyId, objects_of

__all__ = [
    "BaseTask",
    "Delayed",
    "OneToMany",
    "OneToOne",
    "SimpleTask",
    "Source",
    "TaskFailedError",
]

# Encoded output lines a one-to-one job hands to its chunk writer at once.
_LINES_PER_WRITE = 4096

# A source reports its progress (objects written, objects/s) every this many objects.
_SOURCE_PROGRESS_EVERY = 1024


class OneToOne(ChunkTask):
    """``run(obj1, obj2, ...) -> obj``: one output object per id (same id, hence same chunk)."""

    kind = "one-to-one"
    _fan_phase = "chunks"

    def _check(self) -> None:
        super()._check()
        if self.inputDatasets[0].chunkCount != self.outputDataset.chunkCount:
            raise DatasetUsageError(
                f"task '{self.name}': the output has {self.outputDataset.chunkCount} chunks and "
                f"the inputs {self.inputDatasets[0].chunkCount}; a one-to-one task writes each "
                "chunk into the same chunk, so they must agree (or use OneToMany)"
            )

    def run_all(self) -> dict[str, Any]:
        done = self._plan()
        if done is not None:
            return done
        records = Records(self.out, self.token)
        records.creation_time(self.creationTime)
        results, todo = self._completed(records)
        results.update(self._run_phase("chunks", todo, prepare=True))
        checksum = self._publish_output(results, records)
        return self._output(checksum, objects_of(results), len(self.input_chunk_ids) - len(todo))

    def _progress(self, records: Records) -> tuple[dict[str, Any], list[str]]:
        return self._completed(records)

    def _completed(self, records: Records) -> tuple[dict[str, Any], list[str]]:
        results: dict[str, Any] = {}
        todo = []
        for cid in self.input_chunk_ids:
            rec = records.done(cid)
            if rec is not None and chunk_present(self.out, cid, self.token):
                results[cid] = rec
            else:
                todo.append(cid)
        return results, todo

    def run_chunk(self, chunk_id: str) -> dict[str, Any]:
        if self._plan() is not None:
            return {"chunk": chunk_id, "count": 0, "skipped": True}
        records = Records(self.out, self.token)
        records.creation_time(self.creationTime)
        rec = records.done(chunk_id)
        if rec is not None and chunk_present(self.out, chunk_id, self.token):
            return {"chunk": chunk_id, **rec}
        try:
            return {"chunk": chunk_id, **self._prepared()._job("chunks", chunk_id)}
        except TaskJobError as exc:
            raise TaskFailedError(str(exc)) from None

    def publish(self) -> dict[str, Any]:
        done = self._plan()
        if done is not None:
            return done
        records = Records(self.out, self.token)
        results, todo = self._completed(records)
        if todo:
            raise TaskFailedError(
                f"task '{self.name}' cannot publish: chunk(s) {', '.join(todo[:8])} did not "
                "complete; run them first (step chunk:<id>)"
            )
        return self._output(self._publish_output(results, records), objects_of(results), 0)

    def _job(self, phase: str, chunk_id: str) -> dict[str, Any]:
        out = self.out
        writer = out.chunk_writer(chunk_id, self.token)
        encode = _encoder(out.dataType)
        out_key, in_key, checked = _chunk_check(
            self.inputs[0].dataType, out.dataType, out.chunkCount,
            out.chunk_ids().index(chunk_id),
        )  # fmt: skip
        typ, write = out.dataType, writer.write_lines
        # one input: run(obj) straight over the reader's batches; several: run(*row) over the
        # join, with the first input's object deciding the chunk
        items: Iterator[Any]
        call: Callable[[Any], Any]
        first: Callable[[Any], Any]
        if len(self._readers) == 1:
            items, call, first = self._readers[0].read_chunk(chunk_id), self.run, _itself
        else:
            run = self.run
            items = (row for _oid, row in self._joined(chunk_id))
            call, first = functools.partial(_star, run), operator.itemgetter(0)
            in_key = functools.partial(_keyed, in_key, first)
        item: Any = None
        lines: list[str] = []
        add = lines.append
        try:
            for item in items:
                result = call(item)
                # the usual case first: the declared class, the input's id (so this chunk)
                if result.__class__ is not typ or out_key(result) != in_key(item):
                    if result is None:
                        continue
                    if not isinstance(result, typ):
                        raise DatasetUsageError(
                            f"run() returned a {type(result).__name__}; {out!r} holds "
                            f"{typ.__name__} objects"
                        )
                    # a subclass may override get_hash_id, an id may differ: SHA1 decides
                    if not checked(result, first(item)):
                        raise DatasetUsageError(
                            f"run() returned {result!r}, whose id places it in another chunk; "
                            "a one-to-one task keeps each object's id (use OneToMany to change "
                            "ids)"
                        )
                add(encode(result))
                if len(lines) >= _LINES_PER_WRITE:
                    write(lines)
                    lines = []
                    add = lines.append
            write(lines)
            sha = writer.close()
        except TaskJobError:
            writer.abort()
            raise
        except Exception as exc:
            writer.abort()
            oid = LazyId(first(item)) if item is not None else None
            raise self._failed(chunk_id, oid, exc) from None
        except BaseException:
            writer.abort()
            raise
        record = {"sha1": sha, "count": writer.count}
        Records(out, self.token).mark_done(chunk_id, record)
        return record


def _itself(obj: Any) -> Any:
    return obj


def _star(run: Callable[..., Any], row: tuple[Any, ...]) -> Any:
    return run(*row)


def _keyed(key: Callable[[Any], Any], first: Callable[[Any], Any], row: Any) -> Any:
    return key(first(row))


def _encoder(data_type: type[BaseData]) -> Callable[[Any], str]:
    """``obj -> line`` without its newline: the class's generated encoder when it has one."""
    from .codegen import encoder_for

    fast = encoder_for(data_type)
    if fast is not None:
        return fast
    line = fmt.line_encoder(data_type)
    return lambda obj: line(obj)[:-1]


def _chunk_check(
    in_type: type[BaseData], out_type: type[BaseData], count: int, here: int
) -> tuple[Callable[[Any], Any], Callable[[Any], Any], Callable[[Any, Any], bool]]:
    """``(out_key, in_key, checked)``: a result whose ``out_key`` equals its input object's
    ``in_key`` has the input's hash id, so it is in this chunk with no SHA1 to compute; else
    ``checked(result, input)`` decides. When both classes keep the default ids the keys are C
    attrgetters over the id fields (no id tuples built); otherwise ``id`` (the same object)."""

    def checked(result: Any, obj: Any) -> bool:
        hid = result.get_hash_id()  # the object's own (a subclass may override it)
        return bool(hid == obj.get_hash_id() or fmt.chunk_index(hid, count) == here)

    default = (BaseData.get_hash_id, BaseData.get_id)
    if (
        (in_type.get_hash_id, in_type.get_id) == default
        and (out_type.get_hash_id, out_type.get_id) == default
        and in_type._hml_id
        and len(in_type._hml_id) == len(out_type._hml_id)
    ):
        return (
            operator.attrgetter(*out_type._hml_id),
            operator.attrgetter(*in_type._hml_id),
            checked,
        )
    return id, id, checked


SimpleTask = OneToOne  # Hypergol's name


class OneToMany(ChunkTask):
    """``run(obj1, ...)`` appends any number of objects, with any ids, to ``self.output``.

    Each input chunk's job routes what it appends into per-target gzip members (spilled to disk
    past a memory bound); then each output chunk is the concatenation of its members in input
    chunk order — no recompression, and the same bytes however the jobs were scheduled.
    """

    kind = "one-to-many"
    _fan_phase = "route"

    def run_all(self) -> dict[str, Any]:
        done = self._plan()
        if done is not None:
            return done
        records = Records(self.out, self.token)
        records.creation_time(self.creationTime)
        parts, todo = self._routed(records)
        parts.update(self._run_phase("route", todo, prepare=True))
        resumed = len(self.input_chunk_ids) - len(todo)
        checksum = self._merge_and_publish(records, parts)
        return self._output(checksum, objects_of(parts), resumed)

    def _progress(self, records: Records) -> tuple[dict[str, Any], list[str]]:
        return self._routed(records)

    def _routed(self, records: Records) -> tuple[dict[str, Any], list[str]]:
        parts: dict[str, Any] = {}
        todo = []
        for cid in self.input_chunk_ids:
            rec = records.parts(cid)
            if rec is not None:
                parts[cid] = rec
            else:
                todo.append(cid)
        return parts, todo

    def _merge_and_publish(self, records: Records, parts: dict[str, Any]) -> str:
        routes: dict[str, list[tuple[str, int]]] = {}
        for source in self.input_chunk_ids:
            for target, n in parts[source]["parts"].items():
                routes.setdefault(target, []).append((source, n))
        self._routes = routes
        results: dict[str, Any] = {}
        todo = []
        for cid in self.out.chunk_ids():
            rec = records.done(cid)
            if rec is not None and chunk_present(self.out, cid, self.token):
                results[cid] = rec
            else:
                todo.append(cid)
        results.update(self._run_phase("merge", todo, prepare=False))
        return self._publish_output(results, records)

    def run_chunk(self, chunk_id: str) -> dict[str, Any]:
        if self._plan() is not None:
            return {"chunk": chunk_id, "count": 0, "skipped": True}
        records = Records(self.out, self.token)
        records.creation_time(self.creationTime)
        rec = records.parts(chunk_id)
        if rec is not None:
            return {"chunk": chunk_id, **rec}
        try:
            return {"chunk": chunk_id, **self._prepared()._job("route", chunk_id)}
        except TaskJobError as exc:
            raise TaskFailedError(str(exc)) from None

    def publish(self) -> dict[str, Any]:
        done = self._plan()
        if done is not None:
            return done
        records = Records(self.out, self.token)
        parts, todo = self._routed(records)
        if todo:
            raise TaskFailedError(
                f"task '{self.name}' cannot publish: input chunk(s) {', '.join(todo[:8])} did "
                "not complete; run them first (step chunk:<id>)"
            )
        return self._output(self._merge_and_publish(records, parts), objects_of(parts), 0)

    def _job(self, phase: str, chunk_id: str) -> dict[str, Any]:
        records = Records(self.out, self.token)
        if phase == "merge":
            record = merge_parts(records, chunk_id, self._routes.get(chunk_id, []))
            records.mark_done(chunk_id, record)
            return record
        router = Router(self.out)
        self.output = router
        oid: Any = None
        try:
            for oid, row in self._joined(chunk_id):
                try:
                    self.run(*row)
                except Exception as exc:
                    raise self._failed(chunk_id, oid, exc) from None
            routed = router.finish(records, chunk_id)
        except BaseException:
            router.discard()
            raise
        record = {"parts": routed, "count": router.appended}
        records.mark_parts(chunk_id, record)
        return record


class Source(BaseTask):
    """``source_iterator()`` yields items; ``run(item)`` makes each an output object (or None).

    Runs in one process (the iterator is sequential); the output is written and published
    atomically: an exception publishes nothing.
    """

    kind = "source"

    def source_iterator(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement source_iterator()")

    def run(self, *objects: Any) -> Any:
        return objects[0]

    def run_all(self) -> dict[str, Any]:
        done = self._plan()
        if done is not None:
            return done
        worker = self._prepared()
        assert isinstance(worker, Source)
        out = self.out
        dependencies = [checked_dependency(ds) for ds in [*self.inputs, *self.loaded]]
        # live progress: objects as they are appended, every batch; the chunks all at once,
        # when the writer publishes them
        bar = Progress(f"{self.name} source", out.chunkCount, self.progress)
        item: Any = None
        written = 0
        report_at = _SOURCE_PROGRESS_EVERY
        try:
            meta = {"token": self.token, "codeDigest": self.code_fingerprint}
            with DatasetWriter(
                out, creation_time=self.creationTime, meta=meta, dependencies=dependencies
            ) as writer:
                for item in worker.source_iterator():
                    try:
                        obj = worker.run(item)
                        if obj is not None:
                            writer.append(obj)
                            written += 1
                    except Exception as exc:
                        raise TaskFailedError(
                            f"task '{self.name}' failed on item {_short(item)}: "
                            f"{type(exc).__name__}: {exc}"
                        ) from exc
                    if written >= report_at:
                        bar.advance(written - bar.objects, chunks=0)
                        report_at = written + _SOURCE_PROGRESS_EVERY
            bar.advance(writer.count - bar.objects, chunks=out.chunkCount)
        finally:
            bar.close()
        return self._output(writer.checksum or out.checksum, writer.count, 0)

    def run_chunk(self, chunk_id: str) -> dict[str, Any]:
        raise DatasetUsageError(f"source task '{self.name}' has no chunk jobs: run it whole")

    def publish(self) -> dict[str, Any]:
        return self.run_all()


def _short(item: Any) -> str:
    text = repr(item)
    return text if len(text) <= 200 else text[:197] + "..."
