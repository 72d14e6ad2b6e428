"""Validation of user-supplied names: they become file and object names, so they must not escape.

One validator for every name a user gives (apps, ops, pipelines, models, versions, projects,
artifacts, runs, datasets): the whole string must match (``fullmatch``: a trailing newline is
not allowed, as ``re.match`` with ``$`` would let through), no ``..``, bounded length.
"""

from __future__ import annotations

import re

from .errors import UnsafeNameError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
MAX_LENGTH = 128


def is_safe_name(value: object, max_length: int = MAX_LENGTH) -> bool:
    """True when ``value`` is a safe single path component (see :func:`check_name`)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= max_length
        and _NAME.fullmatch(value) is not None
        and ".." not in value
    )


def check_name(value: str, what: str, max_length: int = MAX_LENGTH) -> str:
    """Return ``value`` if it is a safe single path component, else raise UnsafeNameError."""
    if not is_safe_name(value, max_length):
        raise UnsafeNameError(
            f"{what} name {value!r} is not allowed: use letters, digits, '_', '-' and '.', "
            f"start with a letter or digit, at most {max_length} characters, no '/' and no '..'"
        )
    return value


def snake_case(name: str) -> str:
    """CamelCase or kebab-case to snake_case."""
    name = name.replace("-", "_")
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return name.lower()
