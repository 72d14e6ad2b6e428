"""The public facade: ``from hypermodel import hml``.

Everything a user declares goes through here. Heavy pieces (datasets, tracking, serving) are
resolved lazily on first attribute access so that importing an app stays instant.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from click import option as option
from click import pass_context as pass_context

from .app import HmlApp as HmlApp
from .app import HmlPipelineApp as HmlPipelineApp
from .context import OpContext as OpContext
from .context import context as context
from .dsl.config import ContainerConfig as ContainerConfig
from .dsl.op import Op as Op
from .dsl.op import op as op
from .dsl.pipeline import Pipeline as Pipeline
from .dsl.pipeline import Task as Task
from .errors import DeclarationError, HypermodelError

if TYPE_CHECKING:
    from .serving.app import HmlInferenceApp


def _pipelines_of(target: Any) -> HmlPipelineApp:
    if isinstance(target, HmlApp):
        return target.pipelines
    if isinstance(target, HmlPipelineApp):
        return target
    raise DeclarationError(f"expected app.pipelines (or the app), got {target!r}")


def pipeline(
    pipelines: Any,
    name: str | None = None,
    *,
    cron: str | None = None,
    experiment: str | None = None,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], Pipeline]:
    """``@hml.pipeline(app.pipelines, cron="0 0 2 * * *", experiment="demos")``; returns the Pipeline."""
    return _pipelines_of(pipelines).pipeline(
        name, cron=cron, experiment=experiment, description=description
    )


def deploy_op(
    pipelines: Any,
) -> Callable[[Callable[[ContainerConfig], Any]], Callable[[ContainerConfig], Any]]:
    """``@hml.deploy_op(app.pipelines)``: configure every op's container (env, secrets, volumes...)."""
    return _pipelines_of(pipelines).deploy_op


def _inference_of(target: Any) -> HmlInferenceApp:
    from .serving.app import HmlInferenceApp

    if isinstance(target, HmlApp):
        return target.inference
    if isinstance(target, HmlInferenceApp):
        return target
    raise DeclarationError(f"expected app.inference (or the app), got {target!r}")


def inference(inference_app: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@hml.inference(app.inference)``: initialise the server (load models, declare routes)."""
    return _inference_of(inference_app).on_init


def deploy_inference(inference_app: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@hml.deploy_inference(app.inference)``: configure the inference Deployment."""
    return _inference_of(inference_app).on_deploy


# name -> module that defines it (resolved on first access)
LAZY = {
    "HmlInferenceApp": "hypermodel.serving.app",
    "HmlInferenceDeployment": "hypermodel.serving.app",
    "ModelContainer": "hypermodel.serving.model",
    "RequestError": "hypermodel.serving.errors",
    "Number": "hypermodel.serving.schema",
    "output_route": "hypermodel.serving.hypergol_contract",  # Hypergol's POST /output
    "ModelIntegrityError": "hypermodel.serving.errors",
    "BaseData": "hypermodel.data.model",
    "Dataset": "hypermodel.data.dataset",
    "DatasetCorruptError": "hypermodel.data.errors",
    "DatasetError": "hypermodel.data.errors",
    "Project": "hypermodel.data.project",
    "Source": "hypermodel.data.tasks",
    "OneToOne": "hypermodel.data.tasks",
    "SimpleTask": "hypermodel.data.tasks",  # Hypergol's name of OneToOne
    "OneToMany": "hypermodel.data.tasks",
    "Delayed": "hypermodel.data.tasks",
    "cacheable": "hypermodel.data.cacheable",
    "Run": "hypermodel.tracking.run",
    "Config": "hypermodel.tracking.config",
    "current_run": "hypermodel.tracking.run",
}


def __getattr__(name: str) -> Any:
    module = LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hypermodel.hml' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "ContainerConfig",
    "HmlApp",
    "HmlPipelineApp",
    "HypermodelError",
    "Op",
    "OpContext",
    "Pipeline",
    "Task",
    "context",
    "deploy_inference",
    "deploy_op",
    "inference",
    "op",
    "option",
    "pass_context",
    "pipeline",
    *LAZY,
]
