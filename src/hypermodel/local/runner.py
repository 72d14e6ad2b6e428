"""Run one op, or every op of a pipeline in dependency order over a process pool."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..context import OpContext
from ..dsl.pipeline import Pipeline, PipelineParam, Task
from ..dsl.types import NO_DEFAULT, check_value
from ..errors import NotFoundError, OpFailedError, UsageError
from ..redact import redact
from .execute import Attempt, execute, warm
from .store import OutputStore, cache_key

if TYPE_CHECKING:
    from ..app import HmlApp

SUCCEEDED, FAILED, SKIPPED, CACHED, PENDING, RUNNING = (
    "succeeded",
    "failed",
    "skipped",
    "cached",
    "pending",
    "running",
)


@dataclass
class TaskResult:
    name: str
    op: str
    status: str = PENDING
    attempts: int = 0
    duration: float = 0.0
    output: Any = None
    error: str = ""
    cache_key: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def cache_hit(self) -> bool:
        return self.status == CACHED


@dataclass
class RunResult:
    run_id: str
    pipeline: str
    params: dict[str, Any]
    tasks: dict[str, TaskResult]
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.status in (SUCCEEDED, CACHED) for t in self.tasks.values())

    @property
    def status(self) -> str:
        return SUCCEEDED if self.ok else FAILED

    @property
    def failed(self) -> TaskResult | None:
        return next((t for t in self.tasks.values() if t.status == FAILED), None)

    @property
    def outputs(self) -> dict[str, Any]:
        return {n: t.output for n, t in self.tasks.items() if t.status in (SUCCEEDED, CACHED)}

    def raise_for_failure(self) -> RunResult:
        failed = self.failed
        if failed is not None:
            raise OpFailedError(failed.name, failed.attempts, failed.error)
        return self


class Reporter(Protocol):
    def run_started(
        self, run_id: str, pipeline: Pipeline, results: dict[str, TaskResult]
    ) -> None: ...
    def task_changed(self, result: TaskResult) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


class _Silent:
    def run_started(self, run_id: str, pipeline: Pipeline, results: dict[str, TaskResult]) -> None:
        pass

    def task_changed(self, result: TaskResult) -> None:
        pass

    def run_finished(self, result: RunResult) -> None:
        pass


def new_run_id(pipeline: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{pipeline}-{stamp}-{secrets.token_hex(3)}"


def resolve_params(pipeline: Pipeline, given: dict[str, Any]) -> dict[str, Any]:
    """Pipeline parameters with defaults filled in; unknown, missing or mistyped ones raise."""
    values: dict[str, Any] = {}
    for key in given:
        if pipeline.param(key) is None:
            known = ", ".join(p.name for p in pipeline.params) or "none"
            raise UsageError(
                f"pipeline '{pipeline.name}': unknown parameter '{key}' (parameters: {known})"
            )
    for p in pipeline.params:
        if p.name in given:
            values[p.name] = check_value(
                given[p.name], p.type, f"pipeline '{pipeline.name}' parameter '{p.name}'"
            )
        elif p.required:
            raise UsageError(
                f"pipeline '{pipeline.name}': parameter '{p.name}' is required ({p.option})"
            )
        else:
            values[p.name] = p.default
    return values


def bind(task: Task, params: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """Concrete arguments for ``task``: literals, pipeline parameters and upstream outputs."""
    args: dict[str, Any] = {}
    for name, value in task.arguments.items():
        if isinstance(value, Task):
            value = outputs[value.name]
        elif isinstance(value, PipelineParam):
            value = params[value.name]
        param = task.op.param(name)
        args[name] = check_value(
            value, param.type if param else None, f"op '{task.name}' argument '{name}'"
        )
    return args


def _workdir(app: HmlApp, run_id: str, task: str) -> Path:
    if app.settings.is_local:
        return app.settings.local_root / "work" / run_id / task
    base = Path(os.environ.get("HML_WORKDIR", "/tmp/hml-work"))
    return base / run_id / task


class _Run:
    """State of one pipeline run in the parent process."""

    def __init__(
        self,
        app: HmlApp,
        pipeline: Pipeline,
        params: dict[str, Any],
        run_id: str,
        use_cache: bool,
        force: bool,
        kfp_ids: tuple[str | None, str | None] = (None, None),
    ) -> None:
        self.app = app
        self.kfp_run_id, self.kfp_task_id = kfp_ids
        self.pipeline = pipeline
        self.params = params
        self.run_id = run_id
        self.use_cache = use_cache
        self.force = force
        self.store = OutputStore(app.storage())
        self.results = {t.name: TaskResult(t.name, t.op.name) for t in pipeline}
        self.outputs: dict[str, Any] = {}
        self.keys: dict[str, str] = {}

    def context(self, task: Task, attempt: int) -> OpContext:
        return OpContext(
            app=self.app.name,
            pipeline=self.pipeline.name,
            task=task.name,
            op=task.op.name,
            run_id=self.run_id,
            attempt=attempt,
            root=self.app.settings.root,
            workdir=_workdir(self.app, self.run_id, task.name),
            output_key=f"runs/{self.run_id}/outputs/{task.name}.json",
            force=self.force,
            kfp_run_id=self.kfp_run_id,
            kfp_task_id=self.kfp_task_id,
            params=dict(self.params),
        )

    def env(self, task: Task) -> dict[str, str]:
        cfg = self.app.pipelines.container_config(self.pipeline, task)
        app_image = f"image={self.app.image_url}"
        self.results[task.name].notes = [n for n in cfg.cluster_only() if n != app_image]
        return {**cfg.env, "HML_ROOT": self.app.settings.root, "HML_RUN_ID": self.run_id}

    def try_cache(self, task: Task, args: dict[str, Any]) -> bool:
        upstream = {d: self.outputs.get(d) for d in task.dependencies()}
        key = cache_key(task.op.code_fingerprint, args, upstream)
        self.keys[task.name] = key
        if not (task.cache and self.use_cache):
            return False
        hit = self.store.cached(task.op.name, key)
        if hit is None:
            return False
        result = self.results[task.name]
        result.status, result.output, result.cache_key = CACHED, hit["output"], key
        self.outputs[task.name] = hit["output"]
        self.store.save(
            self.run_id,
            self.pipeline.name,
            task.name,
            hit["output"],
            {"cache_key": key, "cached_from": hit.get("run_id")},
        )
        return True

    def succeeded(self, task: Task, attempt: Attempt) -> None:
        result = self.results[task.name]
        result.status, result.output, result.duration = (
            SUCCEEDED,
            attempt.output,
            result.duration + attempt.duration,
        )
        key = self.keys.get(task.name, "")
        result.cache_key = key
        self.outputs[task.name] = attempt.output
        self.store.save(
            self.run_id,
            self.pipeline.name,
            task.name,
            attempt.output,
            {"cache_key": key, "attempts": result.attempts},
        )
        if task.cache and key:
            self.store.put_cache(task.op.name, key, attempt.output, self.run_id)

    def record(self, started: float, finished: bool) -> None:
        self.store.save_run(
            self.run_id,
            {
                "app": self.app.name,
                "pipeline": self.pipeline.name,
                "run_id": self.run_id,
                "params": redact(self.params),
                "started": started,
                "finished": time.time() if finished else None,
                "status": (
                    SUCCEEDED
                    if all(r.status in (SUCCEEDED, CACHED) for r in self.results.values())
                    else FAILED
                )
                if finished
                else RUNNING,
                "tasks": [
                    {
                        "name": r.name,
                        "op": r.op,
                        "status": r.status,
                        "attempts": r.attempts,
                        "duration": round(r.duration, 6),
                        "cache_key": r.cache_key,
                    }
                    for r in self.results.values()
                ],
            },
        )


def _pool(workers: int) -> ProcessPoolExecutor:
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))
    for f in [pool.submit(warm) for _ in range(workers)]:  # start every worker before threads exist
        f.result()
    return pool


def run_pipeline(
    app: HmlApp,
    pipeline: Pipeline,
    params: dict[str, Any],
    *,
    workers: int | None = None,
    cache: bool = True,
    force: bool = False,
    reporter: Reporter | None = None,
    run_id: str | None = None,
) -> RunResult:
    """Every op in dependency order; independent ops run in parallel on ``workers`` processes.

    ``workers=0`` runs every op in this process (handy under a debugger).
    """
    values = resolve_params(pipeline, params)
    report = reporter or _Silent()
    state = _Run(app, pipeline, values, run_id or new_run_id(pipeline.name), cache, force)
    if workers is None:
        workers = app.settings.workers or min(os.cpu_count() or 1, max(1, len(pipeline.tasks)))
    started = time.time()
    t0 = time.perf_counter()
    for task in pipeline:
        state.env(task)  # computes the 'not applied locally' notes up front
    pool = (
        _pool(workers) if workers > 0 and any(not t.op.runs_in_parent for t in pipeline) else None
    )
    report.run_started(state.run_id, pipeline, state.results)
    state.record(started, finished=False)
    try:
        _schedule(state, pool, report)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    state.record(started, finished=True)
    result = RunResult(state.run_id, pipeline.name, values, state.results, time.perf_counter() - t0)
    report.run_finished(result)
    return result


def _schedule(state: _Run, pool: ProcessPoolExecutor | None, report: Reporter) -> None:
    pipeline, results = state.pipeline, state.results
    running: dict[Future[Attempt], tuple[Task, dict[str, Any]]] = {}
    stopped = False

    def ready() -> list[Task]:
        done = {n for n, r in results.items() if r.status in (SUCCEEDED, CACHED)}
        return [
            t
            for t in pipeline
            if results[t.name].status == PENDING and all(d in done for d in t.dependencies())
        ]

    def launch(task: Task, args: dict[str, Any]) -> None:
        result = results[task.name]
        result.attempts += 1
        result.status = RUNNING
        report.task_changed(result)
        ctx, env = state.context(task, result.attempts), state.env(task)
        if pool is None or task.op.runs_in_parent:
            finish(task, args, execute(task.op, args, ctx, env))
        else:
            running[pool.submit(execute, task.op, args, ctx, env)] = (task, args)

    def finish(task: Task, args: dict[str, Any], attempt: Attempt) -> None:
        nonlocal stopped
        result = results[task.name]
        if attempt.ok:
            state.succeeded(task, attempt)
        elif result.attempts <= task.retries and not stopped:
            result.duration += attempt.duration
            result.status = PENDING  # rescheduled below
            launch(task, args)
            return
        else:
            result.status, result.error = FAILED, attempt.error
            result.duration += attempt.duration
            stopped = True
        report.task_changed(result)

    while True:
        if not stopped:
            for task in ready():
                if results[task.name].status != PENDING:
                    continue
                args = bind(task, state.params, state.outputs)
                if state.try_cache(task, args):
                    report.task_changed(results[task.name])
                    continue
                launch(task, args)
                if stopped:
                    break
        if not running:
            if stopped or not ready():
                break
            continue
        done, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for fut in done:
            task, args = running.pop(fut)
            finish(task, args, fut.result())
    for result in results.values():
        if result.status in (PENDING, RUNNING):
            result.status = SKIPPED
            report.task_changed(result)


def stored_upstream(app: HmlApp, pipeline: Pipeline, task: Task, name: str) -> Any:
    """The newest stored output of the task that feeds ``task``'s argument ``name``."""
    source = task.arguments[name]
    assert isinstance(source, Task)
    try:
        return OutputStore(app.storage()).latest(pipeline.name, source.name)["output"]
    except NotFoundError:
        raise UsageError(
            f"op '{task.name}' argument '{name}' comes from op '{source.name}', which has no stored "
            f"output yet: run `{app.package_entrypoint} pipelines {pipeline.name} run {source.name}` "
            f"first, or pass --{name.replace('_', '-')}"
        ) from None


def default_arguments(
    app: HmlApp, pipeline: Pipeline, task: Task, given: dict[str, Any]
) -> dict[str, Any]:
    """Arguments for a single op run: given values, else the pipeline's binding, else op defaults."""
    args: dict[str, Any] = {}
    for p in task.op.params:
        where = f"op '{task.name}' argument '{p.name}'"
        if p.name in given:
            args[p.name] = check_value(given[p.name], p.type, where)
            continue
        bound = task.arguments.get(p.name, p.default)
        if isinstance(bound, Task):
            args[p.name] = check_value(stored_upstream(app, pipeline, task, p.name), p.type, where)
        elif isinstance(bound, PipelineParam):
            if bound.default is NO_DEFAULT:
                raise UsageError(
                    f"{where} is required: pass {p.option} (pipeline parameter '{bound.name}' has no default)"
                )
            args[p.name] = bound.default
        elif p.name in task.arguments or not p.required:
            args[p.name] = bound
        else:
            raise UsageError(f"{where} is required: pass {p.option}")
    return args


def run_single(
    app: HmlApp,
    pipeline: Pipeline,
    task_name: str,
    given: dict[str, Any],
    *,
    run_id: str | None = None,
    cache: bool = True,
    force: bool = False,
    retries: int | None = None,
    reporter: Reporter | None = None,
    kfp_task_id: str | None = None,
) -> TaskResult:
    """Run one op of a pipeline in this process (what a Kubeflow pod does), store its output.

    ``kfp_task_id`` (with ``run_id``, the Kubeflow run's id) is set inside a Kubeflow pod: the
    op's context and its tracking run name the Kubeflow run and task."""
    task = pipeline.task(task_name)
    report = reporter or _Silent()
    args = default_arguments(app, pipeline, task, given)
    params = {p.name: p.default for p in pipeline.params if not p.required}
    kfp_ids = (run_id, kfp_task_id) if kfp_task_id else (None, None)
    state = _Run(app, pipeline, params, run_id or new_run_id(pipeline.name), cache, force, kfp_ids)
    state.results = {task.name: state.results[task.name]}
    for dep in task.dependencies():  # upstream outputs, as far as known, feed the cache key
        try:
            state.outputs[dep] = state.store.latest(pipeline.name, dep)["output"]
        except NotFoundError:
            state.outputs[dep] = None
    result = state.results[task.name]
    if state.try_cache(task, args):
        report.task_changed(result)
        return result
    limit = task.retries if retries is None else retries
    env = state.env(task)
    while True:
        result.attempts += 1
        result.status = RUNNING
        report.task_changed(result)
        attempt = execute(task.op, args, state.context(task, result.attempts), env)
        result.duration += attempt.duration
        if attempt.ok:
            result.duration -= attempt.duration  # succeeded() adds it
            state.succeeded(task, attempt)
            break
        if result.attempts > limit:
            result.status, result.error = FAILED, attempt.error
            break
    report.task_changed(result)
    return result
