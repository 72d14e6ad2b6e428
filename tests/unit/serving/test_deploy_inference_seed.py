"""Hyper Model's `@hml.deploy_inference` snippet runs unchanged: `deployment.k8s_container`."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hypermodel import hml


def test_the_seed_deploy_inference_snippet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = hml.HmlApp(
        name="crashed",
        image_url="registry.example/crashed:1",
        package_entrypoint="crashed",
        inference_port=8000,
        root=str(tmp_path),
    )

    # Hyper Model's README, unchanged
    @hml.deploy_inference(app.inference)
    def deploy_inference(deployment: hml.HmlInferenceDeployment):
        logging.info(
            f"Preparing deploying: {deployment.deployment_name} ({deployment.k8s_container.image} -> {deployment.k8s_container.args} )"
        )

        (
            deployment
            .with_gcp_auth("svcacc-tez-kf")
            .with_empty_dir("tmp", "/temp")
            .with_empty_dir("artifacts", "/artifacts")
        )  # fmt: skip

    with caplog.at_level(logging.INFO):
        cfg = app.inference.deployment_config()
    assert "Preparing deploying: crashed-inference (registry.example/crashed:1 -> [" in caplog.text
    assert "'inference', 'run-prod'" in caplog.text
    assert [v.mount_path for v in cfg.volumes] == ["/temp", "/artifacts"]


def test_k8s_container_is_the_container_the_manifest_runs(tmp_path: Path) -> None:
    from hypermodel.k8s.manifests import build_manifests

    app = hml.HmlApp(name="shop", image_url="shop:2", inference_port=8100, root=str(tmp_path))

    @hml.deploy_inference(app.inference)
    def configure(deployment: hml.HmlInferenceDeployment) -> None:
        deployment.with_threads(3).with_env("MODE", "prod")

    cfg = app.inference.deployment_config()
    view = cfg.k8s_container
    deployment = build_manifests(app)[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert view.name == container["name"]
    assert view.image == container["image"] == "shop:2"
    assert view.args == container["args"]
    assert view.ports == [p["containerPort"] for p in container["ports"]] == [8100]
    assert view.env["MODE"] == "prod"
    with pytest.raises(AttributeError):
        view.image = "other"  # type: ignore[misc]
