"""The pipeline being built, if any: ops called inside a pipeline function add tasks to it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pipeline import PipelineBuilder

# A context variable, not a registry: it is set only while one pipeline function runs.
_BUILDER: ContextVar[PipelineBuilder | None] = ContextVar("hml_pipeline_builder", default=None)


def current_builder() -> PipelineBuilder | None:
    return _BUILDER.get()


@contextlib.contextmanager
def building(builder: PipelineBuilder) -> Iterator[PipelineBuilder]:
    """Ops called inside the block add their tasks to ``builder``."""
    token = _BUILDER.set(builder)
    try:
        yield builder
    finally:
        _BUILDER.reset(token)
