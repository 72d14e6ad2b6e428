"""Kubeflow Pipelines v2: compile an app's pipelines to IR YAML and deploy them.

This package is the only place that imports ``kfp`` and ``kfp-kubernetes``; both are imported
inside functions, so ``import hypermodel.kubeflow`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compiler import CompileResult, KfpBuilder, compile_pipeline

__all__ = ["CompileResult", "KfpBuilder", "compile_pipeline"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import compiler

        return getattr(compiler, name)
    raise AttributeError(name)
