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

from .model import (
    _TEMPORAL,
    BaseData,
    _compile,
    _from_data_expr,
    _schema,
    _strip_optional,
    adopts_parsed_rows,
)

Decode = Callable[[bytes], "list[Any] | None"]


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
    if not _eligible(cls):
        return None
    schema = _schema(cls)
    fields: dict[str, Any] = {}
    for name in schema.names:
        tp = _strip_optional(schema.hints.get(name, Any))
        fields[name] = tp | None if tp in _TEMPORAL else Any
    row = typing.TypedDict(f"{cls.__name__}Row", fields)  # type: ignore[misc]
    by_line = msgspec.json.Decoder(row).decode_lines
    whole = msgspec.json.Decoder(list[row]).decode  # type: ignore[valid-type]
    refused = (msgspec.ValidationError, msgspec.DecodeError)
    env: dict[str, Any] = {"_cls": cls, "_new": object.__new__, "_refused": refused}
    adopt = (
        "    out = []\n    add = out.append\n"
        "    for d in rows:\n        o = _new(_cls)\n        o.__dict__ = d\n        add(o)\n"
        "    return out\n"
    )
    made = []
    for fn, parse in (("lines", by_line), ("array", whole)):
        env[f"_{fn}"] = parse
        src = f"def {fn}(data):\n    try:\n        rows = _{fn}(data)\n"
        src += "    except _refused:\n        return None\n" + adopt
        made.append(_compile(src, fn, env))
    return RowDecoders(*made)


def _eligible(cls: type[BaseData]) -> bool:
    """Only where the generated batch decoder would adopt the parsed dict itself."""
    if not cls._hml_fields or not adopts_parsed_rows(cls):
        return False
    probe: dict[str, Any] = {}
    schema = _schema(cls)
    for name in schema.names:
        hint = schema.hints.get(name, Any)
        if _strip_optional(hint) in _TEMPORAL:
            continue
        if _from_data_expr(hint, "_x", probe) is not None:  # nested models, lists of dates...
            return False
    return True
