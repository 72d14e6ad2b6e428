"""Errors of the serving side: model integrity, and request errors a handler may raise."""

from __future__ import annotations

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
