"""The pipeline being built, if any: ops called inside a pipeline function add tasks to it."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pipeline import PipelineBuilder

# A context variable, not a registry: it is set only while one pipeline function runs.
_BUILDER: ContextVar[PipelineBuilder | None] = ContextVar("hml_pipeline_builder", default=None)


def current_builder() -> PipelineBuilder | None:
    return _BUILDER.get()
