"""Validation of user-supplied names: they become file and object names, so they must not escape."""

from __future__ import annotations

import re

from .errors import UnsafeNameError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def check_name(value: str, what: str) -> str:
    """Return ``value`` if it is a safe single path component, else raise UnsafeNameError."""
    if not isinstance(value, str) or not _NAME.match(value) or ".." in value:
        raise UnsafeNameError(
            f"{what} name {value!r} is not allowed: use letters, digits, '_', '-' and '.', "
            "start with a letter or digit, no '/' and no '..'"
        )
    return value


def snake_case(name: str) -> str:
    """CamelCase or kebab-case to snake_case."""
    name = name.replace("-", "_")
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return name.lower()
