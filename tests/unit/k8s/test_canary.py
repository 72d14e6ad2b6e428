"""Canary rendering: two Deployments behind one Service (or an nginx canary Ingress), the
replica split, the model version and its digest, and what promote and abort apply."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hypermodel.cli.errors import run_cli
from hypermodel.errors import DeclarationError, UsageError
from hypermodel.k8s.canary import (
    CANARY_RECORD,
    NGINX_CANARY,
    NGINX_CANARY_WEIGHT,
    LiveCanary,
    describe_canary,
    split_replicas,
)
from hypermodel.k8s.manifests import DeployOptions, build_manifests
from tests.support import require_module

from .apps import make_app, publish

kubernetes_validate = require_module("kubernetes_validate")

MODEL = "wine-classifier"


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    root = tmp_path / "bucket"
    publish(root, MODEL, "v1")
    publish(root, MODEL, "v2")
    return root


def canary(bucket: Path, *, app: Any = None, **options: Any) -> list[dict[str, Any]]:
    defaults: dict[str, Any] = {"host_root": str(bucket), "canary": (None, "v2"), "replicas": 4}
    return build_manifests(app or make_app(), DeployOptions(**{**defaults, **options}))


def named(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(m for m in manifests if (m["kind"], m["metadata"]["name"]) == (kind, name))


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def env(deployment: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container(deployment).get("env", [])}


@pytest.mark.parametrize(
    ("total", "weight", "split"),
    [
        (1, 10, (1, 1)),  # one pod of each: the canary always has one
        (2, 10, (1, 1)),
        (4, 25, (3, 1)),
        (10, 10, (9, 1)),
        (10, 25, (7, 3)),  # 2.5 pods rounds up
        (10, 24, (8, 2)),
        (3, 50, (1, 2)),
        (2, 99, (1, 2)),  # the stable keeps one
    ],
)
def test_the_weight_splits_the_replicas(total: int, weight: int, split: tuple[int, int]) -> None:
    assert split_replicas(total, weight) == split


def test_two_deployments_behind_one_service(bucket: Path) -> None:
    manifests = canary(bucket, weight=25)
    assert [(m["kind"], m["metadata"]["name"]) for m in manifests] == [
        ("Deployment", "shop-inference-canary"),  # first: it runs before the stable shrinks
        ("Deployment", "shop-inference"),
        ("Service", "shop-inference"),
    ]
    stable = named(manifests, "Deployment", "shop-inference")
    canary_ = named(manifests, "Deployment", "shop-inference-canary")
    assert (stable["spec"]["replicas"], canary_["spec"]["replicas"]) == (3, 1)
    service = named(manifests, "Service", "shop-inference")["spec"]["selector"]
    assert selects(service, pod_labels(stable)) and selects(service, pod_labels(canary_))
    # each Deployment's own selector picks its own pods; the canary's never the stable's
    canary_selector = canary_["spec"]["selector"]["matchLabels"]
    assert selects(canary_selector, pod_labels(canary_))
    assert not selects(canary_selector, pod_labels(stable))
    for manifest in manifests:
        kubernetes_validate.validate(manifest, "1.30", strict=True)


def test_the_canary_serves_the_version_with_its_digest_pinned(bucket: Path) -> None:
    digest = hashlib.sha256(f"{MODEL}/v2".encode()).hexdigest()
    manifests = canary(bucket)  # a bare version: the bucket says which model has it
    canary_ = named(manifests, "Deployment", "shop-inference-canary")
    stable = named(manifests, "Deployment", "shop-inference")
    args = container(canary_)["args"]
    assert args[-2:] == ["--model", f"{MODEL}=v2"]
    assert env(canary_)["HML_MODEL_SHA256_WINE_CLASSIFIER"] == digest
    assert "--model" not in container(stable)["args"]  # the stable is as deployed before
    assert "HML_MODEL_SHA256_WINE_CLASSIFIER" not in env(stable)
    record = json.loads(canary_["metadata"]["annotations"][CANARY_RECORD])
    assert record == {
        "stable": "shop-inference",
        "model": MODEL,
        "version": "v2",
        "sha256": f"sha256:{digest}",
        "weight": 10,
        "replicas": 4,
    }
    note = describe_canary(manifests)
    assert note is not None and "shop-inference-canary serves wine-classifier=v2" in note
    assert "1 of 4 pods: about 25% of the Service's requests (weight 10%" in note
    assert "more --replicas split closer" in note


def test_with_an_ingress_the_canary_ingress_carries_the_exact_weight(bucket: Path) -> None:
    app = make_app(configure=lambda d: d.with_ingress("shop.example.com", "/api", "nginx", "tls"))
    manifests = canary(bucket, app=app, weight=7)
    assert [(m["kind"], m["metadata"]["name"]) for m in manifests] == [
        ("Deployment", "shop-inference-canary"),
        ("Service", "shop-inference-canary"),
        ("Deployment", "shop-inference"),
        ("Service", "shop-inference"),
        ("Ingress", "shop-inference"),
        ("Ingress", "shop-inference-canary"),  # last: once the canary runs
    ]
    stable = named(manifests, "Deployment", "shop-inference")
    canary_ = named(manifests, "Deployment", "shop-inference-canary")
    main = named(manifests, "Service", "shop-inference")["spec"]["selector"]
    own = named(manifests, "Service", "shop-inference-canary")["spec"]["selector"]
    # the Ingress splits the requests: the main Service keeps the stable pods only
    assert selects(main, pod_labels(stable)) and not selects(main, pod_labels(canary_))
    assert selects(own, pod_labels(canary_)) and not selects(own, pod_labels(stable))
    route = named(manifests, "Ingress", "shop-inference-canary")
    assert route["metadata"]["annotations"] == {NGINX_CANARY: "true", NGINX_CANARY_WEIGHT: "7"}
    assert route["spec"]["ingressClassName"] == "nginx" and "tls" not in route["spec"]
    rule = route["spec"]["rules"][0]
    assert (rule["host"], rule["http"]["paths"][0]["path"]) == ("shop.example.com", "/api")
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "shop-inference-canary"
    note = describe_canary(manifests)
    assert note is not None and "sends it 7% of the requests to shop.example.com" in note
    for manifest in manifests:
        kubernetes_validate.validate(manifest, "1.30", strict=True)


def test_with_an_hpa_the_canary_takes_its_share_of_the_minimum(bucket: Path) -> None:
    manifests = canary(bucket, hpa=(10, 20, 80), weight=20)
    stable = named(manifests, "Deployment", "shop-inference")
    assert "replicas" not in stable["spec"]  # still the autoscaler's
    assert named(manifests, "Deployment", "shop-inference-canary")["spec"]["replicas"] == 2
    hpa = named(manifests, "HorizontalPodAutoscaler", "shop-inference")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "shop-inference"


def test_model_versions_that_cannot_be_served_are_refused(bucket: Path, tmp_path: Path) -> None:
    with pytest.raises(DeclarationError, match=r"no such version .* \(published: v1, v2\)"):
        canary(bucket, canary=(MODEL, "v3"))
    publish(bucket, "other-model", "v2")
    with pytest.raises(UsageError, match="models other-model, wine-classifier all have it"):
        canary(bucket)
    with pytest.raises(UsageError, match="--replicas 1 or more"):
        canary(bucket, canary=(MODEL, "v2"), replicas=0)
    with pytest.raises(UsageError, match="from 1 to 99"):
        canary(bucket, canary=(MODEL, "v2"), weight=100)


def test_without_a_readable_bucket_the_model_must_be_named_and_is_not_pinned() -> None:
    options = DeployOptions(canary=(None, "v2"), replicas=2)  # a local root the pods never see
    with pytest.raises(UsageError, match="name the model"):
        build_manifests(make_app(), options)
    options = DeployOptions(canary=(MODEL, "v2"), replicas=2)
    canary_ = build_manifests(make_app(), options)[0]
    assert container(canary_)["args"][-2:] == ["--model", f"{MODEL}=v2"]
    assert not any(k.startswith("HML_MODEL_SHA256") for k in env(canary_))


def test_model_pins_the_stable_version(bucket: Path) -> None:
    options = DeployOptions(host_root=str(bucket), models=((MODEL, "v1"),))
    stable = build_manifests(make_app(), options)[0]
    assert container(stable)["args"][-2:] == ["--model", f"{MODEL}=v1"]
    assert env(stable)["HML_MODEL_SHA256_WINE_CLASSIFIER"] == (
        hashlib.sha256(f"{MODEL}/v1".encode()).hexdigest()
    )


def test_promote_gives_the_stable_the_canarys_pods_and_abort_its_replicas(bucket: Path) -> None:
    manifests = canary(bucket, app=make_app(configure=lambda d: d.with_label("team", "ml")))
    stable = named(manifests, "Deployment", "shop-inference")
    canary_ = named(manifests, "Deployment", "shop-inference-canary")
    live = LiveCanary(
        "default", stable, canary_, json.loads(canary_["metadata"]["annotations"][CANARY_RECORD])
    )
    promoted = live.promoted()
    assert promoted["metadata"] == stable["metadata"]
    assert promoted["spec"]["selector"] == stable["spec"]["selector"]
    assert pod_labels(promoted) == pod_labels(stable)  # its selector's, without the track
    assert promoted["spec"]["replicas"] == 4
    assert container(promoted) == container(canary_)  # the version the canary served
    restored = live.restored()
    assert restored["spec"]["replicas"] == 4
    assert container(restored) == container(stable)
    assert [o[1] for o in live.objects()] == ["Ingress", "Service", "Deployment"]


def deploy(app: Any, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(app.cli(), ["inference", "deploy", *args], prog_name="shop")
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_cli_dry_run_prints_both_deployments(
    bucket: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--dry-run", "--host-root", str(bucket), "--replicas", "3"]
    code, out, err = deploy(make_app(), *args, "--canary", f"{MODEL}=v2", capsys=capsys)
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert [d["metadata"]["name"] for d in docs] == [
        "shop-inference-canary",
        "shop-inference",
        "shop-inference",
    ]
    assert "serves wine-classifier=v2" in err and "1 of 3 pods" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--weight", "10"], "--weight applies to --canary"),
        (["--canary", "v2", "--weight", "0"], "--weight"),
        (["--promote", "--canary", "v2"], "--promote and --canary do not go together"),
        (["--promote", "--abort-canary"], "do not go together"),
        (["--abort-canary", "--image", "x:1"], "do not go together"),
        (["--canary", "=v2"], "[MODEL=]VERSION"),
    ],
)
def test_canary_options_that_do_not_fit_exit_2(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = deploy(make_app(), "--dry-run", *args, capsys=capsys)
    assert code == 2, err
    assert needle in err and "Traceback" not in err
