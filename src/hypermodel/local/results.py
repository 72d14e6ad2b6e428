"""What a local run produces: task states, the run's result, and the reporter it talks to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import HypermodelError, OpFailedError

if TYPE_CHECKING:
    from ..dsl.pipeline import Pipeline

SUCCEEDED, FAILED, SKIPPED, CACHED, PENDING, RUNNING = (
    "succeeded",
    "failed",
    "skipped",
    "cached",
    "pending",
    "running",
)
#: waiting out the backoff before its next attempt
RETRYING = "retrying"
#: taken from the stored output of the run being resumed (``run-all --resume``)
RESUMED = "resumed"
#: unfinished when the run was interrupted (Ctrl-C)
CANCELLED = "cancelled"

#: states whose output downstream ops can use
DONE = (SUCCEEDED, CACHED, RESUMED)
#: states a run can be interrupted in
UNFINISHED = (PENDING, RUNNING, RETRYING)


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
    #: one entry per attempt: attempt, status, error (one line), duration, started (epoch)
    history: list[dict[str, Any]] = field(default_factory=list)
    #: the run whose stored output a resumed task took
    resumed_from: str = ""
    #: the first attempt and its retries
    max_attempts: int = 1

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
    resumed_from: str | None = None

    @property
    def ok(self) -> bool:
        return all(t.status in DONE for t in self.tasks.values())

    @property
    def status(self) -> str:
        if self.ok:
            return SUCCEEDED
        if any(t.status == CANCELLED for t in self.tasks.values()):
            return CANCELLED
        return FAILED

    @property
    def failed(self) -> TaskResult | None:
        return next((t for t in self.tasks.values() if t.status == FAILED), None)

    @property
    def outputs(self) -> dict[str, Any]:
        return {n: t.output for n, t in self.tasks.items() if t.status in DONE}

    def raise_for_failure(self) -> RunResult:
        failed = self.failed
        if failed is not None:
            raise OpFailedError(failed.name, failed.attempts, failed.error)
        return self


class RunCancelled(HypermodelError):
    """Ctrl-C during a run: its workers are ended and the run is recorded as cancelled."""

    exit_code = 130

    def __init__(self, result: RunResult, running: list[str]) -> None:
        ops = f" ({', '.join(running)})" if running else ""
        waiting = sum(t.status == CANCELLED for t in result.tasks.values()) - len(running)
        rest = f" and {waiting} not yet started" if waiting > 0 else ""
        plural = "" if len(running) == 1 else "s"
        super().__init__(
            f"interrupted: cancelled {len(running)} running op{plural}{ops}{rest}; "
            f"run {result.run_id} recorded as cancelled"
        )
        self.result = result
        self.running = running


class Reporter(Protocol):
    def run_started(
        self, run_id: str, pipeline: Pipeline, results: dict[str, TaskResult]
    ) -> None: ...
    def task_changed(self, result: TaskResult) -> None: ...
    def attempt_failed(
        self, result: TaskResult, attempt: int, error: str, retry_in: float | None
    ) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


class Silent:
    def run_started(self, run_id: str, pipeline: Pipeline, results: dict[str, TaskResult]) -> None:
        pass

    def task_changed(self, result: TaskResult) -> None:
        pass

    def attempt_failed(
        self, result: TaskResult, attempt: int, error: str, retry_in: float | None
    ) -> None:
        pass

    def run_finished(self, result: RunResult) -> None:
        pass


def attempt_failed(
    report: Any, result: TaskResult, attempt: int, error: str, retry_in: float | None
) -> None:
    """Tell ``report`` about a failed attempt (reporters written before this hook lack it)."""
    hook = getattr(report, "attempt_failed", None)
    if callable(hook):
        hook(result, attempt, error, retry_in)


def attempt_line(result: TaskResult, attempt: int, error: str, retry_in: float | None) -> str:
    """``train attempt 1/4 failed: ValueError: boom (retrying in 2s)``."""
    if retry_in is None:
        then = "no attempts left"
    elif retry_in <= 0:
        then = "retrying now"
    else:
        then = f"retrying in {retry_in:g}s"
    return f"{result.name} attempt {attempt}/{result.max_attempts} failed: {error} ({then})"
