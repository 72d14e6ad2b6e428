"""The deploy options for running a locally built image on a node: pull policy, host root, drain."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from hypermodel.cli.errors import run_cli
from hypermodel.errors import DeclarationError, UsageError
from hypermodel.k8s.manifests import DeployOptions, build_manifests
from tests.support import require_module

from .apps import make_app


def deployment_of(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return next(m for m in manifests if m["kind"] == "Deployment")


def container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return deployment_of(manifests)["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def env(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container(manifests).get("env", [])}


def test_pull_policy_is_kubernetes_default_unless_set() -> None:
    assert "imagePullPolicy" not in container(build_manifests(make_app()))
    options = DeployOptions(image_pull_policy="Never")
    assert container(build_manifests(make_app(), options))["imagePullPolicy"] == "Never"
    configured = make_app(configure=lambda d: d.with_image_pull_policy("IfNotPresent"))
    assert container(build_manifests(configured))["imagePullPolicy"] == "IfNotPresent"
    with pytest.raises(DeclarationError, match="not one of Always, IfNotPresent, Never"):
        build_manifests(make_app(configure=lambda d: d.with_image_pull_policy("Sometimes")))


def test_host_root_is_a_read_only_host_path_and_hml_root() -> None:
    manifests = build_manifests(make_app(), DeployOptions(host_root="/srv/hml/"))
    pod = deployment_of(manifests)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "hml-root")
    assert volume["hostPath"] == {"path": "/srv/hml", "type": "Directory"}
    mount = next(m for m in container(manifests)["volumeMounts"] if m["name"] == "hml-root")
    assert mount == {"name": "hml-root", "mountPath": "/srv/hml", "readOnly": True}
    assert env(manifests)["HML_ROOT"] == "/srv/hml"
    assert "hml-root" not in str(build_manifests(make_app()))


def test_host_root_must_be_absolute_and_not_clash() -> None:
    with pytest.raises(UsageError, match="absolute path"):
        build_manifests(make_app(), DeployOptions(host_root="srv/hml"))
    clash = make_app(env={"HML_ROOT": "gs://bucket/hml"})
    with pytest.raises(DeclarationError, match="keep one"):
        build_manifests(clash, DeployOptions(host_root="/srv/hml"))
    taken = make_app(configure=lambda d: d.with_empty_dir("hml-root", "/x"))
    with pytest.raises(DeclarationError, match="'hml-root' is taken"):
        build_manifests(taken, DeployOptions(host_root="/srv/hml"))


def test_drain_is_an_env_var_with_room_in_the_grace_period() -> None:
    manifests = build_manifests(make_app())
    assert env(manifests)["HML_DRAIN_SECONDS"] == "5"
    assert "--drain-seconds" not in container(manifests)["args"]  # older images still start
    pod = deployment_of(manifests)["spec"]["template"]["spec"]
    assert "terminationGracePeriodSeconds" not in pod  # Kubernetes' 30 s is enough
    long = build_manifests(make_app(configure=lambda d: d.with_drain_seconds(40)))
    assert deployment_of(long)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 50
    none = build_manifests(make_app(configure=lambda d: d.with_drain_seconds(0)))
    assert "HML_DRAIN_SECONDS" not in env(none)


def deploy(app: Any, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(app.cli(), ["inference", "deploy", *args], prog_name="shop")
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_cli_pull_policy_and_host_root(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--dry-run", "--image-pull-policy", "Never", "--host-root", "/srv/hml"]
    code, out, err = deploy(make_app(), *args, capsys=capsys)
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert container(docs)["imagePullPolicy"] == "Never"
    assert env(docs)["HML_ROOT"] == "/srv/hml"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--dry-run", "--timeout", "30"], "--timeout applies to --wait"),
        (["--dry-run", "--wait"], "--wait needs a cluster"),
        (["--dry-run", "--image-pull-policy", "Sometimes"], "--image-pull-policy"),
        (["--dry-run", "--host-root", "relative/dir"], "absolute path"),
        (["--wait", "--timeout", "0"], "--timeout"),
    ],
)
def test_bad_wait_and_node_options_exit_2(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    require_module("kubernetes")
    code, _, err = deploy(make_app(), *args, capsys=capsys)
    assert code == 2, err
    assert needle in err and "Traceback" not in err


def test_connection_limits_reach_the_pod_env() -> None:
    app = make_app()
    (deployment, *_) = build_manifests(
        app, DeployOptions(connection_limit=2000, channel_timeout=620)
    )
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["HML_CONNECTION_LIMIT"] == "2000" and env["HML_CHANNEL_TIMEOUT"] == "620"
    (plain, *_) = build_manifests(app, DeployOptions())
    names = {e["name"] for e in plain["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "HML_CONNECTION_LIMIT" not in names
