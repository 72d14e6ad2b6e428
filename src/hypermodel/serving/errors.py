"""Errors of the serving side: model integrity, and request errors a handler may raise."""

from __future__ import annotations

import logging
import os
from typing import Any

from ..errors import HypermodelError


class ModelIntegrityError(HypermodelError):
    """A published model file (or its distributions) does not match the digest in its reference."""


class ModelNotLoadedError(HypermodelError):
    """A model was used before ``load()`` (or a training op set ``model``) gave it one."""


class RequestError(HypermodelError):
    """Raise from a route handler to answer the client with a 4xx and a reason.

    ``raise RequestError("alcohol must be positive", status=422, field="alcohol")``
    becomes ``422 {"error": "alcohol must be positive", "field": "alcohol"}``.
    """

    def __init__(self, message: str, status: int = 400, **detail: Any) -> None:
        if not 400 <= status < 500:
            raise ValueError(f"RequestError status must be a 4xx code, got {status}")
        super().__init__(message)
        self.status = status
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"error": str(self), **self.detail}


# -- how the server reports a handler's exception -------------------------------------------------
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../hypermodel
MAX_DETAIL = 200  # characters of an exception's message in an answer or a log line


def rejects_input(exc: BaseException, handler: Any = None) -> bool:
    """A ValueError that the model raised about the input the handler gave it.

    scikit-learn, numpy and most model libraries raise ValueError for input they cannot use
    (too few features, a value too large for float32): the client's request is at fault, a 422.
    Not a ValueError raised in the handler's own file (its code should raise RequestError to
    refuse input), nor one hypermodel raised, nor pydantic's ValidationError: server faults.
    """
    if not isinstance(exc, ValueError) or isinstance(exc, HypermodelError):
        return False
    if type(exc).__module__.startswith(("pydantic", "hypermodel")):
        return False
    where = raise_site(exc)[0]
    own = getattr(getattr(handler, "__code__", None), "co_filename", None)
    return where != own and not where.startswith(_PACKAGE + os.sep)


def raise_site(exc: BaseException) -> tuple[str, int]:
    """(file, line) where ``exc`` was raised: the innermost frame of its traceback."""
    tb = exc.__traceback__
    if tb is None:
        return "<unknown>", 0
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename, tb.tb_lineno


def short(exc: BaseException) -> str:
    """``Type: first line of the message``, at most MAX_DETAIL characters."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


class FailureLog:
    """Logs a 500 as one line with its request id; the traceback only the first time its
    raise site is seen (per process), so that a failure repeated per request costs a line each,
    not kilobytes."""

    MAX_SITES = 256

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._seen: set[tuple[str, str, int]] = set()

    def failed(self, rid: str, method: str, path: str, exc: BaseException) -> None:
        where, line = raise_site(exc)
        site = (type(exc).__name__, where, line)
        first = site not in self._seen and len(self._seen) < self.MAX_SITES
        if first:
            self._seen.add(site)
        self.logger.error(
            "request %s %s %s failed: %s (at %s:%d)%s",
            rid,
            method,
            path[:MAX_DETAIL],
            short(exc),
            where,
            line,
            "" if first else " [traceback logged at its first occurrence]",
            exc_info=exc if first else None,
        )
