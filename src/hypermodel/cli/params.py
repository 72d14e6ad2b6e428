"""Click options built from op and pipeline signatures."""

from __future__ import annotations

from typing import Any

import click

from ..dsl.types import Param, parse_text
from ..errors import UsageError


class JsonType(click.ParamType):
    def __init__(self, expected: type) -> None:
        self.expected = expected
        self.name = expected.__name__

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.expected):
            return value
        try:
            return parse_text(value, self.expected, "value")
        except UsageError:
            from ..redact import shown

            name = param.name if param is not None else None
            self.fail(f"{shown(value, name)!r} is not a valid JSON {self.name}", param, ctx)


_TYPES: dict[Any, click.ParamType] = {int: click.INT, float: click.FLOAT, str: click.STRING}


def option_for(p: Param, help_text: str) -> click.Option:
    dest = p.name
    if p.type is bool:
        flag = p.name.replace("_", "-")
        return click.Option([f"--{flag}/--no-{flag}", dest], default=None, help=help_text)
    ptype = JsonType(p.type) if p.type in (list, dict) else _TYPES.get(p.type, click.STRING)
    return click.Option(
        [p.option, dest],
        type=ptype,
        default=None,
        help=help_text,
        metavar=(p.type.__name__.upper() if p.type else "TEXT"),
    )


def given(kwargs: dict[str, Any], params: tuple[Param, ...]) -> dict[str, Any]:
    """Only the options the user actually passed (None means 'not given')."""
    return {p.name: kwargs[p.name] for p in params if kwargs.get(p.name) is not None}
