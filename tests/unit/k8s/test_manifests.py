"""Manifest shape, label/selector consistency and schema validation of every generated object."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml

from hypermodel.errors import DeclarationError, UsageError
from hypermodel.k8s.manifests import (
    DeployOptions,
    build_manifests,
    dns_label,
    parse_hpa,
    to_yaml,
)
from tests.support import require_module

from .apps import make_app

kubernetes_validate = require_module("kubernetes_validate")


def by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in manifests}


def container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return by_kind(manifests)["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def full_options() -> DeployOptions:
    return DeployOptions(ingress_host="shop.example.com", hpa=(2, 6, 70))


def test_default_objects_are_a_deployment_and_a_cluster_ip_service() -> None:
    manifests = build_manifests(make_app())
    assert [(m["apiVersion"], m["kind"]) for m in manifests] == [
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
    ]
    assert {m["metadata"]["name"] for m in manifests} == {"shop-inference"}
    assert {m["metadata"]["namespace"] for m in manifests} == {"default"}
    assert by_kind(manifests)["Service"]["spec"]["type"] == "ClusterIP"


def test_selector_labels_and_service_agree() -> None:
    app = make_app(configure=lambda d: d.with_label("team", "ml"))
    kinds = by_kind(build_manifests(app, full_options()))
    deployment = kinds["Deployment"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= template_labels.items()
    assert template_labels["team"] == "ml"
    assert kinds["Service"]["spec"]["selector"] == selector
    assert kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    backend = kinds["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == kinds["Service"]["metadata"]["name"]
    assert backend["port"]["name"] == kinds["Service"]["spec"]["ports"][0]["name"]


def test_container_runs_the_production_server_with_probes() -> None:
    c = container(build_manifests(make_app()))
    assert c["image"] == "registry.example.com/shop:1.0"
    assert "command" not in c  # the image's ENTRYPOINT is the app's console script
    assert c["args"][:2] == ["inference", "run-prod"]
    assert c["args"][c["args"].index("--port") + 1] == "8080"
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "256Mi"},
    }


def test_env_has_app_env_configurator_env_and_secrets_by_name_only() -> None:
    app = make_app(configure=lambda d: d.with_env("EXTRA", 3))
    env = container(build_manifests(app))["env"]
    plain = {e["name"]: e["value"] for e in env if "value" in e}
    assert plain["MODEL_NAME"] == "wine" and plain["LOG_LEVEL"] == "info"
    assert plain["EXTRA"] == "3"
    assert plain["GOOGLE_APPLICATION_CREDENTIALS"].startswith("/secret/gcp-credentials/shop-sa/")
    secret = next(e for e in env if e["name"] == "DB_PASSWORD")
    assert secret == {
        "name": "DB_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "password"}},
    }


def test_volumes_secret_and_empty_dir_are_mounted() -> None:
    manifests = build_manifests(make_app())
    pod = by_kind(manifests)["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["secret-shop-sa"]["secret"] == {"secretName": "shop-sa"}
    assert volumes["scratch"]["emptyDir"] == {}
    mounts = {m["name"]: m for m in container(manifests)["volumeMounts"]}
    assert mounts.keys() == volumes.keys()
    assert mounts["secret-shop-sa"]["readOnly"] is True
    assert mounts["scratch"]["mountPath"] == "/scratch"


def test_every_manifest_passes_kubernetes_schema_validation() -> None:
    def configure(d: Any) -> Any:
        return (
            d.with_image_pull_secret("regcred")
            .with_service_account("shop-runner")
            .with_node_selector("pool", "cpu")
            .with_toleration("dedicated", "ml")
            .with_pvc("models", "/models")
            .with_annotation("sidecar.istio.io/inject", "false")
            .with_ingress("shop.example.com", ingress_class="nginx", tls_secret="shop-tls")
            .with_service_type("LoadBalancer")
        )

    manifests = build_manifests(make_app(configure=configure), DeployOptions(hpa=(1, 4, 60)))
    assert [m["kind"] for m in manifests] == [
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
    ]
    assert by_kind(manifests)["HorizontalPodAutoscaler"]["apiVersion"] == "autoscaling/v2"
    for manifest in manifests:
        kubernetes_validate.validate(manifest, "1.30", strict=True)


def test_schema_validation_catches_a_broken_manifest() -> None:
    # The check above can fail: a misspelt field is refused in strict mode.
    deployment = build_manifests(make_app())[0]
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.30", strict=True)


def test_hpa_owns_replicas_and_needs_a_cpu_request() -> None:
    kinds = by_kind(build_manifests(make_app(), DeployOptions(hpa=(2, 5, 75))))
    assert "replicas" not in kinds["Deployment"]["spec"]
    spec = kinds["HorizontalPodAutoscaler"]["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 5)
    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 75

    def no_cpu(d: Any) -> None:
        d.cpu_request = None

    app = make_app(configure=no_cpu)
    with pytest.raises(DeclarationError, match="CPU request"):
        build_manifests(app, DeployOptions(hpa=(1, 3, 80)))


def test_deploy_options_win_over_configurators() -> None:
    app = make_app(configure=lambda d: d.with_replicas(3).with_service_type("NodePort"))
    kinds = by_kind(build_manifests(app))
    assert kinds["Deployment"]["spec"]["replicas"] == 3
    assert kinds["Service"]["spec"]["type"] == "NodePort"
    options = DeployOptions(
        namespace="prod", image="reg/shop:2", replicas=5, service_type="LoadBalancer"
    )
    kinds = by_kind(build_manifests(app, options))
    assert kinds["Deployment"]["spec"]["replicas"] == 5
    assert kinds["Service"]["spec"]["type"] == "LoadBalancer"
    assert {m["metadata"]["namespace"] for m in kinds.values()} == {"prod"}
    assert container(list(kinds.values()))["image"] == "reg/shop:2"


def test_ingress_host_option_keeps_the_configured_class_and_tls() -> None:
    app = make_app(configure=lambda d: d.with_ingress("a.example.com", "/api", "nginx", "tls"))
    ingress = by_kind(build_manifests(app, DeployOptions(ingress_host="b.example.com")))["Ingress"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["b.example.com"], "secretName": "tls"}]
    rule = ingress["spec"]["rules"][0]
    assert (rule["host"], rule["http"]["paths"][0]["path"]) == ("b.example.com", "/api")


def test_a_configurator_may_return_none_or_the_deployment() -> None:
    seen: list[str] = []

    def returns_none(d: Any) -> None:
        seen.append(d.deployment_name)
        d.with_env("FROM_NONE", "1")

    env = container(build_manifests(make_app(configure=returns_none)))["env"]
    assert seen == ["shop-inference"]
    assert {"name": "FROM_NONE", "value": "1"} in env


def test_app_namespace_and_name_become_kubernetes_names() -> None:
    app = make_app(name="Wine_Shop", k8s_namespace="ml-serving")
    manifests = build_manifests(app)
    assert {m["metadata"]["name"] for m in manifests} == {"wine-shop-inference"}
    assert {m["metadata"]["namespace"] for m in manifests} == {"ml-serving"}
    assert dns_label("A.b_C--") == "a-b-c"


def test_remote_bucket_root_is_passed_to_the_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HML_ROOT", "gs://bucket/hml")
    env = container(build_manifests(make_app()))["env"]
    assert {"name": "HML_ROOT", "value": "gs://bucket/hml"} in env
    monkeypatch.setenv("HML_ROOT", "/tmp/local-root")
    env = container(build_manifests(make_app()))["env"]
    assert all(e["name"] != "HML_ROOT" for e in env)


def test_declaration_errors_name_the_fix() -> None:
    with pytest.raises(DeclarationError, match="image_url"):
        build_manifests(make_app(image=None))
    clash = make_app(configure=lambda d: d.with_env("DB_PASSWORD", "plain"))
    with pytest.raises(DeclarationError, match="DB_PASSWORD"):
        build_manifests(clash)
    with pytest.raises(UsageError, match="service type"):
        build_manifests(make_app(), DeployOptions(service_type="External"))
    same_name = make_app(configure=lambda d: d.with_empty_dir("scratch", "/other", medium="Memory"))
    with pytest.raises(DeclarationError, match="scratch"):
        build_manifests(same_name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1:3:70", (1, 3, 70)), ("2:10", (2, 10, 80)), ("4:4:100", (4, 4, 100))],
)
def test_parse_hpa(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_hpa(text) == expected


@pytest.mark.parametrize("text", ["", "3", "3:1", "0:2", "a:b:c", "1:2:0", "1:2:3:4"])
def test_parse_hpa_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="MIN:MAX"):
        parse_hpa(text)


def test_yaml_round_trips_and_is_deterministic() -> None:
    manifests = build_manifests(make_app(), full_options())
    text = to_yaml(manifests)
    assert list(yaml.safe_load_all(text)) == manifests
    assert to_yaml(build_manifests(make_app(), full_options())) == text
    assert "shop-db" in text and "password" in text  # the secret's name and key, nothing more


def test_manifests_module_does_not_import_the_kubernetes_client() -> None:
    code = (
        "import sys, hypermodel.k8s.manifests, hypermodel.cli.inference_deploy;"
        "print('kubernetes' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
