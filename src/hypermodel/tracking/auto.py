"""Every op execution is a run: the runner wraps each op attempt in ``op_scope``.

The run is named ``<pipeline run id>.<task>``: every attempt, and every process that works for
the op (pool workers, chunk jobs, a Kubeflow pod), writes to the same run without conflicts.
This is on the hot path of every op, so it does no git subprocess and no package scan: the
commit is read from .git files, and the rest is written in one flush at the start and one at
the end.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import orjson

from ..context import OpContext
from ..redact import redact
from . import identity
from .run import WRITE, Run, app_dir, current_run_scope

log = logging.getLogger("hypermodel.tracking")

_MAX_OUTPUT = 65536  # bytes of output kept in the run's events
_MAX_ERROR = 2000


def op_run_id(ctx: OpContext) -> str:
    return f"{ctx.run_id}.{ctx.task}"


@contextlib.contextmanager
def op_scope(ctx: OpContext) -> Iterator[Run | None]:
    run = _start(ctx)
    t0 = time.perf_counter()
    with current_run_scope(run):
        try:
            yield run
        except BaseException as exc:
            _finish(run, ctx, time.perf_counter() - t0, exc)
            raise
        else:
            _finish(run, ctx, time.perf_counter() - t0, None)


def _start(ctx: OpContext) -> Run | None:
    """Create (or, on a retry or in another process, attach to) the op's run. Never raises."""
    try:
        extra = {
            "kind": "op",
            "app": ctx.app,
            "pipeline": ctx.pipeline,
            "task": ctx.task,
            "op": ctx.op,
            "pipeline_run_id": ctx.run_id,
            "kfp_run_id": ctx.kfp_run_id,
            "kfp_task_id": ctx.kfp_task_id,
            "pipeline_params": redact(dict(ctx.params)),
            "git": identity.git_state(app_dir()),
        }
        now = time.time()
        first: list[dict[str, Any]] = [
            {"type": "state", "t": now, "state": "running", "attempt": ctx.attempt},
            {"type": "params", "t": now, "params": redact(dict(ctx.arguments))},
        ]
        if ctx.input_datasets:
            first.append(
                {
                    "type": "lineage",
                    "t": now,
                    "inputs": _datasets(ctx, ctx.input_datasets),
                    "outputs": [],
                }
            )
        # A new run gets its first events inside run.json: starting an op costs one write.
        run = Run.open_owned(
            op_run_id(ctx), ctx.app, _storage(ctx), {**extra, "events": first}, owned=True
        )
        if run.mode == WRITE and not run.created:  # a retry, or another process of this op
            for event in first:
                run._record(str(event.pop("type")), **{k: v for k, v in event.items() if k != "t"})
            run.flush()  # "running" is visible while the op runs
        return run
    except Exception as exc:  # tracking never fails an op
        log.warning("tracking: op '%s' is not tracked: %s: %s", ctx.task, type(exc).__name__, exc)
        return None


def _storage(ctx: OpContext) -> Any:
    try:
        return ctx.storage
    except Exception as exc:  # unreachable or misconfigured bucket: the run goes dry
        return exc


def _finish(run: Run | None, ctx: OpContext, duration: float, exc: BaseException | None) -> None:
    if run is None:
        return
    try:
        if run.mode == WRITE:
            if ctx.input_datasets or ctx.output_datasets:
                run._record(
                    "lineage",
                    inputs=_datasets(ctx, ctx.input_datasets),
                    outputs=_datasets(ctx, ctx.output_datasets),
                )
            if exc is None:
                _record_output(run, ctx)
                run._record(
                    "state", state="completed", attempt=ctx.attempt, duration=round(duration, 6)
                )
            else:
                # the type and message only: a traceback's locals and paths stay in the runner's log
                error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
                run._record(
                    "state",
                    state="failed",
                    error=error,
                    attempt=ctx.attempt,
                    duration=round(duration, 6),
                )
        run.close()
    except Exception as err:
        log.warning("tracking: op '%s': could not finish its run: %s", ctx.task, err)


def _record_output(run: Run, ctx: OpContext) -> None:
    """The output as an event (its top-level numbers read back as metrics), and as an artifact
    that points at the output record the runner stores anyway: no extra write, no wiring."""
    output = ctx.output
    if output is None:
        return
    data = orjson.dumps(output, option=orjson.OPT_SORT_KEYS)
    run._record(
        "artifact", name="output.json", step=None, key=ctx.output_key, size=None, kind="output"
    )
    run._record(
        "output",
        value=output if len(data) <= _MAX_OUTPUT else {"truncated": True, "size": len(data)},
    )


def _datasets(ctx: OpContext, checksums: list[str]) -> list[dict[str, Any]]:
    records: dict[str, dict[str, Any]] = getattr(ctx, "dataset_records", None) or {}
    out = []
    for checksum in checksums:
        record = records.get(checksum) or {}
        entry = {
            "kind": "dataset",
            "checksum": checksum,
            "name": record.get("name") or checksum[:12],
        }
        if record.get("project"):
            entry["project"] = record["project"]
        out.append(entry)
    return out
