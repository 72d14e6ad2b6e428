"""Example objects of a data model, built from its annotations, for generated tests.

``sample(OtherExample)`` fills every field with a fixed value of its type (nested models and
lists of them included), so a generated test can build a class whose fields refer to other
classes without the user writing those first.
"""

from __future__ import annotations

import datetime as dt
import typing
from typing import Any

from ..errors import UsageError

_VALUES: dict[Any, Any] = {
    int: 1,
    float: 1.5,
    str: "text",
    bool: True,
    dict: {"key": "value"},
    dt.datetime: dt.datetime(2024, 1, 2, 3, 4, 5),
    dt.date: dt.date(2024, 1, 2),
    dt.time: dt.time(3, 4, 5),
}


def sample(cls: type, _stack: tuple[type, ...] = ()) -> Any:
    """An instance of data model ``cls`` with a value for every declared field."""
    fields = getattr(cls, "_hml_fields", None)
    if not fields:
        raise UsageError(
            f"sample({cls.__name__}) needs a BaseData class that declares its fields with "
            "annotations; build this one by hand"
        )
    if cls in _stack:
        raise UsageError(
            f"sample({cls.__name__}): the class contains itself other than in a list; "
            "build this one by hand"
        )
    stack = (*_stack, cls)
    hints = typing.get_type_hints(cls)  # each class's annotations in its own module
    return cls(**{name: _value(hints[name], stack) for name in fields})


def _value(annotation: Any, stack: tuple[type, ...]) -> Any:
    if annotation in _VALUES:
        value = _VALUES[annotation]
        return dict(value) if isinstance(value, dict) else value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list:
        if not args or args[0] in stack:  # a list of an enclosing class: empty ends the cycle
            return []
        return [_value(args[0], stack)]
    if origin is dict:
        return {}
    if origin is typing.Union or type(None) in args:
        return _value(next(a for a in args if a is not type(None)), stack)
    if isinstance(annotation, type) and getattr(annotation, "_hml_fields", None):
        return sample(annotation, stack)
    return None
