"""A request body as JSON: orjson first (the hot path), a lenient parser only when it refuses.

orjson refuses ``NaN``, ``Infinity`` and numbers beyond float64 (``1e400``) as malformed. They
are read leniently instead, so that the route's schema refuses them with a 422 naming the
field (see ``schema.Number``) rather than a 400 that says only "malformed". Everything else
orjson refuses (truncated or invalid JSON, invalid UTF-8, lone surrogates) stays a 400.

Nesting deeper than ``MAX_DEPTH`` is a 400 too: no prediction request needs it, and a handler
that echoes such input could not serialise its answer.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from .errors import RequestError

MAX_DEPTH = 128  # levels of arrays and objects in a request body
_NESTED = (dict, list)


def read_json(raw: bytes) -> tuple[Any, bool]:
    """(the decoded body, whether it needed the lenient parser); RequestError 400 if not JSON."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _lenient(raw, str(exc)), True
    # Depth is at most the number of brackets: two C-speed counts spare the walk almost always.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        _check(value, strings=False)
    return value, False


def _lenient(raw: bytes, message: str) -> Any:
    if "depth limit" in message:
        raise _too_deep()
    if not ("infinity" in message or b"NaN" in raw or b"Infinity" in raw):
        raise RequestError("malformed JSON", 400, detail=message)
    try:
        value = json.loads(raw.decode("utf-8"), parse_int=_int)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        raise RequestError("malformed JSON", 400, detail=message) from None
    _check(value, strings=True)
    return value


def _int(text: str) -> Any:
    # as orjson: a 64-bit integer stays an int, a larger one becomes a float (inf if huge)
    if len(text) <= 20:
        number = int(text)
        if -(2**63) <= number < 2**64:
            return number
    return float(text)


def _check(value: Any, strings: bool) -> None:
    """Refuse nesting beyond MAX_DEPTH and (``strings``) lone surrogates, which orjson refuses
    but the lenient parser reads. Level by level, so depth costs no recursion; a container's
    children are looked at with one C-speed pass over their types."""
    level = [value] if type(value) in _NESTED else []
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            raise _too_deep()
        below: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            if strings:
                if type(item) is dict:
                    for key in item:
                        _check_text(key)
                for child in children:
                    if type(child) is str:
                        _check_text(child)
            kinds = set(map(type, children))
            if dict in kinds or list in kinds:
                below.extend(child for child in children if type(child) in _NESTED)
        level = below
        depth += 1


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise RequestError(
                "malformed JSON", 400, detail="str is not valid UTF-8: surrogates not allowed"
            ) from None


def _too_deep() -> RequestError:
    return RequestError("malformed JSON", 400, detail=f"nested deeper than {MAX_DEPTH} levels")
