"""Stored lines straight to objects: one msgspec call per block, the fast path of every read.

For a class with the default ``from_data()`` whose fields need no conversion other than ISO
date/time strings (str, int, float, bool, Any, plain lists and dicts, ``datetime`` / ``date``
/ ``time``), msgspec parses a whole block of lines into dicts *and* converts the temporal
fields in C, checking that every field is present. Each dict is then adopted as an object's
``__dict__``, as the generated batch decoder does.

The result equals the generated decoder's on every block msgspec accepts: non-temporal values
are taken as parsed (``Any``), keys that are not fields are dropped (as ``from_data`` drops
them), and temporal strings are parsed to the same values as ``fromisoformat`` (checked on
random datetimes, dates and times with and without offsets, and tested). Anything msgspec
refuses (a missing field, a NaN, a time ``fromisoformat`` reads but RFC 3339 does not) makes
the caller take the generated path for that block, which accepts it or raises the right error.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from .codegen import (
    adopts_parsed_rows,
    compile_source,
    from_data_expr,
    schema_of,
    strip_optional,
)
from .model import TEMPORAL, BaseData

Decode = Callable[[bytes], "list[Any] | None"]

# Blocks whose lines are longer than this on average (large text fields, mostly json's
# ``\uXXXX`` escapes) parse faster with orjson and the generated decoder than with msgspec:
# 5,000 records of 9.4 KB of mixed unicode text read in 296 ms CPU that way, 369 ms with
# msgspec; at 370 bytes a line msgspec is 1.4x faster. Readers skip msgspec for such blocks.
LONG_LINE_BYTES = 2048


class RowDecoders:
    """``lines(block)`` for newline-separated lines, ``array(data)`` for one JSON array; each
    returns the objects, or None when msgspec refuses the input."""

    def __init__(self, lines: Decode, array: Decode) -> None:
        self.lines = lines
        self.array = array


def row_decoders_for(cls: type[BaseData]) -> RowDecoders | None:
    """The msgspec decoders of ``cls`` (made once per class), or None when it has none."""
    found = cls.__dict__.get("_hml_row_decoders", False)
    if found is False:
        found = _make(cls)
        cls._hml_row_decoders = found  # type: ignore[attr-defined]  # per-class cache
    return found  # type: ignore[no-any-return]


def _make(cls: type[BaseData]) -> RowDecoders | None:
    try:
        import msgspec
    except ImportError:  # pragma: no cover - a dependency; the generated path still works
        return None
    env: dict[str, Any] = {"_new": object.__new__}
    made_rows: dict[type, Any] = {}
    row = _row_type(cls, made_rows, env)
    if row is None:
        return None
    by_line = msgspec.json.Decoder(row).decode_lines
    whole = msgspec.json.Decoder(list[row]).decode  # type: ignore[valid-type]
    refused = (msgspec.ValidationError, msgspec.DecodeError)
    env.update({"_cls": cls, "_refused": refused})
    adopt = "    out = []\n    add = out.append\n    for d in rows:\n"
    adopt += "".join(f"        {line}\n" for line in _nested_lines(cls, env))
    adopt += "        o = _new(_cls)\n        o.__dict__ = d\n        add(o)\n    return out\n"
    made = []
    for fn, parse in (("lines", by_line), ("array", whole)):
        env[f"_{fn}"] = parse
        src = f"def {fn}(data):\n    try:\n        rows = _{fn}(data)\n"
        src += "    except _refused:\n        return None\n" + adopt
        made.append(compile_source(src, fn, env))
    return RowDecoders(*made)


def _row_type(cls: type[BaseData], made: dict[type, Any], env: dict[str, Any]) -> Any:
    """The TypedDict msgspec decodes a row of ``cls`` into, or None where msgspec cannot give
    what the generated decoder gives. Nested records (and lists of them) get their own
    TypedDict, and an adopting function in ``env`` (``_A<name>``) that makes the object."""
    if cls in made:
        return made[cls]  # None while being made: a class that contains itself is refused
    made[cls] = None
    if not _adoptable(cls):
        return None
    schema = schema_of(cls)
    fields: dict[str, Any] = {}
    for name in schema.names:
        hint = schema.hints.get(name, Any)
        tp = strip_optional(hint)
        if tp in TEMPORAL:
            fields[name] = tp | None
            continue
        nested = _record_nesting(tp)
        if nested is not None:
            depth, inner = nested
            sub = _row_type(inner, made, env)
            if sub is None:
                return None
            shaped: Any = sub | None
            for _ in range(depth):
                shaped = list[shaped] | None  # type: ignore[valid-type]
            fields[name] = shaped
            continue
        if from_data_expr(hint, "_x", {}) is not None:  # lists of dates, dicts of records...
            return None
        fields[name] = Any
    row = typing.TypedDict(f"{cls.__name__}Row", fields)  # type: ignore[misc]
    made[cls] = row
    lines = _nested_lines(cls, env)
    if lines:  # an adopter for this class when it is nested in another
        src = "def adopt(d):\n" + "".join(f"    {line}\n" for line in lines)
    else:
        src = "def adopt(d):\n"
    env[f"_C{_key(cls)}"] = cls
    src += f"    o = _new(_C{_key(cls)})\n    o.__dict__ = d\n    return o\n"
    env[f"_A{_key(cls)}"] = compile_source(src, "adopt", dict(env))
    return row


def _nested_lines(cls: type[BaseData], env: dict[str, Any]) -> list[str]:
    """Statements turning the nested records' dicts in the row ``d`` into objects."""
    schema = schema_of(cls)
    lines = []
    for name in schema.names:
        nested = _record_nesting(strip_optional(schema.hints.get(name, Any)))
        if nested is None:
            continue
        depth, inner = nested
        expr = f"_A{_key(inner)}(_v{depth})"
        for level in range(depth, 0, -1):
            expr = f"[None if _v{level} is None else {expr} for _v{level} in _v{level - 1}]"
        lines.append(f"_v0 = d[{name!r}]")
        lines.append(f"if _v0 is not None: d[{name!r}] = {expr}")
    return lines


def _key(cls: type) -> str:
    return str(id(cls))


def _record_nesting(tp: Any) -> tuple[int, type[BaseData]] | None:
    """(depth, class) for a record, list[record], list[list[record]]..., else None."""
    depth = 0
    while typing.get_origin(tp) is list and len(typing.get_args(tp)) == 1:
        depth += 1
        tp = strip_optional(typing.get_args(tp)[0])
    if isinstance(tp, type) and issubclass(tp, BaseData):
        return depth, tp
    return None


def _adoptable(cls: type) -> bool:
    """Only where the generated batch decoder would adopt the parsed dict itself."""
    return bool(cls._hml_fields) and adopts_parsed_rows(cls)  # type: ignore[attr-defined]
