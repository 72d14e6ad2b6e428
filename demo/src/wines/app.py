"""The demo app: its pipelines, its op configuration and its console script `wines`."""

from __future__ import annotations

import os

from hypermodel import hml

from . import inference, pipeline

app = hml.HmlApp(
    name="wines",
    image_url=os.environ.get("WINES_IMAGE", "ghcr.io/example/wines:latest"),
    package_entrypoint="wines",
    inference_port=8000,
    k8s_namespace="kubeflow",
)
app.with_env("WINES_LOG_LEVEL", "INFO")

pipeline.declare(app)
inference.declare(app)


@hml.deploy_op(app.pipelines)
def op_configurator(op: hml.ContainerConfig) -> hml.ContainerConfig:
    """Every op pod: a scratch volume (bucket credentials come from the cluster's workload identity)."""
    return op.with_empty_dir("scratch", "/scratch")


def main() -> None:
    app.start()
