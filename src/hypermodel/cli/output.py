"""Output of the listing commands: ``--format table|json``, ``--limit N``, plain tables.

JSON goes to stdout and nothing else does (warnings go to stderr), so ``| jq`` always works.
Tables show every value in full when stdout is not a terminal (a pipe, a file, a test runner);
in a terminal, the widest columns are cut with ``…`` to fit its width.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

_MIN_WIDTH = 8  # a column is never cut below this (or its header's width, if narrower)


def format_option(func: F) -> F:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="table for people; json for scripts (stdout holds the JSON only).",
    )(func)


class _Positive(click.ParamType):
    name = "N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if number < 1:
            self.fail(f"must be a whole number of 1 or more, not {value!r}", param, ctx)
        return number


def limit_option(func: F) -> F:
    return click.option(
        "--limit",
        type=_Positive(),
        default=None,
        metavar="N",
        help="Only the N newest.",
    )(func)


def is_terminal() -> bool:
    """Whether stdout is a terminal (tests patch this to see what a terminal gets)."""
    return sys.stdout is not None and sys.stdout.isatty()


def terminal_width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout (unknown types as their text)."""
    import orjson

    text = orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    click.echo(text.decode("utf-8"))


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def iso_utc(ts: float | None) -> str | None:
    """``2026-12-04T10:11:12Z`` (what jq's ``fromdate`` reads), or None."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns separated by two spaces; cut to the terminal's width only in a terminal."""
    cells = [[str(c) for c in row] for row in (header, *rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    if is_terminal():
        widths = _fit(widths, [len(h) for h in header], terminal_width())
    for row in cells:
        click.echo(
            "  ".join(_cut(c, w).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        )


def _fit(widths: list[int], headers: list[int], total: int) -> list[int]:
    """Narrow the widest columns, one character at a time, until the row fits ``total``."""
    widths = list(widths)
    floors = [min(w, max(h, _MIN_WIDTH)) for w, h in zip(widths, headers, strict=True)]
    excess = sum(widths) + 2 * (len(widths) - 1) - total
    while excess > 0:
        i = max(range(len(widths)), key=lambda j: widths[j] - floors[j])
        if widths[i] <= floors[i]:
            break  # as narrow as it goes: the terminal wraps the rest
        widths[i] -= 1
        excess -= 1
    return widths


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
