"""Values of secret-looking names are shown as ``***`` in tracking data, run records and logs.

A name looks secret when one of its words (split at ``_``, ``-``, ``.``, spaces and camelCase)
is a secret word (``password``, ``token``, ``secret``...), or two neighbouring words make a
secret pair (``api_key``, ``apiKey``, ``private_key``, ``AWS_SECRET_ACCESS_KEY``...). Whole
words only: ``tokenizer``, ``max_tokens`` and ``keyword`` are not secrets.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

REDACTED = "***"

_WORDS = frozenset(
    {
        "password",
        "passwords",
        "passwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "apikey",
        "credential",
        "credentials",
        "privatekey",
        "accesskey",
    }
)
_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("auth", "key")})
_CAMEL = re.compile(r"([a-z0-9])([A-Z])|([A-Z]+)([A-Z][a-z])")
_SPLIT = re.compile(r"[^a-z0-9]+")


def words(name: str) -> list[str]:
    """``dbPassword`` -> ``['db', 'password']``; ``AWS_SECRET_ACCESS_KEY`` -> four words."""
    spaced = _CAMEL.sub(lambda m: "_".join(g for g in m.groups() if g), str(name))
    return [w for w in _SPLIT.split(spaced.lower()) if w]


def is_secret_name(name: Any) -> bool:
    parts = words(str(name))
    return any(w in _WORDS for w in parts) or any(pair in _PAIRS for pair in pairwise(parts))


def redact(values: Any) -> Any:
    """A copy of ``values`` with the value of every secret-looking key replaced by ``***``.

    Nested dicts (and dicts inside lists) are redacted too; ``None`` stays ``None`` (an unset
    secret is no secret, and seeing that it is unset helps).
    """
    if isinstance(values, dict):
        return {
            key: (REDACTED if value is not None else None) if is_secret_name(key) else redact(value)
            for key, value in values.items()
        }
    if isinstance(values, (list, tuple)):
        return [redact(v) for v in values]
    return values


def shown(value: Any, name: Any) -> Any:
    """``value`` as it may appear in a message about ``name``."""
    return REDACTED if value is not None and is_secret_name(name) else value
