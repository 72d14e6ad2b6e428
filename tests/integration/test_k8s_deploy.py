"""`<app> inference deploy` against a real kube-apiserver + etcd (or the cluster of $KUBECONFIG)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import yaml

from hypermodel.cli.errors import run_cli
from tests.integration.k8s_server import Cluster, k8s_cluster, k8s_namespace
from tests.support import REPO, require_module
from tests.unit.k8s.apps import make_app

__all__ = ["k8s_cluster", "k8s_namespace"]  # fixtures used below, imported from k8s_server

pytestmark = pytest.mark.integration

DEPLOYMENTS = "/apis/apps/v1/namespaces/{ns}/deployments/shop-inference"
SERVICES = "/api/v1/namespaces/{ns}/services/shop-inference"
INGRESSES = "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/shop-inference"


class Deployer:
    def __init__(self, cluster: Cluster, namespace: str, capsys: pytest.CaptureFixture[str]):
        self.cluster, self.namespace, self.capsys = cluster, namespace, capsys

    def __call__(self, app: Any, *args: str) -> tuple[int, str, str]:
        argv = ["inference", "deploy", "--kubeconfig", str(self.cluster.kubeconfig)]
        argv += ["--namespace", self.namespace, *args]
        with pytest.raises(SystemExit) as exit_info:
            run_cli(app.cli(), argv, prog_name="shop")
        out, err = self.capsys.readouterr()
        return int(exit_info.value.code or 0), out, err

    def get(self, template: str) -> Any:
        return self.cluster.get(template.format(ns=self.namespace))


@pytest.fixture
def deployer(
    k8s_cluster: Cluster, k8s_namespace: str, capsys: pytest.CaptureFixture[str]
) -> Deployer:
    return Deployer(k8s_cluster, k8s_namespace, capsys)


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_create_then_patch_then_unchanged(deployer: Deployer) -> None:
    app = make_app(env={"MODEL_NAME": "wine", "THRESHOLD": "0.5"})
    code, out, err = deployer(app, "--ingress-host", "shop.example.com")
    assert code == 0, err
    assert out.splitlines() == [
        "deployment/shop-inference created",
        "service/shop-inference created",
        "ingress/shop-inference created",
    ]
    deployment = deployer.get(DEPLOYMENTS)
    assert deployment["spec"]["selector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert env_of(deployment)["THRESHOLD"] == "0.5"
    service = deployer.get(SERVICES)
    assert service["spec"]["clusterIP"].startswith("10.0.0.")
    assert service["spec"]["ports"][0]["protocol"] == "TCP"
    assert deployer.get(INGRESSES)["spec"]["rules"][0]["host"] == "shop.example.com"

    # Second deploy: one env var changed -> the Deployment is patched, the rest untouched.
    app = make_app(env={"MODEL_NAME": "wine", "THRESHOLD": "0.9"})
    code, out, err = deployer(app, "--ingress-host", "shop.example.com")
    assert code == 0, err
    assert out.splitlines() == [
        "deployment/shop-inference patched",
        "service/shop-inference unchanged",
        "ingress/shop-inference unchanged",
    ]
    patched = deployer.get(DEPLOYMENTS)
    assert env_of(patched)["THRESHOLD"] == "0.9"
    assert patched["metadata"]["generation"] == deployment["metadata"]["generation"] + 1
    assert deployer.get(SERVICES)["spec"]["clusterIP"] == service["spec"]["clusterIP"]

    # Third deploy: nothing to do, nothing written.
    code, out, err = deployer(app, "--ingress-host", "shop.example.com")
    assert code == 0, err
    assert out.splitlines() == [
        "deployment/shop-inference unchanged",
        "service/shop-inference unchanged",
        "ingress/shop-inference unchanged",
    ]
    again = deployer.get(DEPLOYMENTS)
    assert again["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]


def test_what_a_deploy_stops_declaring_is_removed(deployer: Deployer) -> None:
    def extra(d: Any) -> Any:
        return d.with_env("DEBUG", "1").with_empty_dir("cache", "/cache").with_annotation("x", "y")

    assert deployer(make_app(configure=extra))[0] == 0
    code, out, err = deployer(make_app())
    assert code == 0, err
    assert "deployment/shop-inference patched" in out.splitlines()
    deployment = deployer.get(DEPLOYMENTS)
    assert "DEBUG" not in env_of(deployment)
    pod = deployment["spec"]["template"]
    assert {v["name"] for v in pod["spec"]["volumes"]} == {"secret-shop-sa", "scratch"}
    assert "x" not in pod["metadata"]["annotations"]


def test_secrets_are_referenced_by_name_only(deployer: Deployer) -> None:
    secret = {
        "metadata": {"name": "shop-db"},
        "stringData": {"password": "correct-horse-battery"},
    }
    deployer.cluster.post(f"/api/v1/namespaces/{deployer.namespace}/secrets", secret)
    code, out, err = deployer(make_app())
    assert code == 0, err
    deployment = deployer.get(DEPLOYMENTS)
    assert env_of(deployment)["DB_PASSWORD"] == {
        "secretKeyRef": {"name": "shop-db", "key": "password"}
    }
    assert "correct-horse-battery" not in yaml.safe_dump(deployment) + out + err


def test_rejected_object_gives_the_servers_message(deployer: Deployer) -> None:
    # A request above its limit passes schema validation; only the API server refuses it.
    def too_much(d: Any) -> Any:
        return d.with_resources(cpu="2", limit_cpu="1")

    code, _, err = deployer(make_app(configure=too_much))
    assert code == 1
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("error: the Kubernetes API server at ")
    assert "creating Deployment 'shop-inference'" in err
    assert "422 Invalid" in err
    assert "must be less than or equal to cpu limit" in err
    assert deployer.get(DEPLOYMENTS) is None
    assert deployer.get(SERVICES) is None  # stopped at the first refusal

    code, _, err = deployer(make_app(configure=lambda d: d.with_port(70000)))
    assert code == 1
    assert "containerPort" in err and "between 1 and 65535" in err


def test_missing_namespace_says_how_to_create_it(deployer: Deployer) -> None:
    code, _, err = deployer(make_app(), "--namespace", "no-such-namespace")
    assert code == 1
    assert "404" in err and "kubectl create namespace no-such-namespace" in err


def test_dry_run_sends_nothing(deployer: Deployer) -> None:
    code, out, err = deployer(make_app(), "--dry-run")
    assert code == 0, err
    assert [d["kind"] for d in yaml.safe_load_all(out)] == ["Deployment", "Service"]
    assert deployer.get(DEPLOYMENTS) is None
    assert deployer.get(SERVICES) is None


def test_node_port_and_hpa(deployer: Deployer) -> None:
    args = ("--service-type", "NodePort", "--hpa", "1:4:70")
    code, out, err = deployer(make_app(), *args)
    assert code == 0, err
    assert "horizontalpodautoscaler/shop-inference created" in out.splitlines()
    node_port = deployer.get(SERVICES)["spec"]["ports"][0]["nodePort"]
    group = deployer.cluster.get("/apis/autoscaling")
    version = "v2" if any(v["version"] == "v2" for v in group["versions"]) else "v2beta2"
    path = f"/apis/autoscaling/{version}/namespaces/{{ns}}/horizontalpodautoscalers/shop-inference"
    hpa = deployer.get(path)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)

    # A change elsewhere keeps the allocated node port; the HPA is left alone.
    code, out, err = deployer(make_app(env={"MODEL_NAME": "red"}), *args)
    assert code == 0, err
    assert out.splitlines()[0] == "deployment/shop-inference patched"
    assert "horizontalpodautoscaler/shop-inference unchanged" in out.splitlines()
    assert deployer.get(SERVICES)["spec"]["ports"][0]["nodePort"] == node_port

    # Back to ClusterIP: the node port goes with it.
    code, out, err = deployer(make_app(env={"MODEL_NAME": "red"}), "--hpa", "1:4:70")
    assert code == 0, err
    assert "service/shop-inference patched" in out.splitlines()
    service = deployer.get(SERVICES)
    assert service["spec"]["type"] == "ClusterIP"
    assert "nodePort" not in service["spec"]["ports"][0]


def test_context_option_picks_the_kubeconfig_context(deployer: Deployer) -> None:
    current = yaml.safe_load(deployer.cluster.kubeconfig.read_text())["current-context"]
    code, out, err = deployer(make_app(), "--context", current)
    assert code == 0, err
    assert "deployment/shop-inference created" in out.splitlines()
    code, _, err = deployer(make_app(), "--context", "no-such-context")
    assert code == 1
    assert "context 'no-such-context'" in err and "Traceback" not in err


def test_committed_demo_manifests_are_accepted_by_the_server(deployer: Deployer) -> None:
    # k8s/wines-inference.yaml as `kubectl apply -f` would send it, into the test namespace.
    from hypermodel.k8s.apply import apply_manifests, connect

    docs = list(yaml.safe_load_all((REPO / "k8s" / "wines-inference.yaml").read_text()))
    for doc in docs:
        doc["metadata"]["namespace"] = deployer.namespace
    api = connect(str(deployer.cluster.kubeconfig))
    try:
        first = [o.action for o in apply_manifests(api, docs)]
        second = [o.action for o in apply_manifests(api, docs)]
    finally:
        api.close()
    assert first == ["created"] * len(docs)
    assert second == ["unchanged"] * len(docs)


def test_demo_app_deploys_twice_from_its_console_script(deployer: Deployer) -> None:
    # The demo's own console script in a fresh process: create, then patch one setting.
    require_module("wines")
    code = "import sys; from wines.app import main; sys.argv[0] = 'wines'; main()"
    base = [sys.executable, "-c", code, "inference", "deploy"]
    base += ["--kubeconfig", str(deployer.cluster.kubeconfig), "-n", deployer.namespace]
    env = {k: v for k, v in os.environ.items() if k != "WINES_IMAGE"}
    env["HML_ROOT"] = ".hml"

    def run(*extra: str) -> list[str]:
        done = subprocess.run([*base, *extra], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    assert run() == ["deployment/wines-inference created", "service/wines-inference created"]
    assert run("--replicas", "2") == [
        "deployment/wines-inference patched",
        "service/wines-inference unchanged",
    ]
    deployment = deployer.cluster.get(
        f"/apis/apps/v1/namespaces/{deployer.namespace}/deployments/wines-inference"
    )
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["inference", "run-prod"]


def test_in_cluster_config_inside_a_pod(
    deployer: Deployer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # A pod sees KUBERNETES_SERVICE_HOST/PORT and its service account's token and CA files.
    if deployer.cluster.external:
        # Legitimately skipped, also under CI: an external cluster (HML_TEST_KUBECONFIG=1) may
        # authenticate by client certificate or exec plugin, so there is no bearer token and CA
        # file to hand to the in-cluster loader. The local test apiserver always runs this.
        pytest.skip(
            "in-cluster config needs the bearer token and CA file of the local test "
            "apiserver; an external cluster (HML_TEST_KUBECONFIG=1) does not provide them"
        )
    from kubernetes.config import incluster_config

    config = json.loads(deployer.cluster.kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]
    token = tmp_path / "token"
    token.write_text(config["users"][0]["user"]["token"])
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", server["certificate-authority"])
    host, port = server["server"].removeprefix("https://").rsplit(":", 1)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig-in-a-pod"))

    argv = ["inference", "deploy", "--namespace", deployer.namespace]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(make_app().cli(), argv, prog_name="shop")
    out, err = deployer.capsys.readouterr()
    assert exit_info.value.code == 0, err
    assert out.splitlines() == [
        "deployment/shop-inference created",
        "service/shop-inference created",
    ]


# -- canaries ----------------------------------------------------------------------------------------
CANARY = "/apis/apps/v1/namespaces/{ns}/deployments/shop-inference-canary"
CANARY_SERVICE = "/api/v1/namespaces/{ns}/services/shop-inference-canary"
CANARY_INGRESS = "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/shop-inference-canary"


def labels_of(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def test_canary_beside_the_stable_then_abort(deployer: Deployer, tmp_path: Any) -> None:
    from tests.unit.k8s.apps import publish

    bucket = tmp_path / "bucket"
    publish(bucket, "wine-classifier", "v1")
    publish(bucket, "wine-classifier", "v2")
    base = ("--host-root", str(bucket), "--replicas", "4")
    assert deployer(make_app(), *base)[0] == 0

    code, out, err = deployer(make_app(), *base, "--canary", "v2", "--weight", "25")
    assert code == 0, err
    assert out.splitlines() == [
        "deployment/shop-inference-canary created",
        "deployment/shop-inference patched",
        "service/shop-inference unchanged",
    ]
    assert "1 of 4 pods: about 25% of the Service's requests" in err
    stable, canary = deployer.get(DEPLOYMENTS), deployer.get(CANARY)
    assert (stable["spec"]["replicas"], canary["spec"]["replicas"]) == (3, 1)
    selector = deployer.get(SERVICES)["spec"]["selector"]
    assert selector.items() <= labels_of(stable).items()
    assert selector.items() <= labels_of(canary).items()
    args = canary["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--model", "wine-classifier=v2"]
    assert "HML_MODEL_SHA256_WINE_CLASSIFIER" in env_of(canary)

    # the same canary again changes nothing; a plain deploy says a canary still runs
    code, out, err = deployer(make_app(), *base, "--canary", "v2", "--weight", "25")
    assert code == 0, err
    assert all(line.endswith(" unchanged") for line in out.splitlines()), out
    code, out, err = deployer(make_app(), *base)
    assert code == 0, err
    assert "deployment/shop-inference-canary (serving wine-classifier=v2) still runs" in err

    # --promote --dry-run prints the stable Deployment as it would become, changing nothing
    code, out, err = deployer(make_app(), "--promote", "--dry-run")
    assert code == 0, err
    (promoted,) = list(yaml.safe_load_all(out))
    assert promoted["metadata"]["name"] == "shop-inference"
    assert promoted["spec"]["template"]["spec"]["containers"][0]["args"] == args
    assert "would delete deployment/shop-inference-canary" in err
    assert deployer.get(CANARY) is not None

    code, out, err = deployer(make_app(), "--abort-canary")
    assert code == 0, err
    assert out.splitlines() == [
        "deployment/shop-inference unchanged",  # the plain deploy above restored 4 replicas
        "deployment/shop-inference-canary deleted",
    ]
    assert deployer.get(CANARY) is None
    assert deployer.get(DEPLOYMENTS)["spec"]["replicas"] == 4

    code, _, err = deployer(make_app(), "--promote")
    assert code == 1
    assert "no canary runs beside deployment/shop-inference" in err
    assert "--canary [MODEL=]REF" in err and "Traceback" not in err


def test_promoting_a_canary_beside_a_stable_that_follows_an_alias_moves_the_alias(
    deployer: Deployer, tmp_path: Any
) -> None:
    from hypermodel.k8s.canary import PROMOTED
    from hypermodel.models.store import ModelStore
    from hypermodel.storage import open_storage
    from tests.unit.k8s.apps import publish, set_alias

    bucket = tmp_path / "bucket"
    publish(bucket, "wine-classifier", "v1")
    publish(bucket, "wine-classifier", "v2")
    set_alias(bucket, "wine-classifier", "production", "v1")
    store = ModelStore(open_storage(str(bucket)))
    base = ("--host-root", str(bucket), "--replicas", "2", "--model", "wine-classifier=production")
    assert deployer(make_app(), *base)[0] == 0
    code, _, err = deployer(make_app(), *base, "--canary", "wine-classifier=v2")
    assert code == 0, err
    before = selection(deployer.get(DEPLOYMENTS))
    assert dict(before[1])["HML_MODELS"] == "wine-classifier=production"

    code, out, err = deployer(make_app(), "--promote", "--dry-run")
    assert code == 0, err
    assert f"would move alias 'production' of model 'wine-classifier' in file://{bucket}" in err
    assert "v1 -> v2" in err
    (planned,) = list(yaml.safe_load_all(out))
    assert selection(planned) == before  # still following the alias
    assert planned["spec"]["template"]["metadata"]["annotations"][PROMOTED] == "wine-classifier=v2"
    assert store.aliases("wine-classifier")["production"] == "v1"  # a dry run moves nothing

    # the API server here runs no controllers: the rollout cannot complete, so the promotion
    # stops at its timeout with the canary kept; the alias has moved and the stable Deployment
    # (its pods restarted, still following the alias) is applied
    code, out, err = deployer(make_app(), "--promote", "--timeout", "2")
    assert code == 1 and "Traceback" not in err
    assert "moved alias 'production' of model 'wine-classifier'" in err and "v1 -> v2" in err
    assert store.aliases("wine-classifier")["production"] == "v2"
    (entry,) = store.alias_history("wine-classifier", "production")[-1:]
    assert entry.version == "v2" and "inference promote (shop-inference-canary)" in entry.reason
    stable = deployer.get(DEPLOYMENTS)
    assert selection(stable) == before
    assert stable["spec"]["template"]["metadata"]["annotations"][PROMOTED] == "wine-classifier=v2"
    assert stable["spec"]["replicas"] == 2
    assert deployer.get(CANARY) is not None

    # run again once the alias names v2: nothing more to move
    code, _, err = deployer(make_app(), "--promote", "--dry-run")
    assert code == 0 and "already names v2" in err, err

    # a bucket that cannot be opened from here: the stable takes the canary's pods (pinned)
    moved = tmp_path / "elsewhere"
    bucket.rename(moved)
    code, out, err = deployer(make_app(), "--promote", "--dry-run")
    assert code == 0, err
    assert "cannot be opened from here to move it to v2" in err
    assert "hml models promote wine-classifier v2 --to production" in err
    (planned,) = list(yaml.safe_load_all(out))
    assert selection(planned) == selection(deployer.get(CANARY))


def selection(deployment: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """What a Deployment's pods are told to serve: their args and plain env values."""
    first = deployment["spec"]["template"]["spec"]["containers"][0]
    env = [(e["name"], e["value"]) for e in first.get("env", []) if "value" in e]
    return list(first["args"]), sorted(env)


def test_canary_ingress_with_the_exact_weight(deployer: Deployer, tmp_path: Any) -> None:
    from tests.unit.k8s.apps import publish

    bucket = tmp_path / "bucket"
    publish(bucket, "wine-classifier", "v2")
    args = ("--host-root", str(bucket), "--ingress-host", "shop.example.com", "--replicas", "2")
    code, out, err = deployer(make_app(), *args, "--canary", "wine-classifier=v2")
    assert code == 0, err
    assert out.splitlines() == [
        "deployment/shop-inference-canary created",
        "service/shop-inference-canary created",
        "deployment/shop-inference created",
        "service/shop-inference created",
        "ingress/shop-inference created",
        "ingress/shop-inference-canary created",
    ]
    route = deployer.get(CANARY_INGRESS)
    annotations = route["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == "10"
    canary = deployer.get(CANARY)
    main = deployer.get(SERVICES)["spec"]["selector"]
    assert not main.items() <= labels_of(canary).items()  # the Ingress does the splitting
    own = deployer.get(CANARY_SERVICE)["spec"]["selector"]
    assert own.items() <= labels_of(canary).items()
    assert not own.items() <= labels_of(deployer.get(DEPLOYMENTS)).items()

    code, out, err = deployer(make_app(), "--abort-canary")
    assert code == 0, err
    assert out.splitlines() == [
        "deployment/shop-inference patched",  # back to 2 replicas
        "ingress/shop-inference-canary deleted",
        "service/shop-inference-canary deleted",
        "deployment/shop-inference-canary deleted",
    ]
    for path in (CANARY, CANARY_SERVICE, CANARY_INGRESS):
        assert deployer.get(path) is None
    assert deployer.get(DEPLOYMENTS)["spec"]["replicas"] == 2
    assert deployer.get(INGRESSES) is not None


def test_stable_follows_an_alias_and_a_canary_pins_what_another_names(
    deployer: Deployer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.k8s.apps import publish, set_alias

    bucket = tmp_path / "bucket"
    publish(bucket, "wine-classifier", "v1")
    digest = publish(bucket, "wine-classifier", "v2")
    set_alias(bucket, "wine-classifier", "production", "v1")
    set_alias(bucket, "wine-classifier", "staging", "v2")
    token = "deployer-own-admin-token-0123456789"
    monkeypatch.setenv("HML_ADMIN_TOKEN", token)  # never passed on
    base = (
        "--host-root",
        str(bucket),
        "--replicas",
        "2",
        "--model",
        "wine-classifier=production",
        "--model-poll-seconds",
        "10",
        "--admin-token-secret",
        "shop-admin:reload",
    )
    code, out, err = deployer(make_app(), *base)
    assert code == 0, err
    stable = deployer.get(DEPLOYMENTS)
    env = env_of(stable)
    assert (env["HML_MODELS"], env["HML_MODEL_POLL_SECONDS"]) == (
        "wine-classifier=production",
        "10",
    )
    assert env["HML_ADMIN_TOKEN"] == {"secretKeyRef": {"name": "shop-admin", "key": "reload"}}
    assert "HML_MODEL_SHA256_WINE_CLASSIFIER" not in env
    assert token not in json.dumps(stable) + out + err

    code, out, err = deployer(make_app(), *base, "--canary", "wine-classifier=staging")
    assert code == 0, err
    assert "serves wine-classifier=v2 ('staging' at deploy time)" in err
    canary = deployer.get(CANARY)
    assert env_of(canary)["HML_MODELS"] == "wine-classifier=v2"
    assert env_of(canary)["HML_MODEL_SHA256_WINE_CLASSIFIER"] == digest
    assert json.loads(canary["metadata"]["annotations"]["hypermodel/canary"])["ref"] == "staging"
    assert env_of(deployer.get(DEPLOYMENTS))["HML_MODELS"] == "wine-classifier=production"

    # `inference promote` is `deploy --promote`: the stable would keep following production,
    # moved to the canary's v2, with its token still only a secretKeyRef
    argv = ["inference", "promote", "--kubeconfig", str(deployer.cluster.kubeconfig)]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(make_app().cli(), [*argv, "-n", deployer.namespace, "--dry-run"], prog_name="shop")
    out, err = deployer.capsys.readouterr()
    assert exit_info.value.code == 0, err
    (promoted,) = list(yaml.safe_load_all(out))
    assert env_of(promoted)["HML_MODELS"] == "wine-classifier=production"
    assert "HML_MODEL_SHA256_WINE_CLASSIFIER" not in env_of(promoted)
    assert env_of(promoted)["HML_ADMIN_TOKEN"] == {
        "secretKeyRef": {"name": "shop-admin", "key": "reload"}
    }
    assert "would move alias 'production' of model 'wine-classifier'" in err and "v1 -> v2" in err
    assert "would delete deployment/shop-inference-canary" in err
    assert token not in out + err
    assert deployer(make_app(), "--abort-canary")[0] == 0
    assert deployer.get(CANARY) is None
