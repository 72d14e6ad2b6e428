"""The run-all scheduler over a process pool.

An op starts the moment its inputs exist, whether they came from a running op, the cache or
the run being resumed. A failed attempt is retried after the op's backoff without holding up
the other ops: the retry is due at a time, and the scheduler waits for the first of "an op
finished" and "a retry is due". On Ctrl-C it ends the workers and marks what was unfinished.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import multiprocessing
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from .execute import Attempt, execute, init_worker, warm
from .results import (
    CANCELLED,
    DONE,
    FAILED,
    PENDING,
    RETRYING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    UNFINISHED,
    TaskResult,
    attempt_failed,
)

if TYPE_CHECKING:
    from ..dsl.pipeline import Task
    from .runner import RunState

log = logging.getLogger("hypermodel.local")


def make_pool(workers: int) -> ProcessPoolExecutor:
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=init_worker,
    )
    for f in [pool.submit(warm) for _ in range(workers)]:  # start every worker before threads exist
        f.result()
    return pool


def terminate(pool: ProcessPoolExecutor) -> None:
    """End the pool's worker processes now (an op may be mid-attempt in any of them)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)


@contextlib.contextmanager
def no_interrupts() -> Iterator[None]:
    """A second Ctrl-C must not break the cleanup of the first (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def attempt_entry(number: int, status: str, duration: float, started: float) -> dict[str, Any]:
    return {
        "attempt": number,
        "status": status,
        "duration": round(duration, 6),
        "started": round(started, 6),
    }


class Scheduler:
    """Runs every op of ``state``'s pipeline once its upstream ops are done."""

    def __init__(self, state: RunState, report: Any) -> None:
        self.state = state
        self.report = report
        self.results = state.results
        self.pool: ProcessPoolExecutor | None = None
        self.running: dict[Future[Attempt], Task] = {}
        self.due: list[tuple[float, int, str]] = []  # (monotonic time, tie-break, task)
        self.args: dict[str, dict[str, Any]] = {}
        self.launched: dict[str, float] = {}
        self.errors: dict[str, str] = {}  # the traceback of a task waiting for its retry
        self.stopped = False
        self._seq = itertools.count()

    def run(self) -> None:
        while True:
            self.launch_due()
            self.start_ready()
            if not (self.running or self.due):
                break
            self.wait_once()
        for result in self.results.values():
            if result.status == PENDING:
                result.status = SKIPPED
                self.report.task_changed(result)

    def ready(self) -> list[Task]:
        done = {n for n, r in self.results.items() if r.status in DONE}
        return [
            t
            for t in self.state.pipeline
            if self.results[t.name].status == PENDING and all(d in done for d in t.dependencies())
        ]

    def start_ready(self) -> None:
        """Start ops until none is ready: a cache hit makes its dependents ready at once."""
        while not self.stopped:
            tasks = self.ready()
            if not tasks:
                return
            for task in tasks:
                self.start(task)
                if self.stopped:
                    return

    def start(self, task: Task) -> None:
        args = self.args[task.name] = self.state.bind(task)
        if self.state.try_cache(task, args):
            self.report.task_changed(self.results[task.name])
        else:
            self.launch(task)

    def launch(self, task: Task) -> None:
        result = self.results[task.name]
        result.attempts += 1
        result.status = RUNNING
        self.launched[task.name] = time.time()
        self.report.task_changed(result)
        ctx, env = self.state.context(task, result.attempts), self.state.env(task)
        args = self.args[task.name]
        if self.pool is None or task.op.runs_in_parent:
            self.finish(task, execute(task.op, args, ctx, env))
        else:
            self.running[self.pool.submit(execute, task.op, args, ctx, env)] = task

    def launch_due(self) -> None:
        now = time.monotonic()
        while self.due and self.due[0][0] <= now and not self.stopped:
            _, _, name = heapq.heappop(self.due)
            self.launch(self.state.pipeline.task(name))

    def wait_once(self) -> None:
        """Until an op finishes or the next retry is due, whichever comes first."""
        timeout = max(0.0, self.due[0][0] - time.monotonic()) if self.due else None
        if not self.running:
            time.sleep(timeout or 0.0)
            return
        done, _ = wait(list(self.running), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            self.finish(self.running.pop(future), future.result())

    def finish(self, task: Task, attempt: Attempt) -> None:
        result = self.results[task.name]
        result.duration += attempt.duration
        record(result, attempt)
        if attempt.ok:
            self.state.succeeded(task, attempt)
            if result.status == FAILED:  # its output could not be stored: stop as a failure
                self.stop()
        else:
            self.failed(task, attempt)
        self.report.task_changed(result)

    def failed(self, task: Task, attempt: Attempt) -> None:
        result = self.results[task.name]
        retry = result.attempts <= task.retries and not self.stopped
        delay = task.op.backoff_delay(result.attempts) if retry else None
        attempt_failed(self.report, result, result.attempts, attempt.summary, delay)
        if delay is None:
            result.status, result.error = FAILED, attempt.error
            self.stop()
            return
        result.status = RETRYING
        self.errors[task.name] = attempt.error
        heapq.heappush(self.due, (time.monotonic() + delay, next(self._seq), task.name))

    def stop(self) -> None:
        """An op out of attempts stops the run: nothing new starts, waiting retries are dropped
        (those ops failed too); running ops finish."""
        self.stopped = True
        for _, _, name in self.due:
            result = self.results[name]
            result.status, result.error = FAILED, self.errors.pop(name, "")
            self.report.task_changed(result)
        self.due.clear()

    def cancel(self) -> list[str]:
        """Ctrl-C: end the workers and mark every unfinished op cancelled. Returns the ops that
        were running."""
        if self.pool is not None:
            terminate(self.pool)
        now, running = time.time(), []
        for result in self.results.values():
            if result.status not in UNFINISHED:
                continue
            if result.status == RUNNING:
                running.append(result.name)
                started = self.launched.get(result.name, now)
                entry = attempt_entry(result.attempts, CANCELLED, now - started, started)
                result.history.append(entry)
                result.duration += now - started
            result.status = CANCELLED
        self.due.clear()
        return running


def record(result: TaskResult, attempt: Attempt) -> None:
    """Add ``attempt`` to the task's attempt history."""
    status = SUCCEEDED if attempt.ok else FAILED
    entry = attempt_entry(result.attempts, status, attempt.duration, attempt.started)
    if not attempt.ok:
        entry["error"] = attempt.summary
    result.history.append(entry)


def mark_tracked_stopped(state: RunState, names: list[str]) -> None:
    """The tracked runs of ops ended mid-attempt say so: their workers could not. Never raises."""
    try:
        from ..tracking.run import WRITE, Run
        from ..tracking.store import run_prefix

        storage = state.app.storage()
        for name in names:
            run_id = f"{state.run_id}.{name}"
            if not storage.exists(f"{run_prefix(run_id)}/run.json"):
                continue  # never started: nothing was tracked
            run = Run.open_owned(run_id, state.app.name, storage, {}, owned=True, start_timeout=5)
            if run.mode == WRITE:
                last = state.results[name].history[-1:] or [{}]
                run.set_state(
                    "stopped",
                    error="cancelled: the run was interrupted",
                    attempt=state.results[name].attempts,
                    duration=last[0].get("duration"),
                )
            run.close()
    except Exception as exc:  # tracking never stands in the way of a cancel
        log.warning("tracking: could not mark cancelled ops: %s: %s", type(exc).__name__, exc)
