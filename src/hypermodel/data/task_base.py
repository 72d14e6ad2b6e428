"""What every task over datasets shares: ``BaseTask`` (a task is an op: planning its versions
and token, reading its inputs, running chunk jobs on a pool, the Kubeflow fan-out) and
``ChunkTask`` (tasks whose inputs are read chunk by chunk). The task kinds are in ``tasks``.
"""

from __future__ import annotations

import copy
import functools
import inspect
import operator
import os
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

from ..context import maybe_context
from ..dsl.build import current_builder
from ..dsl.config import ContainerConfig
from ..dsl.op import Op
from ..names import snake_case
from ..settings import Settings
from .dataset import Dataset, DatasetReader
from .errors import DatasetExistsError, DatasetUsageError
from .jobs import (
    Progress,
    Records,
    TaskFailedError,
    TaskJobError,
    run_jobs,
    task_token,
)
from .task_pool import no_pool, task_pool, worker_job

# Keywords of Hypergol's task signature, accepted for porting and unused.
_HYPERGOL_OPTIONS = ("debug", "logLevel", "force", "threads")


class Delayed:
    """``Delayed(cls, *args, **kwargs)``: a member built inside each worker, before ``init()``."""

    def __init__(self, classType: type, *args: Any, **kwargs: Any) -> None:
        self.classType = classType
        self.args = args
        self.kwargs = kwargs

    def make(self) -> Any:
        return self.classType(*self.args, **self.kwargs)

    def __repr__(self) -> str:
        return f"Delayed({self.classType.__name__})"


def _step(step: str = "all") -> dict:  # type: ignore[type-arg]
    """The op signature of every task: which part to run (all, shard:<k>/<n>, chunk:<id>,
    publish)."""
    raise NotImplementedError


class BaseTask(Op):
    """Common machinery; subclass ``Source``, ``OneToOne`` or ``OneToMany``."""

    runs_in_parent = True
    kind = "task"

    def __init__(
        self,
        inputDatasets: list[Dataset] | None = None,
        outputDataset: Dataset | None = None,
        loadedInputs: list[Dataset] | None = None,
        *,
        name: str | None = None,
        workers: int | None = None,
        retries: int = 0,
        cache: bool = True,
        creationTime: str | None = None,
        progress: bool | None = None,
        config: ContainerConfig | None = None,
        fan_out: int = 16,
        **options: Any,
    ) -> None:
        self.inputDatasets = list(inputDatasets or [])
        self.loadedInputs = list(loadedInputs or [])
        if not isinstance(outputDataset, Dataset):
            raise DatasetUsageError(f"{type(self).__name__}: outputDataset must be a Dataset")
        self.outputDataset = outputDataset
        self.workers = workers
        if not isinstance(fan_out, int) or fan_out < 1:
            raise DatasetUsageError(
                f"{type(self).__name__}: fan_out (pods of the Kubeflow fan-out) must be an "
                f"int >= 1, not {fan_out!r}"
            )
        self.fan_out = fan_out
        self.creationTime = creationTime
        self.progress = progress
        self.loadedData: list[list[Any]] = []
        self._readers: list[DatasetReader] = []
        self._routes: dict[str, list[tuple[str, int]]] = {}
        self.token = ""
        # what _plan() fixes for one execution: the versions read and the version written
        self._inputs: list[Dataset] | None = None
        self._loaded: list[Dataset] | None = None
        self._out: Dataset | None = None
        for key in _HYPERGOL_OPTIONS:  # Hypergol's signature: accepted, unused
            options.pop(key, None)
        # a task is an op: one optional 'step' argument and a dict output. Its cache is its
        # output dataset: an equal one (same code, inputs and address) is reused unless
        # cache=False or --no-cache; the runner does not cache task outputs on top of that
        Op.__init__(
            self,
            _step,
            name=name or snake_case(type(self).__name__),
            retries=retries,
            cache=False,
            description=inspect.getdoc(type(self)) or "",
            config=config,
            **options,
        )
        self.reuse = cache
        self.__doc__ = type(self).__doc__
        self._check()

    def _check(self) -> None:
        for ds in [*self.inputDatasets, *self.loadedInputs]:
            if not isinstance(ds, Dataset):
                raise DatasetUsageError(f"task '{self.name}': {ds!r} is not a Dataset")

    # -- user hooks ------------------------------------------------------------------------------
    def init(self) -> None:
        """Called once per worker, after loaded inputs and Delayed members are ready."""

    def run(self, *objects: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement run()")

    # -- the op ------------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = current_builder()
        if builder is None:
            return self.execute_step(*args, **kwargs)
        task = builder.add_task(self, args, kwargs)
        # order by data: a task runs after the tasks that write its inputs, whichever was
        # declared first
        for other in list(builder.tasks.values()):
            if other is task or not isinstance(other.op, BaseTask):
                continue
            if any(_same(other.op.outputDataset, d) for d in self._all_inputs()):
                task.after(other)
            if any(_same(self.outputDataset, d) for d in other.op._all_inputs()):
                other.after(task)
        return task

    def execute(self, arguments: dict[str, Any]) -> Any:
        return self.execute_step(**arguments)

    def execute_step(self, step: str = "all") -> dict[str, Any]:
        if step == "all":
            return self.run_all()
        if step == "publish":
            return self.publish()
        if step.startswith("chunk:"):
            return self.run_chunk(step.split(":", 1)[1])
        if step.startswith("shard:"):
            return self.run_shard(*_shard(step, self.name))
        raise DatasetUsageError(
            f"task '{self.name}': unknown step {step!r} (all, publish, chunk:<id>, shard:<k>/<n>)"
        )

    def compile_kfp(self, builder: Any, task: Any, arguments: dict[str, Any]) -> Any:
        """Kubeflow form: a ParallelFor of at most ``fan_out`` pods, pod ``k`` of ``n`` running
        every ``n``-th chunk from ``k`` (``--step shard:<k>/<n>``) on its own process pool,
        then one publish pod (``--step publish``) whose output is the task's output. The YAML
        names shards, not chunks: its size does not grow with the chunk count."""
        chunk_ids = self.kfp_chunk_ids()
        if not chunk_ids:
            return builder.add(task, arguments)
        dsl = builder.dsl
        run_chunk = builder.component(task, {"step": str}, dict, name=f"{task.name}-chunk")
        publish = builder.component(task, {"step": str}, dict, name=f"{task.name}-publish")
        shards = min(len(chunk_ids), self.fan_out)
        items = [f"shard:{k}/{shards}" for k in range(shards)]
        # the chunk pods read the inputs: they wait for the tasks that write them, as the
        # publish pod does (the builder applies .after() to the task returned here only)
        upstream = [builder.kfp_tasks[name] for name in task.upstream_after]
        with dsl.ParallelFor(items=items, parallelism=self.workers or 0) as step:
            fan_out = builder.configure(run_chunk(step=step), task)
            if upstream:
                fan_out.after(*upstream)
        return builder.configure(publish(step="publish"), task).after(fan_out)

    def kfp_chunk_ids(self) -> list[str]:
        """The chunk jobs a Kubeflow fan-out runs (none: the task runs in one pod)."""
        return []

    @property
    def code_fingerprint(self) -> str:
        """The digest of the task's class and every module of its package (see
        ``hypermodel.provenance``): part of the output's token, so changed code rebuilds."""
        from ..provenance import code_digest

        return code_digest(type(self))

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # what a worker builds for itself (readers, loaded data, the router) never travels
        state = {
            k: ([] if k in ("_readers", "loadedData") else v)
            for k, v in self.__dict__.items()
            if k not in ("output", "__wrapped__")
        }
        return (_rebuild, (type(self), state))

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name} -> {self.outputDataset!r}>"

    # -- planning ----------------------------------------------------------------------------------
    def _all_inputs(self) -> list[Dataset]:
        return [*self.inputDatasets, *self.loadedInputs]

    @property
    def out(self) -> Dataset:
        """The output of this execution (its version fixed by ``_plan``)."""
        return self._out if self._out is not None else self.outputDataset

    @property
    def inputs(self) -> list[Dataset]:
        return self._inputs if self._inputs is not None else self.inputDatasets

    @property
    def loaded(self) -> list[Dataset]:
        return self._loaded if self._loaded is not None else self.loadedInputs

    def _plan(self) -> dict[str, Any] | None:
        """Fix the versions read and written, and the token; the output record if an equal
        output (same code digest, inputs and address) exists and may be reused."""
        from .versions import find_by_token, use, version_for_token

        self._inputs = [ds.pinned() for ds in self.inputDatasets]
        self._loaded = [ds.pinned() for ds in self.loadedInputs]
        checksums = []
        for ds in [*self._inputs, *self._loaded]:
            if not ds.exists():
                raise DatasetUsageError(
                    f"task '{self.name}': input {ds!r} is not published; run the task that "
                    "writes it first"
                )
            checksums.append(DatasetReader(ds).checksum)  # also records the input's lineage
        declared = self.outputDataset
        self.token = task_token(
            [
                type(self).__qualname__,
                self.name,
                f"{declared.project}/{declared.branch}/{declared.name}",
                declared.chunkCount,
                checksums,
                self.code_fingerprint,
            ]
        )
        ctx = maybe_context()
        reuse = self.reuse and (ctx is None or ctx.use_cache)
        if not declared.pinned_version and (declared.versioned or ctx is not None):
            if reuse:
                found = find_by_token(declared, self.token)
                if found is not None:
                    self._out = declared.with_version(found)
                    use(self._out, found)
                    return self._output(self._out.checksum, None, 0)
            # a stable version per token, so a failed attempt's finished chunks are resumed;
            # a forced rebuild gets one of its own per run
            forced = "" if reuse else (ctx.run_id if ctx is not None else uuid.uuid4().hex)
            self._out = declared.with_version(version_for_token(self.token, forced))
        else:
            self._out = declared.pinned()
        if self._out.exists():
            return self._existing(reuse)
        return None

    def _existing(self, reuse: bool) -> dict[str, Any]:
        """The output is published already: reuse it if this very code and input made it."""
        from .versions import entry, use

        out = self._out
        assert out is not None
        made = entry(out, out.version)
        if made is not None and made.get("token") == self.token and (reuse or out.version):
            if out.version:
                use(out, out.version)
            return self._output(out.checksum, None, 0)
        why = "other code or inputs" if made is not None else "an unknown writer"
        raise DatasetExistsError(
            f"task '{self.name}': output {out!r} exists and was made by {why}; datasets are "
            "immutable: delete it (Dataset.delete()), write to another name or branch, or run "
            "the task inside a pipeline, where each run writes a new version"
        )

    def _prepared(self) -> BaseTask:
        """A copy of the task ready to run jobs in this process."""
        worker = copy.copy(self)
        worker.loadedData = [list(DatasetReader(ds, record_input=False)) for ds in self.loaded]
        for key, value in list(vars(worker).items()):
            if isinstance(value, Delayed):
                setattr(worker, key, value.make())
        worker._readers = [DatasetReader(ds, record_input=False) for ds in self.inputs]
        try:
            worker.init()
        except Exception as exc:
            detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
            raise TaskFailedError(
                f"task '{self.name}': init() failed: {type(exc).__name__}: {exc}\n{detail}"
            ) from exc
        return worker

    def _workers(self) -> int:
        if self.workers is not None:
            return max(1, self.workers)
        ctx = maybe_context()  # inside an op: the app's settings; outside: the environment's
        configured = (ctx.settings if ctx is not None else Settings.from_env()).workers
        return configured if configured > 0 else os.cpu_count() or 1

    def _run_phase(self, phase: str, chunk_ids: list[str], prepare: bool) -> dict[str, Any]:
        if not chunk_ids:
            return {}
        workers = self._workers()
        bar = Progress(f"{self.name} {phase}", len(chunk_ids), self.progress)
        try:
            if workers <= 1 or len(chunk_ids) <= 1:
                local = self._prepared() if prepare else self
                return run_jobs(chunk_ids, functools.partial(local._job, phase), 1, no_pool, bar)
            self._warm()
            job = functools.partial(worker_job, self.token, phase)
            return run_jobs(chunk_ids, job, workers, lambda n: task_pool(self, n, prepare), bar)
        finally:
            bar.close()

    def _warm(self) -> None:
        """Generate the classes' encoders and decoders here, before the pool forks, so that
        every worker inherits them instead of generating its own in its first job."""
        from .codegen import batch_decoder_for, encoder_for

        for ds in [*self._all_inputs(), self.outputDataset]:
            try:
                batch_decoder_for(ds.dataType)
                encoder_for(ds.dataType)
            except Exception:  # a class that cannot have them fails in its job, with the why
                continue

    # -- entry points ------------------------------------------------------------------------------
    def run_all(self) -> dict[str, Any]:
        """Run every chunk job that has not completed, then publish."""
        raise NotImplementedError

    def run_chunk(self, chunk_id: str) -> dict[str, Any]:
        """Run one chunk job in this process (one Kubeflow pod of the fan-out)."""
        raise NotImplementedError

    def run_shard(self, shard: int, shards: int) -> dict[str, Any]:
        """Run a shard of the chunk jobs on this process's pool (one pod of the fan-out)."""
        raise DatasetUsageError(f"{self.kind} task '{self.name}' has no chunk jobs: run it whole")

    def publish(self) -> dict[str, Any]:
        """Publish the output from the completed chunks (the Kubeflow fan-in step)."""
        raise NotImplementedError

    def _job(self, phase: str, chunk_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def _output(self, checksum: str, objects: int | None, resumed: int) -> dict[str, Any]:
        """The op's JSON output. ``objects`` is None when the output was already up to date."""
        out = self.out
        return {
            "dataset": out.directory,
            "ref": out.ref,
            "version": out.version,
            "checksum": checksum,
            "objects": objects,
            "chunks": out.chunkCount,
            "resumed": resumed,
        }

    def _publish_output(self, results: dict[str, dict[str, Any]], records: Records) -> str:
        out = self.out
        checksums = {cid: results[cid]["sha1"] for cid in out.chunk_ids()}
        checksum = out.publish(
            checksums,
            self.token,
            records.creation_time(self.creationTime),
            meta={"codeDigest": self.code_fingerprint},
            dependencies=[*self.inputs, *self.loaded],
        )
        records.clear()
        return checksum

    # -- reading inputs (in workers) -------------------------------------------------------------
    def _joined(self, chunk_id: str) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        """(id, objects with that id from every input) for one chunk of the inputs."""
        first, *others = self._readers
        if not others:  # one input: no join, and the id is only worked out for an error
            for obj in first.read_chunk(chunk_id):
                yield LazyId(obj), (obj,)
            return
        lookups = [{o.get_id(): o for o in r.read_chunk(chunk_id)} for r in others]
        for obj in first.read_chunk(chunk_id):
            oid = obj.get_id()
            row = [obj]
            for k, lookup in enumerate(lookups, start=1):
                match = lookup.pop(oid, None)
                if match is None:
                    raise TaskJobError(
                        f"task '{self.name}' failed on chunk {chunk_id}, object id {oid!r}: input "
                        f"{self.inputs[k]!r} has no object with that id"
                    )
                row.append(match)
            yield oid, tuple(row)
        for k, lookup in enumerate(lookups, start=1):
            if lookup:
                extra = next(iter(lookup))
                raise TaskJobError(
                    f"task '{self.name}' failed on chunk {chunk_id}, object id {extra!r}: it is in "
                    f"input {self.inputs[k]!r} but not in {self.inputs[0]!r}"
                )

    def _failed(self, chunk_id: str, oid: Any, exc: BaseException) -> TaskJobError:
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
        return TaskJobError(
            f"task '{self.name}' failed on chunk {chunk_id}, object id {oid!r}: "
            f"{type(exc).__name__}: {exc}\n{detail}"
        )


def _rebuild(cls: type[BaseTask], state: dict[str, Any]) -> BaseTask:
    task = cls.__new__(cls)
    task.__dict__.update(state)
    return task


class LazyId:
    """An object's id, computed only when an error message shows it."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __repr__(self) -> str:
        return repr(self.obj.get_id())


def _same(a: Dataset, b: Dataset) -> bool:
    where = operator.attrgetter("project", "branch", "name", "version")
    return where(a) == where(b) and repr(a.location) == repr(b.location)


class ChunkTask(BaseTask):
    """Tasks whose inputs are read chunk by chunk (all inputs with one chunk count)."""

    def _check(self) -> None:
        super()._check()
        if not self.inputDatasets:
            raise DatasetUsageError(f"task '{self.name}' needs at least one input dataset")
        counts = {ds.chunkCount for ds in self.inputDatasets}
        if len(counts) > 1:
            raise DatasetUsageError(
                f"task '{self.name}': input datasets have different chunk counts "
                f"({sorted(counts)}); objects are matched chunk by chunk, so they must agree"
            )

    @property
    def input_chunk_ids(self) -> list[str]:
        return self.inputs[0].chunk_ids()

    #: the phase a fan-out pod runs its chunk jobs in
    _fan_phase = "chunks"

    def kfp_chunk_ids(self) -> list[str]:
        return self.input_chunk_ids

    def _progress(self, records: Records) -> tuple[dict[str, Any], list[str]]:
        """(records of the finished chunk jobs, the chunk ids still to run)."""
        raise NotImplementedError

    def run_shard(self, shard: int, shards: int) -> dict[str, Any]:
        """Run the chunk jobs of every ``shards``-th input chunk from ``shard`` on this
        process's pool (one Kubeflow pod of the fan-out); finished ones are not run again."""
        ids = self.input_chunk_ids[shard::shards]
        where = f"{shard}/{shards}"
        if self._plan() is not None:
            return {"shard": where, "chunks": ids, "count": 0, "skipped": True}
        records = Records(self.out, self.token)
        records.creation_time(self.creationTime)
        finished, todo = self._progress(records)
        done = {cid: finished[cid] for cid in ids if cid in finished}
        todo = [cid for cid in todo if cid in set(ids)]
        done.update(self._run_phase(self._fan_phase, todo, prepare=True))
        return {
            "shard": where,
            "chunks": ids,
            "count": objects_of(done),
            "resumed": len(ids) - len(todo),
            "sha1": {cid: done[cid].get("sha1") for cid in ids},
        }


def _shard(step: str, task: str) -> tuple[int, int]:
    """``"shard:3/16"`` -> ``(3, 16)``, or a clear error."""
    text = step.split(":", 1)[1]
    k, sep, n = text.partition("/")
    if sep and k.isdigit() and n.isdigit() and 0 <= int(k) < int(n):
        return int(k), int(n)
    raise DatasetUsageError(
        f"task '{task}': step {step!r} is not shard:<k>/<n> with 0 <= k < n (e.g. shard:0/16)"
    )


def objects_of(results: dict[str, dict[str, Any]]) -> int:
    return sum(int(r.get("count", 0)) for r in results.values())
