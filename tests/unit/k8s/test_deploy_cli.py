"""`<app> inference deploy` without a cluster: dry-run, bad options, no or unreachable server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hypermodel.cli.errors import run_cli
from hypermodel.k8s.apply import _covers, _owned_filled, _patch_body, _with_last_applied
from hypermodel.k8s.manifests import DeployOptions, build_manifests
from tests.support import free_port, require_module

from .apps import make_app

require_module("kubernetes")


def deploy(app: Any, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(app.cli(), ["inference", "deploy", *args], prog_name="shop")
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def write_kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    path.write_text(json.dumps(config))
    return path


def test_dry_run_prints_the_manifests_and_needs_no_cluster(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    app = make_app()
    missing = str(tmp_path / "no-such-kubeconfig")
    code, out, err = deploy(
        app, "--dry-run", "--kubeconfig", missing, "--ingress-host", "a.example.com", capsys=capsys
    )
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert docs == build_manifests(app, DeployOptions(ingress_host="a.example.com"))


def test_cli_options_reach_the_manifests(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--dry-run", "-n", "ml", "--replicas", "0", "--service-type", "NodePort"]
    code, out, _ = deploy(make_app(), *args, "--image", "reg/x:2", "--hpa", "1:3", capsys=capsys)
    assert code == 0
    kinds = {d["kind"]: d for d in yaml.safe_load_all(out)}
    assert kinds["Service"]["spec"]["type"] == "NodePort"
    assert kinds["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 3
    assert kinds["Deployment"]["metadata"]["namespace"] == "ml"
    assert kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/x:2"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--hpa", "5:1"], "MIN:MAX"),
        (["--replicas", "-1"], "--replicas"),
        (["--service-type", "Magic"], "--service-type"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = deploy(make_app(), "--dry-run", *args, capsys=capsys)
    assert code == 2
    assert needle in err and "Traceback" not in err


def test_missing_kubeconfig_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code, _, err = deploy(
        make_app(), "--kubeconfig", str(tmp_path / "nothing"), "--context", "x", capsys=capsys
    )
    assert code == 1
    assert err.startswith("error: cannot load the Kubernetes configuration")
    assert "--dry-run" in err and "Traceback" not in err


def test_unreachable_server_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{free_port()}")
    code, _, err = deploy(make_app(), "--kubeconfig", str(kubeconfig), capsys=capsys)
    assert code == 1
    assert "cannot reach the Kubernetes API server at http://127.0.0.1:" in err
    assert err.strip().splitlines()[-1].startswith("error: cannot reach")
    assert "Traceback" not in err


def test_in_cluster_config_is_used_inside_a_pod(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Inside a pod there is no kubeconfig: the service account's token and CA are read instead.
    import certifi
    from kubernetes.config import incluster_config

    missing = tmp_path / "no-token"
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(missing))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(free_port()))
    code, _, err = deploy(make_app(), capsys=capsys)
    assert code == 1
    assert "cannot load the Kubernetes configuration" in err
    assert "token" in err.lower() and "Traceback" not in err

    # With the files in place, the pod's service (not any kubeconfig) is what gets called.
    missing.write_text("pod-token")
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", certifi.where())
    code, _, err = deploy(make_app(), capsys=capsys)
    assert code == 1
    assert "cannot reach the Kubernetes API server at https://127.0.0.1:" in err


# -- the patch logic, without a server ---------------------------------------------------------------
def test_patch_replaces_owned_lists_and_nulls_dropped_keys() -> None:
    old = build_manifests(make_app(configure=lambda d: d.with_annotation("a", "1")))[0]
    new = build_manifests(make_app())[0]
    live = _with_last_applied(old)
    patch = _patch_body(_with_last_applied(new), live)
    pod = patch["spec"]["template"]["spec"]
    assert pod["containers"][-1] == {"$patch": "replace"}
    assert pod["volumes"][-1] == {"$patch": "replace"}
    assert patch["spec"]["template"]["metadata"]["annotations"]["a"] is None


def test_patch_keeps_allocated_node_ports() -> None:
    service = build_manifests(make_app(), DeployOptions(service_type="NodePort"))[1]
    live = _with_last_applied(service)
    live["spec"]["ports"][0]["nodePort"] = 31234
    patch = _patch_body(_with_last_applied(service), live)
    assert patch["spec"]["ports"][0]["nodePort"] == 31234
    assert patch["spec"]["ports"][-1] == {"$patch": "replace"}
    back = build_manifests(make_app())[1]  # ClusterIP again: the node port must go
    patch = _patch_body(_with_last_applied(back), live)
    assert "nodePort" not in patch["spec"]["ports"][0]


def test_covers_allows_server_defaults_but_not_differences() -> None:
    desired = _owned_filled(build_manifests(make_app())[0])
    live = json.loads(json.dumps(desired))
    live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/x"
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    assert _covers(desired, live)
    live["spec"]["template"]["spec"]["containers"][0]["env"].pop()
    assert not _covers(desired, live)
    live = json.loads(json.dumps(desired))
    live["spec"]["template"]["spec"]["volumes"].append({"name": "stale", "emptyDir": {}})
    assert not _covers(desired, live)
