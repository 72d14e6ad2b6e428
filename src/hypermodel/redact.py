"""Values of secret-looking names are shown as ``***`` in tracking data, run records and logs.

A name looks secret when one of its words (split at ``_``, ``-``, ``.``, spaces and camelCase)
is a secret word (``password``, ``pass``, ``pwd``, ``token``, ``secret``, ``dsn``, ``jwt``,
``bearer``...), or two neighbouring words make a secret pair (``api_key``, ``apiKey``,
``private_key``, ``auth_header``, ``connection_string``, ``AWS_SECRET_ACCESS_KEY``...). Whole
words only: ``tokenizer``, ``max_tokens``, ``passes`` and ``keyword`` are not secrets.

Whatever the name, credentials inside a text value are masked too: the password of a URL
(``postgres://user:***@host/db``) and the value of a secret-looking ``key=value`` inside it
(``host=h password=***``, ``Server=s;Pwd=***``, ``?token=***&x=1``) and the token of an
``Authorization`` value (``Bearer ***``).
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
        "pass",
        "pwd",
        "pw",
        "passcode",
        "dsn",
        "jwt",
        "bearer",
        "authorization",
        "cookie",
        "connectionstring",
    }
)
_PAIRS = frozenset(
    {
        ("api", "key"),
        ("private", "key"),
        ("access", "key"),
        ("auth", "key"),
        ("secret", "key"),
        ("signing", "key"),
        ("encryption", "key"),
        ("master", "key"),
        ("session", "key"),
        ("account", "key"),
        ("ssh", "key"),
        ("sas", "key"),
        ("auth", "header"),
        ("connection", "string"),
        ("connection", "str"),
        ("conn", "string"),
        ("conn", "str"),
    }
)
_CAMEL = re.compile(r"([a-z0-9])([A-Z])|([A-Z]+)([A-Z][a-z])")
_SPLIT = re.compile(r"[^a-z0-9]+")


def words(name: str) -> list[str]:
    """``dbPassword`` -> ``['db', 'password']``; ``AWS_SECRET_ACCESS_KEY`` -> four words."""
    spaced = _CAMEL.sub(lambda m: "_".join(g for g in m.groups() if g), str(name))
    return [w for w in _SPLIT.split(spaced.lower()) if w]


def is_secret_name(name: Any) -> bool:
    parts = words(str(name))
    return any(w in _WORDS for w in parts) or any(pair in _PAIRS for pair in pairwise(parts))


# scheme://user:PASSWORD@host: the password runs to the last '@' of the authority
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*:)[^\s/?#]*(@)")
# key=value pairs inside a text (libpq DSNs, ADO connection strings, query strings, argv)
# an HTTP Authorization value: "Bearer <token>"
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)(?!\*\*\*)[A-Za-z0-9._~+/=\-]{8,}")
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*)(\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s&;,]*)")


def _pair(match: re.Match[str]) -> str:
    key, eq, value = match.groups()
    if value and value != REDACTED and is_secret_name(key):
        return f"{key}{eq}{REDACTED}"
    return match.group(0)


def redact_text(text: str) -> str:
    """``text`` with the credentials inside it masked: a URL's password, the value of a
    secret-looking ``key=value`` and an ``Authorization`` value (``Bearer <token>``), whatever
    the name the text is stored under."""
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(rf"\g<1>\g<2>{REDACTED}", text)
    if "=" not in text and "@" not in text:
        return text  # the common case: nothing that could hold a credential
    if "@" in text:
        text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}\g<2>", text)
    if "=" in text:
        text = _PAIR.sub(_pair, text)
    return text


def holds_redaction(value: Any) -> bool:
    """True when ``value`` (as recorded) may have had something masked inside it: the value
    recorded is then not the value given, which must be given again."""
    if isinstance(value, str):
        return REDACTED in value
    if isinstance(value, dict):
        return any(holds_redaction(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(holds_redaction(v) for v in value)
    return False


def redact(values: Any) -> Any:
    """A copy of ``values`` with the value of every secret-looking key replaced by ``***``,
    and the credentials inside every text value masked (see :func:`redact_text`).

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
    if isinstance(values, str):
        return redact_text(values)
    return values


def shown(value: Any, name: Any) -> Any:
    """``value`` as it may appear in a message about ``name``."""
    if value is not None and is_secret_name(name):
        return REDACTED
    return redact_text(value) if isinstance(value, str) else value
