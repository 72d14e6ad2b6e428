"""Parameter types an op may declare, and how values are checked and parsed from text."""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass
from typing import Any

from ..errors import DeclarationError, UsageError

# The types that travel between ops (as JSON) and across Kubeflow (as typed parameters).
SUPPORTED: dict[type, str] = {
    int: "int",
    float: "float",
    bool: "bool",
    str: "str",
    list: "list",
    dict: "dict",
}
NO_DEFAULT = inspect.Parameter.empty


def normalise(annotation: Any, where: str) -> type | None:
    """Map an annotation to one of SUPPORTED (List[int] -> list, Optional[int] -> int)."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return None
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (
        origin is not None and str(origin) == "<class 'types.UnionType'>"
    ):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return normalise(args[0], where)
        raise DeclarationError(
            f"{where}: union types are not supported; use one of int, float, bool, str, list, dict"
        )
    if origin is not None:
        annotation = origin
    if annotation in SUPPORTED:
        return annotation  # type: ignore[no-any-return]
    if annotation is None or annotation is type(None):
        return None
    raise DeclarationError(
        f"{where}: type {getattr(annotation, '__name__', annotation)!r} is not supported; "
        "use int, float, bool, str, list or dict (values travel between ops as JSON)"
    )


@dataclass(frozen=True)
class Param:
    """One argument of an op or a pipeline."""

    name: str
    type: type | None
    default: Any = NO_DEFAULT

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT

    @property
    def type_name(self) -> str:
        return SUPPORTED.get(self.type, "str") if self.type else "str"

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


def params_of(fn: Any, where: str) -> tuple[Param, ...]:
    hints = _hints(fn)
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise DeclarationError(
                f"{where}: *args/**kwargs are not supported; declare each argument"
            )
        out.append(
            Param(
                p.name,
                normalise(hints.get(p.name, p.annotation), f"{where} argument '{p.name}'"),
                p.default,
            )
        )
    return tuple(out)


def return_type_of(fn: Any, where: str) -> type | None:
    hints = _hints(fn)
    return normalise(hints.get("return", inspect.Parameter.empty), f"{where} return value")


def _hints(fn: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolved forward references: fall back to raw annotations
        return dict(getattr(fn, "__annotations__", {}))


def check_value(value: Any, expected: type | None, where: str) -> Any:
    """Check (and gently coerce int->float) a value against a declared type."""
    if expected is None or value is None:
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, bool):
        raise UsageError(f"{where}: expected int, got bool {_shown(value, where)!r}")
    if not isinstance(value, expected):
        raise UsageError(
            f"{where}: expected {SUPPORTED[expected]}, got {type(value).__name__} "
            f"{_shown(value, where)!r}"
        )
    return value


def _shown(value: Any, where: str) -> Any:
    """The value as an error message may quote it: ``***`` when ``where`` ends in a
    secret-looking name (``op 'train' argument 'api_key'``)."""
    from ..redact import shown

    names = re.findall(r"'([^']*)'", where)
    return shown(value, names[-1]) if names else value


def parse_text(text: str, expected: type | None, where: str) -> Any:
    """Parse a command-line value for a declared type (JSON for list and dict)."""
    import orjson

    try:
        if expected is None or expected is str:
            return text
        if expected is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "y", "on"):
                return True
            if low in ("0", "false", "no", "n", "off"):
                return False
            raise ValueError(text)
        if expected is int:
            return int(text)
        if expected is float:
            return float(text)
        value = orjson.loads(text)
    except (ValueError, orjson.JSONDecodeError) as exc:
        kind = SUPPORTED.get(expected, "str") if expected else "str"
        quoted = _shown(text, where)
        # a secret's parse error (which quotes it) is not chained either
        raise UsageError(f"{where}: {quoted!r} is not a valid {kind}") from (
            exc if quoted == text else None
        )
    return check_value(value, expected, where)
