"""Ops, pipelines and the graph they form. Pure: no IO, no heavy imports."""

from __future__ import annotations

from .config import ContainerConfig
from .op import Op, op
from .pipeline import Pipeline, PipelineParam, Task

__all__ = ["ContainerConfig", "Op", "Pipeline", "PipelineParam", "Task", "op"]
