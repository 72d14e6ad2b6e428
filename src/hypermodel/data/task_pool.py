"""The process pool a task's chunk jobs run on, and the state each worker process keeps.

The pool's initializer prepares the task once per worker (``init()`` run, loaded inputs read)
and keeps it in ``PREPARED`` under the task's token; each job then looks it up. That dict is
per-process by nature: it is set inside worker processes only, and the parent never reads it.
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..context import OpContext, enter_context, maybe_context
from .jobs import TaskJobError

if TYPE_CHECKING:
    from .task_base import BaseTask

PREPARED: dict[str, Any] = {}


class _Broken:
    """Stands in for a task whose preparation failed: every job of the worker reports why."""

    def __init__(self, message: str) -> None:
        self.message = message

    def _job(self, phase: str, chunk_id: str) -> dict[str, Any]:
        raise TaskJobError(self.message)


def _worker_init(task: BaseTask, prepare: bool, ctx: OpContext | None) -> None:
    if ctx is not None:  # a spawned worker: the op's context, as a forked one inherits it
        enter_context(ctx)
    try:
        PREPARED[task.token] = task._prepared() if prepare else task
    except Exception as exc:  # reported by every job of this worker, not as a broken pool
        PREPARED[task.token] = _Broken(str(exc))


def worker_job(token: str, phase: str, chunk_id: str) -> dict[str, Any]:
    """A chunk job, run in a worker process by the prepared task of ``token``."""
    return PREPARED[token]._job(phase, chunk_id)  # type: ignore[no-any-return]


def task_pool(task: BaseTask, workers: int, prepare: bool) -> ProcessPoolExecutor:
    """Worker processes for ``task`` (forked on Linux, so they inherit generated code)."""
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx = maybe_context()
    handed = None if method == "fork" or ctx is None else replace(ctx, _storage=None)
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_worker_init,
        initargs=(task, prepare, handed),
    )


def no_pool(workers: int) -> ProcessPoolExecutor:
    raise AssertionError("one worker runs in this process")
