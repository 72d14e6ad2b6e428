"""Container settings are declared once: each ContainerConfig field's metadata says how it
merges, whether it is applied locally and who renders it, and the renderers really do.

A new field fails here until it has its metadata, a sample below, and a renderer that puts the
sample into the compiled pipeline or the Deployment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from hypermodel import hml
from hypermodel.dsl.config import (
    K8S,
    KFP,
    MERGES,
    RENDERERS,
    ContainerConfig,
    settings_fields,
)
from tests.support import require_module


@dataclass(frozen=True)
class Sample:
    """How to set a field to a recognisable value, and the text each renderer then shows."""

    set: Callable[[Any], Any]
    shows: str  # in the compiled YAML and in the manifests' YAML


SAMPLES: dict[str, Sample] = {
    "name": Sample(lambda c: setattr(c, "name", "sample-name"), "name: sample-name"),
    "image": Sample(lambda c: c.with_image("registry.example/sample:9"), "sample:9"),
    "command": Sample(lambda c: c.with_command("/bin/sample-cmd"), "/bin/sample-cmd"),
    "env": Sample(lambda c: c.with_env("SAMPLE_ENV", "v1"), "SAMPLE_ENV"),
    "secret_env": Sample(
        lambda c: c.with_secret_env("SAMPLE_SECRET_ENV", "sample-secret", "k"), "sample-secret"
    ),
    "secret_volumes": Sample(lambda c: c.with_secret("sample-vol", "/sample/vol"), "/sample/vol"),
    "volumes": Sample(lambda c: c.with_pvc("sample-claim", "/sample/pvc"), "sample-claim"),
    "cpu_request": Sample(lambda c: c.with_resources(cpu="123m"), "123m"),
    "cpu_limit": Sample(lambda c: c.with_resources(cpu_limit="1234m"), "1234m"),
    "memory_request": Sample(lambda c: c.with_resources(memory="129Mi"), "129Mi"),
    "memory_limit": Sample(lambda c: c.with_resources(memory_limit="257Mi"), "257Mi"),
    "gpu_limit": Sample(lambda c: c.with_resources(gpu=7), "nvidia.com/gpu"),
    "gpu_vendor": Sample(lambda c: c.with_resources(gpu=1, gpu_vendor="amd.com/gpu"), "amd.com"),
    "node_selector": Sample(lambda c: c.with_node_selector("sample-pool", "p1"), "sample-pool"),
    "tolerations": Sample(lambda c: c.with_toleration("sample-taint"), "sample-taint"),
    "image_pull_secrets": Sample(lambda c: c.with_image_pull_secret("sample-pull"), "sample-pull"),
    "service_account": Sample(lambda c: c.with_service_account("sample-sa"), "sample-sa"),
    "annotations": Sample(lambda c: c.with_annotation("sample.io/a", "va"), "sample.io/a"),
    "labels": Sample(lambda c: c.with_label("sample-label", "vl"), "sample-label"),
}
FIELDS = [f.name for f in settings_fields()]


@hml.op()
def one() -> int:
    return 1


def compiled(sample: Sample | None) -> tuple[str, list[str], str | None]:
    """The YAML of a one-op pipeline whose @deploy_op applies ``sample``, its warnings, and the
    service account the deploy would run it as (Kubeflow sets it per run)."""
    require_module("kfp")
    from hypermodel.kubeflow import compile_pipeline
    from hypermodel.kubeflow.compiler import service_account

    app = hml.HmlApp("fields", image_url="registry.example/fields:1", root="gs://b/fields")

    @hml.pipeline(app.pipelines)
    def solo() -> None:
        one()

    if sample is not None:
        app.pipelines.deploy_op(sample.set)
    result = compile_pipeline(app, "solo")
    return result.yaml, result.warnings, service_account(app, app.pipelines.get("solo"))


def rendered(sample: Sample | None) -> str:
    """The Deployment's YAML when @deploy_inference applies ``sample``."""
    from hypermodel.k8s.manifests import build_manifests, to_yaml

    app = hml.HmlApp("fields", image_url="registry.example/fields:1")
    if sample is not None:
        app.inference.on_deploy(sample.set)
    return to_yaml(build_manifests(app))


def test_every_field_declares_how_it_merges_and_who_renders_it() -> None:
    assert [f.name for f in dataclasses.fields(ContainerConfig)] == FIELDS
    for f in settings_fields():
        assert f.merge in MERGES, f.name
        assert f.renderers and set(f.renderers) <= set(RENDERERS), (
            f"ContainerConfig.{f.name} reaches neither the Kubeflow compiler nor the "
            "Deployment: render it, and name the renderer in its metadata"
        )
        assert f.local or f.note is not None, f.name


@pytest.mark.parametrize("name", FIELDS)
def test_each_field_reaches_the_renderers_it_names(name: str) -> None:
    assert name in SAMPLES, (
        f"ContainerConfig.{name} has no sample here: add one to SAMPLES, render the field in "
        "kubeflow/compiler.py or k8s/manifests.py, and name the renderer in its metadata"
    )
    (field,) = [f for f in settings_fields() if f.name == name]
    sample = SAMPLES[name]
    if K8S in field.renderers:
        assert sample.shows not in rendered(None)
        assert sample.shows in rendered(sample), f"{name} does not reach the Deployment"
    if KFP in field.renderers:
        text, _, account = compiled(sample)
        if name == "service_account":  # set per run by deploy, from what the compiler collects
            assert account == "sample-sa"
        else:
            assert sample.shows not in compiled(None)[0]
            assert sample.shows in text, f"{name} does not reach the compiled pipeline"
    elif not field.local:  # a cluster setting Kubeflow cannot apply is said, not dropped
        text, warnings, _ = compiled(sample)
        assert sample.shows not in text
        assert any(name in w and "Kubeflow does not apply" in w for w in warnings), warnings


def test_the_local_note_is_derived_from_the_metadata() -> None:
    cfg = ContainerConfig()
    for sample in SAMPLES.values():
        sample.set(cfg)
    notes = cfg.cluster_only()
    assert {"cpu=123m", "memory limit=257Mi", "gpu=1", "gpu vendor amd.com/gpu"} <= set(notes)
    assert "secret sample-secret as $SAMPLE_SECRET_ENV" in notes
    assert "command=/bin/sample-cmd" in notes and "label sample-label=vl" in notes
    assert not any("SAMPLE_ENV" in n or "sample-name" in n for n in notes)  # applied locally
    # the vendor says nothing without the GPU count it qualifies
    assert ContainerConfig(gpu_vendor="amd.com/gpu").cluster_only() == []


@pytest.mark.parametrize("name", FIELDS)
def test_merging_keeps_a_value_on_either_side(name: str) -> None:
    field = next(f for f in settings_fields() if f.name == name)
    cfg = ContainerConfig()
    SAMPLES[name].set(cfg)
    value = getattr(cfg, name)
    assert getattr(cfg.merged(ContainerConfig()), name) == value  # a default does not win
    if field.merge != "keep":
        assert getattr(ContainerConfig().merged(cfg), name) == value  # a given value does


def test_an_ops_gpu_vendor_survives_the_app_defaults() -> None:
    require_module("kfp")
    from hypermodel.kubeflow import compile_pipeline

    app = hml.HmlApp("gpus", image_url="registry.example/gpus:1", root="gs://b/gpus")

    @hml.op(gpu=2)
    def train() -> int:
        return 1

    train.config.with_resources(gpu_vendor="amd.com/gpu")

    @hml.pipeline(app.pipelines)
    def fit() -> None:
        train()

    pipeline = app.pipelines.get("fit")
    (task,) = list(pipeline)
    cfg = app.pipelines.container_config(pipeline, task)  # the app's defaults, then the op
    assert (cfg.gpu_limit, cfg.gpu_vendor) == (2, "amd.com/gpu")
    text = compile_pipeline(app, "fit").yaml
    assert "amd.com/gpu" in text and "nvidia.com/gpu" not in text
