"""Kubeflow commands of a pipeline: compile, deploy-dev, deploy-prod. kfp is imported inside them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..app import HmlApp
    from ..dsl.pipeline import Pipeline


def add_kubeflow_commands(group: click.Group, app: HmlApp, pipeline: Pipeline) -> None:
    """Filled in by the Kubeflow integration."""
