"""Live progress while a pipeline runs and the summary table after it (rich, imported lazily)."""

from __future__ import annotations

import sys
from typing import IO, Any

from ..dsl.pipeline import Pipeline
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
    RunResult,
    TaskResult,
    attempt_line,
)

_STYLE = {
    SUCCEEDED: "green",
    CACHED: "cyan",
    RESUMED: "cyan",
    FAILED: "bold red",
    SKIPPED: "yellow",
    CANCELLED: "magenta",
    RUNNING: "blue",
    RETRYING: "yellow",
    PENDING: "dim",
}
_MARK = {
    SUCCEEDED: "✓",
    CACHED: "↺",
    RESUMED: "↺",
    FAILED: "✗",
    SKIPPED: "-",
    CANCELLED: "⊘",
    RUNNING: "…",
    RETRYING: "↻",
    PENDING: " ",
}


def short(value: Any, width: int = 48) -> str:
    from .store import dumps

    text = value if isinstance(value, str) else dumps(value).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


class ConsoleReporter:
    """A live table on a terminal; one line per state change otherwise (logs, CI)."""

    def __init__(self, stream: IO[str] | None = None, live: bool | None = None) -> None:
        from rich.console import Console

        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream, highlight=False, soft_wrap=True)
        self.live_enabled = self.console.is_terminal if live is None else live
        self._live: Any = None
        self._results: dict[str, TaskResult] = {}
        self._title = ""

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=self._title, title_justify="left", expand=False)
        for col in ("op", "status", "attempts", "duration"):
            table.add_column(col)
        for r in self._results.values():
            table.add_row(
                r.name,
                f"[{_STYLE[r.status]}]{_MARK[r.status]} {r.status}[/]",
                str(r.attempts),
                f"{r.duration:.2f}s" if r.attempts else "",
            )
        return table

    def run_started(self, run_id: str, pipeline: Pipeline, results: dict[str, TaskResult]) -> None:
        self._results = results
        self._title = f"{pipeline.name} · run {run_id}"
        for r in results.values():
            if r.notes:
                self.console.print(
                    f"[yellow]note[/]: op '{r.name}': not applied locally (applied on Kubeflow): "
                    + ", ".join(r.notes)
                )
        if self.live_enabled:
            from rich.live import Live

            self._live = Live(
                self._table(), console=self.console, refresh_per_second=8, transient=True
            )
            self._live.start()
        else:
            self.console.print(f"run {run_id}: {len(results)} op(s) of pipeline '{pipeline.name}'")

    def task_changed(self, result: TaskResult) -> None:
        if self._live is not None:
            self._live.update(self._table())
        elif result.status not in (PENDING, RETRYING):  # a retry's wait was just printed
            extra = (
                f" attempt {result.attempts}"
                if result.status == RUNNING
                else f" from run {result.resumed_from}"
                if result.status == RESUMED
                else f" {result.duration:.2f}s"
            )
            self.console.print(f"{_MARK[result.status]} {result.name} {result.status}{extra}")

    def attempt_failed(
        self, result: TaskResult, attempt: int, error: str, retry_in: float | None
    ) -> None:
        """Printed as it happens (above the live table), not only in the summary."""
        from rich.markup import escape

        line = escape(attempt_line(result, attempt, error, retry_in))
        self.console.print(f"[yellow]{line}[/]" if retry_in is not None else f"[red]{line}[/]")

    def run_finished(self, result: RunResult) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def print_summary(result: RunResult, out: IO[str] | None = None) -> None:
    """The table users read after run-all: op, status, duration, attempts, cache hit, output."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out or sys.stdout, highlight=False, width=120)
    table = Table(
        title=f"run {result.run_id} · {result.status} in {result.duration:.2f}s",
        title_justify="left",
    )
    for col in ("op", "status", "duration", "attempts", "cache hit", "output"):
        table.add_column(col, overflow="fold")
    for r in result.tasks.values():
        table.add_row(
            r.name,
            f"[{_STYLE[r.status]}]{r.status}[/]",
            f"{r.duration:.2f}s",
            str(r.attempts),
            "yes" if r.cache_hit else "resumed" if r.status == RESUMED else "no",
            short(r.output) if r.status in DONE else "",
        )
    console.print(table)
    if result.resumed_from:
        console.print(
            f"resumed from run {result.resumed_from}: the ops done there kept their outputs"
        )
