"""Run one op, or every op of a pipeline in dependency order over a process pool."""

from __future__ import annotations

import logging
import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..context import OpContext
from ..dsl.params import resolve_params
from ..dsl.pipeline import Pipeline, PipelineParam, Task
from ..dsl.types import NO_DEFAULT, check_value
from ..errors import NotFoundError, StorageError, UsageError
from ..redact import redact
from .execute import Attempt, execute
from .results import (
    CACHED,
    CANCELLED,
    DONE,
    FAILED,
    PENDING,
    RESUMED,
    RETRYING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    Reporter,
    RunCancelled,
    RunResult,
    Silent,
    TaskResult,
    attempt_failed,
)
from .schedule import Scheduler, make_pool, mark_tracked_stopped, no_interrupts, record
from .spec import LocalApp, local_app
from .store import OutputNotStoredError, OutputStore, cache_key

if TYPE_CHECKING:
    from ..app import HmlApp

log = logging.getLogger("hypermodel.local")

__all__ = [
    "CACHED",
    "CANCELLED",
    "DONE",
    "FAILED",
    "PENDING",
    "RESUMED",
    "RETRYING",
    "RUNNING",
    "SKIPPED",
    "SUCCEEDED",
    "LocalApp",
    "Reporter",
    "RunCancelled",
    "RunState",
    "RunResult",
    "TaskResult",
    "default_arguments",
    "new_run_id",
    "resolve_params",
    "run_pipeline",
    "run_single",
]


def new_run_id(pipeline: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{pipeline}-{stamp}-{secrets.token_hex(3)}"


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


def _workdir(app: LocalApp, run_id: str, task: str) -> Path:
    if app.settings.is_local:
        return app.settings.local_root / "work" / run_id / task
    base = Path(os.environ.get("HML_WORKDIR", "/tmp/hml-work"))
    return base / run_id / task


class RunState:
    """State of one pipeline run in the parent process."""

    def __init__(
        self,
        app: LocalApp,
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
        self.results = {
            t.name: TaskResult(t.name, t.op.name, max_attempts=t.retries + 1) for t in pipeline
        }
        self.outputs: dict[str, Any] = {}
        self.keys: dict[str, str] = {}
        self.resumed_from: str | None = None
        self.cancelled = False

    def bind(self, task: Task) -> dict[str, Any]:
        return bind(task, self.params, self.outputs)

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
            use_cache=self.use_cache,
            kfp_run_id=self.kfp_run_id,
            kfp_task_id=self.kfp_task_id,
            params=dict(self.params),
            settings=self.app.settings,
        )

    def env(self, task: Task) -> dict[str, str]:
        """The env vars the op's code and its child processes see (the app's and the op's);
        the bucket, the run and the settings reach hypermodel through the op context."""
        cfg = self.app.container_config(self.pipeline, task)
        app_image = f"image={self.app.image_url}"
        self.results[task.name].notes = [n for n in cfg.cluster_only() if n != app_image]
        return dict(cfg.env)

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
        """Store the output of an op that finished. If the bucket still refuses it after the
        retries, the output is kept in the op's workdir and the op fails with one line saying
        where (its work is not lost, and nothing downstream starts without it)."""
        result = self.results[task.name]
        key = self.keys.get(task.name, "")
        result.cache_key = key
        try:
            self.store.save(
                self.run_id,
                self.pipeline.name,
                task.name,
                attempt.output,
                {"cache_key": key, "attempts": result.attempts},
                keep_in=_workdir(self.app, self.run_id, task.name),
            )
        except OutputNotStoredError as exc:
            result.status, result.output, result.error = FAILED, attempt.output, str(exc)
            if result.history:
                result.history[-1]["error"] = "output not stored"
            return
        result.status, result.output = SUCCEEDED, attempt.output
        self.outputs[task.name] = attempt.output
        if task.cache and key:
            try:
                self.store.put_cache(task.op.name, key, attempt.output, self.run_id)
            except StorageError as exc:  # the cache only saves time: the output is stored
                log.warning("op '%s': its output was not cached: %s", task.name, exc)

    def status(self, finished: bool) -> str:
        if not finished:
            return RUNNING
        if self.cancelled:
            return CANCELLED
        return SUCCEEDED if all(r.status in DONE for r in self.results.values()) else FAILED

    def record(self, started: float, finished: bool) -> None:
        extra = {"resumed_from": self.resumed_from} if self.resumed_from else {}
        self.store.save_run(
            self.run_id,
            {
                "app": self.app.name,
                "pipeline": self.pipeline.name,
                "run_id": self.run_id,
                **extra,
                "params": redact(self.params),
                "started": started,
                "finished": time.time() if finished else None,
                "status": self.status(finished),
                "tasks": [_task_record(r) for r in self.results.values()],
            },
        )


def _task_record(r: TaskResult) -> dict[str, Any]:
    entry = {
        "name": r.name,
        "op": r.op,
        "status": r.status,
        "attempts": r.attempts,
        "duration": round(r.duration, 6),
        "cache_key": r.cache_key,
        "attempt_history": r.history,
    }
    if r.resumed_from:
        entry["resumed_from"] = r.resumed_from
    return entry


def run_pipeline(
    app: HmlApp | LocalApp,
    pipeline: Pipeline,
    params: dict[str, Any],
    *,
    workers: int | None = None,
    cache: bool = True,
    force: bool = False,
    reporter: Reporter | None = None,
    run_id: str | None = None,
    resume: str | None = None,
) -> RunResult:
    """Every op in dependency order; independent ops run in parallel on ``workers`` processes.

    ``workers=0`` runs every op in this process (handy under a debugger). ``resume`` names an
    earlier run of this pipeline: its ops that succeeded are taken from its stored outputs, the
    rest run again, with its parameters. Ctrl-C ends the workers, records the run as cancelled
    and raises :class:`RunCancelled`.
    """
    from .resume import load_previous, resume_params, take_outputs

    app = local_app(app)
    previous = load_previous(app, pipeline, resume) if resume else None
    values = (
        resume_params(pipeline, previous, params)
        if previous is not None
        else resolve_params(pipeline, params)
    )
    report = reporter or Silent()
    state = RunState(app, pipeline, values, run_id or new_run_id(pipeline.name), cache, force)
    if previous is not None:
        take_outputs(state, previous)
    if workers is None:
        workers = app.settings.workers or min(os.cpu_count() or 1, max(1, len(pipeline.tasks)))
    for task in pipeline:
        state.env(task)  # computes the 'not applied locally' notes up front
    return _run(state, report, workers)


def _run(state: RunState, report: Reporter, workers: int) -> RunResult:
    started, t0 = time.time(), time.perf_counter()
    scheduler = Scheduler(state, report)
    try:
        to_run = [t for t in state.pipeline if state.results[t.name].status == PENDING]
        if workers > 0 and any(not t.op.runs_in_parent for t in to_run):
            scheduler.pool = make_pool(workers)
        report.run_started(state.run_id, state.pipeline, state.results)
        for task_result in state.results.values():
            if task_result.status == RESUMED:
                report.task_changed(task_result)
        state.record(started, finished=False)
        scheduler.run()
    except KeyboardInterrupt:
        with no_interrupts():  # the cleanup of the first Ctrl-C runs to its end
            cancelled = _cancelled(state, scheduler, report, started, t0)
            _shutdown(scheduler)
        raise cancelled from None
    finally:
        _shutdown(scheduler)
    try:
        state.record(started, finished=True)
    except StorageError as exc:  # the ops' outputs are stored (or kept): report, do not lose
        log.warning("run %s: its final record was not written: %s", state.run_id, exc)
    result = _result(state, t0)
    report.run_finished(result)
    return result


def _shutdown(scheduler: Scheduler) -> None:
    pool, scheduler.pool = scheduler.pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _result(state: RunState, t0: float) -> RunResult:
    return RunResult(
        state.run_id,
        state.pipeline.name,
        state.params,
        state.results,
        time.perf_counter() - t0,
        state.resumed_from,
    )


def _cancelled(
    state: RunState, scheduler: Scheduler, report: Reporter, started: float, t0: float
) -> RunCancelled:
    """Ctrl-C: end the workers, record the run and its unfinished ops as cancelled."""
    running = scheduler.cancel()
    state.cancelled = True
    for task_result in state.results.values():
        if task_result.status == CANCELLED:
            report.task_changed(task_result)
    state.record(started, finished=True)
    mark_tracked_stopped(state, running)
    result = _result(state, t0)
    report.run_finished(result)
    return RunCancelled(result, running)


def stored_upstream(app: LocalApp, pipeline: Pipeline, task: Task, name: str) -> Any:
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
    app: HmlApp | LocalApp, pipeline: Pipeline, task: Task, given: dict[str, Any]
) -> dict[str, Any]:
    """Arguments for a single op run: given values, else the pipeline's binding, else op defaults."""
    app = local_app(app)
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
    app: HmlApp | LocalApp,
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
    app = local_app(app)
    task = pipeline.task(task_name)
    report = reporter or Silent()
    args = default_arguments(app, pipeline, task, given)
    params = {p.name: p.default for p in pipeline.params if not p.required}
    kfp_ids = (run_id, kfp_task_id) if kfp_task_id else (None, None)
    state = RunState(
        app, pipeline, params, run_id or new_run_id(pipeline.name), cache, force, kfp_ids
    )
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
    result.max_attempts = limit + 1
    _attempts(state, task, args, limit, report)
    report.task_changed(result)
    return result


def _attempts(state: RunState, task: Task, args: dict[str, Any], limit: int, report: Any) -> None:
    """Attempt after attempt in this process, waiting out the backoff between them."""
    result = state.results[task.name]
    env = state.env(task)
    while True:
        result.attempts += 1
        result.status = RUNNING
        report.task_changed(result)
        attempt = execute(task.op, args, state.context(task, result.attempts), env)
        result.duration += attempt.duration
        record(result, attempt)
        if attempt.ok:
            state.succeeded(task, attempt)
            return
        delay = task.op.backoff_delay(result.attempts) if result.attempts <= limit else None
        attempt_failed(report, result, result.attempts, attempt.summary, delay)
        if delay is None:
            result.status, result.error = FAILED, attempt.error
            return
        result.status = RETRYING
        report.task_changed(result)
        time.sleep(delay)  # one op in this process: nothing else waits on it
