"""The demo served by a real single-node Kubernetes (tests/integration/k8s_node.py).

The demo image is built with `wines image build` on the node's Docker engine, from a git
commit of this working tree on the offline base image; the demo pipeline trains and publishes
its model into a bucket directory on the host, which the pods mount (`--host-root`). Then:

- `wines inference deploy --wait` creates the Deployment and Service and follows the rollout;
- `/predict` answers through the Service's cluster IP (kube-proxy) and each pod's IP, with
  the lineage headers of the model the pipeline published;
- the pipeline publishes a new model version, and a deploy pinning its digest rolls the pods
  over while clients keep calling the Service: no request fails, and the answers switch from
  the old version to the new one;
- a canary of the new version runs beside the stable Deployment (`--canary VERSION`), both
  behind the one Service, until `--promote` rolls the stable over to it and deletes it, while
  clients keep calling the Service;
- `--wait` fails with the pod's reason: an image that is not on the node (ErrImageNeverPull),
  a server that exits at start (CrashLoopBackOff, with its log), a readiness probe that never
  passes (timeout, with the probe's event and the log).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hypermodel.cli.errors import run_cli
from tests.integration.conftest import Docker, _script
from tests.integration.demo_support import build_demo_image, commit_of_working_tree, reference
from tests.integration.k8s_node import Node, k8s_node
from tests.support import require_module

__all__ = ["k8s_node"]  # the fixture, imported from k8s_node

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

TAG = "hml-wines:cluster-test"
WINE = [13.2, 1.78, 2.14, 11.2, 100.0, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050.0]
DEPLOYMENT = "wines-inference"
WAIT = "180"  # seconds: a rollout takes about 10 s on an idle 2-core machine


@dataclass
class Model:
    version: str
    digest: str
    long_name: str
    dataset: str  # checksum of the training dataset (x-model-dataset)
    commit: str  # of the code that trained it (x-model-commit)


@dataclass
class Demo:
    node: Node
    bucket: Path
    context: Path  # the image's build context: a git commit of this working tree
    commit: str
    wines: Path
    timings: dict[str, float] = field(default_factory=dict)

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.wines), "--root", str(self.bucket), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.context,  # so the pipeline records the commit the image is built from
            env={k: v for k, v in os.environ.items() if k != "WINES_IMAGE"},
        )

    def deploy(
        self, namespace: str, *args: str, image: str = TAG
    ) -> subprocess.CompletedProcess[str]:
        return self.cli(
            "inference",
            "deploy",
            "--kubeconfig",
            str(self.node.kubeconfig),
            "-n",
            namespace,
            "--image",
            image,
            "--image-pull-policy",
            "Never",
            "--host-root",
            str(self.bucket),
            *args,
        )

    def train(self, *params: str) -> Model:
        run = self.cli("pipelines", "wines", "run-all", "-q", *params)
        assert run.returncode == 0, run.stderr[-3000:]
        latest = json.loads(
            (self.bucket / "models" / "wine-classifier" / "latest.json").read_text()
        )
        ref = reference(self.bucket, latest["version"])
        return Model(
            version=latest["version"],
            digest=f"sha256:{ref['model_sha256']}",
            long_name=ref["long_name"],
            dataset=",".join(ref.get("datasets") or []),
            commit=ref["commit"],
        )


@pytest.fixture(scope="module")
def demo(k8s_node: Node, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo image on the node's engine, and a bucket the pods mount."""
    require_module("wines")
    work = tmp_path_factory.mktemp("cluster-demo")
    started = time.monotonic()
    env = {**os.environ, "DOCKER_HOST": k8s_node.docker_host}
    base = _script("base-image.sh", env, timeout=900)  # imported from its cached tarball
    engine = Docker(host=k8s_node.docker_host, base_image=base)
    context = work / "clone"
    commit = commit_of_working_tree(context)
    with pytest.MonkeyPatch.context() as env_of_the_build:
        env_of_the_build.setenv("DOCKER_HOST", k8s_node.docker_host)  # `wines image build`'s
        built = build_demo_image(engine, context, TAG, work / "records")
    assert built.process.returncode == 0, built.process.stderr[-4000:]
    bucket = work / "bucket"
    bucket.mkdir()
    demo = Demo(k8s_node, bucket, context, commit, Path(sys.executable).parent / "wines")
    demo.timings["node_start"] = k8s_node.timings["node_ready"]
    demo.timings["image"] = round(time.monotonic() - started, 1)
    return demo


def post(host: str, port: int = 8000, timeout: float = 10) -> tuple[int, dict[str, str], Any]:
    """POST one wine to /predict on a new connection, as a client behind the Service would."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        body = json.dumps({"features": WINE})
        connection.request("POST", "/predict", body, {"content-type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, json.loads(data) if data else None
    finally:
        connection.close()


def addresses(node: Node, namespace: str) -> tuple[str, list[str]]:
    """The Service's cluster IP and the IPs of the Deployment's running pods."""
    service = node.get(f"/api/v1/namespaces/{namespace}/services/{DEPLOYMENT}")
    pods = node.get(
        f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io/name%3Dwines"
    )
    ips = [
        p["status"]["podIP"]
        for p in pods["items"]
        if p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")
    ]
    return service["spec"]["clusterIP"], sorted(ips)


def assert_lineage(headers: dict[str, str], model: Model) -> None:
    assert headers["x-model-version"] == model.version
    assert headers["x-model-digest"] == model.digest
    assert headers["x-model-long-name"] == model.long_name
    assert headers["x-model-dataset"] == model.dataset
    assert headers["x-model-commit"] == model.commit


class Clients:
    """Threads that POST to an address until stopped; every outcome is kept."""

    def __init__(self, host: str, threads: int = 3) -> None:
        self.host = host
        self.outcomes: list[tuple[float, int, str]] = []  # (time, status or -1, version/error)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, headers, _ = post(self.host)
                self.outcomes.append((time.monotonic(), status, headers.get("x-model-version", "")))
            except OSError as exc:
                self.outcomes.append((time.monotonic(), -1, repr(exc)))
            time.sleep(0.01)

    def __enter__(self) -> Clients:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def failed(self) -> list[tuple[float, int, str]]:
        return [o for o in self.outcomes if o[1] != 200]


def test_deploy_wait_call_and_roll_over_to_a_new_model(demo: Demo) -> None:
    node = demo.node
    namespace = node.new_namespace()
    first = demo.train()
    assert first.commit == demo.commit  # trained by the code the image holds

    # deploy and follow the rollout
    started = time.monotonic()
    pin = ("--model-sha256", first.digest)
    done = demo.deploy(namespace, "--replicas", "2", *pin, "--wait", "--timeout", WAIT)
    demo.timings["first_rollout"] = round(time.monotonic() - started, 1)
    assert done.returncode == 0, done.stderr[-4000:]
    out = done.stdout.splitlines()
    assert out[:2] == [f"deployment/{DEPLOYMENT} created", f"service/{DEPLOYMENT} created"]
    assert out[2].startswith(f"deployment/{DEPLOYMENT} rolled out: 2/2 replicas available in ")
    progress = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert len(progress) >= 2, done.stderr
    assert progress[-1].endswith(f"deployment/{DEPLOYMENT}: 2/2 updated, 2 ready, 2 available")

    # /predict through the Service (kube-proxy) and through each pod, with the model's lineage
    cluster_ip, pod_ips = addresses(node, namespace)
    assert len(pod_ips) == 2 and all(ip.startswith("10.244.0.") for ip in pod_ips), pod_ips
    for host in (cluster_ip, *pod_ips):
        status, headers, body = post(host)
        if host == cluster_ip:
            lineage = {k: v for k, v in sorted(headers.items()) if k.startswith("x-model-")}
            print(f"\nPOST http://{cluster_ip}:8000/predict -> {status} {lineage} {body}")
        assert status == 200, (host, body)
        assert body["cultivar"] in (0, 1, 2) and len(body["probabilities"]) == 3
        assert_lineage(headers, first)

    # a new model version, pinned by a second deploy, while clients keep calling the Service
    second = demo.train("--n-estimators", "50")
    assert second.version != first.version and second.digest != first.digest
    with Clients(cluster_ip) as clients:
        time.sleep(2)
        started = time.monotonic()
        pin = ("--model-sha256", second.digest)
        done = demo.deploy(namespace, "--replicas", "2", *pin, "--wait", "--timeout", WAIT)
        rolled = time.monotonic()
        demo.timings["rolling_update"] = round(rolled - started, 1)
        time.sleep(3)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.splitlines()[:2] == [
        f"deployment/{DEPLOYMENT} patched",
        f"service/{DEPLOYMENT} unchanged",
    ]
    served = [o for o in clients.outcomes if o[1] == 200]
    print(
        f"\nrolling update: {len(clients.outcomes)} requests, {len(clients.failed())} failed, "
        f"{sum(o[2] == first.version for o in served)} answered by {first.version}, "
        f"{sum(o[2] == second.version for o in served)} by {second.version}"
    )
    assert clients.failed() == [], clients.failed()[:10]
    assert len(clients.outcomes) >= 50
    versions = [o[2] for o in clients.outcomes]
    assert versions[0] == first.version and first.version in versions
    assert second.version in versions
    # once the rollout was complete (and the old pods' endpoints gone), only the new model
    assert {o[2] for o in clients.outcomes if o[0] > rolled + 1} == {second.version}
    cluster_ip, pod_ips = addresses(node, namespace)
    for host in (cluster_ip, *pod_ips):
        status, headers, _ = post(host)
        assert status == 200
        assert_lineage(headers, second)
    print(f"cluster stage timings (s): {demo.timings}")


CANARY = f"{DEPLOYMENT}-canary"


def deployments(node: Node, namespace: str) -> dict[str, Any]:
    found = node.get(f"/apis/apps/v1/namespaces/{namespace}/deployments")
    return {d["metadata"]["name"]: d for d in found["items"]}


def wait_for_pods(node: Node, namespace: str, count: int, timeout: float = 90) -> None:
    """Until the app has ``count`` pods (the canary's have stopped)."""
    deadline = time.monotonic() + timeout
    while True:
        pods = node.get(
            f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io/name%3Dwines"
        )["items"]
        if len(pods) == count or time.monotonic() > deadline:
            assert len(pods) == count, [p["metadata"]["name"] for p in pods]
            return
        time.sleep(1)


def test_canary_beside_the_stable_then_promote(demo: Demo) -> None:
    node = demo.node
    namespace = node.new_namespace()
    first = demo.train()
    stable = ("--replicas", "2", "--model", f"wine-classifier={first.version}")
    done = demo.deploy(namespace, *stable, "--wait", "--timeout", WAIT)
    assert done.returncode == 0, done.stderr[-4000:]
    second = demo.train("--n-estimators", "50")  # now the latest: the stable stays on `first`

    # the canary: its own Deployment with one of the two pods, the stable one down to one
    started = time.monotonic()
    canary = ("--canary", second.version, "--weight", "50")
    done = demo.deploy(namespace, *stable, *canary, "--wait", "--timeout", WAIT)
    demo.timings["canary"] = round(time.monotonic() - started, 1)
    assert done.returncode == 0, done.stderr[-4000:]
    out = done.stdout.splitlines()
    assert out[0] == f"deployment/{CANARY} created"
    assert out[1].startswith(f"deployment/{CANARY} rolled out: 1/1 replicas available")
    assert out[2:4] == [f"deployment/{DEPLOYMENT} patched", f"service/{DEPLOYMENT} unchanged"]
    assert out[4].startswith(f"deployment/{DEPLOYMENT} rolled out: 1/1 replicas available")
    assert f"{CANARY} serves wine-classifier={second.version} (digest " in done.stderr
    live = deployments(node, namespace)
    assert {DEPLOYMENT, CANARY} <= live.keys()
    selector = node.get(f"/api/v1/namespaces/{namespace}/services/{DEPLOYMENT}")["spec"]["selector"]
    for name in (DEPLOYMENT, CANARY):
        labels = live[name]["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), (name, labels)
    endpoints = node.get(f"/api/v1/namespaces/{namespace}/endpoints/{DEPLOYMENT}")
    ready = [a for subset in endpoints.get("subsets") or [] for a in subset.get("addresses", [])]
    assert len(ready) == 2, endpoints

    # through the Service both versions answer, each with its own lineage
    cluster_ip, _ = addresses(node, namespace)
    seen: dict[str, dict[str, str]] = {}
    for _ in range(60):
        status, headers, _ = post(cluster_ip)
        assert status == 200
        seen[headers["x-model-version"]] = headers
        if len(seen) == 2:
            break
    assert seen.keys() == {first.version, second.version}, seen.keys()
    assert_lineage(seen[first.version], first)
    assert_lineage(seen[second.version], second)

    # promote while clients keep calling: the stable rolls over to the canary's version
    with Clients(cluster_ip) as clients:
        time.sleep(2)
        started = time.monotonic()
        argv = ["inference", "deploy", "--kubeconfig", str(node.kubeconfig), "-n", namespace]
        done = demo.cli(*argv, "--promote", "--timeout", WAIT)
        promoted = time.monotonic()
        demo.timings["promote"] = round(promoted - started, 1)
        wait_for_pods(node, namespace, 2)
        time.sleep(3)
    assert done.returncode == 0, done.stderr[-4000:]
    out = done.stdout.splitlines()
    assert out[0] == f"deployment/{DEPLOYMENT} patched"
    assert out[1].startswith(f"deployment/{DEPLOYMENT} rolled out: 2/2 replicas available")
    assert out[2:] == [f"deployment/{CANARY} deleted"]
    served = [o for o in clients.outcomes if o[1] == 200]
    print(
        f"\npromote: {len(clients.outcomes)} requests, {len(clients.failed())} failed, "
        f"{sum(o[2] == first.version for o in served)} answered by {first.version}, "
        f"{sum(o[2] == second.version for o in served)} by {second.version}"
    )
    assert clients.failed() == [], clients.failed()[:10]
    assert list(deployments(node, namespace)) == [DEPLOYMENT]
    container = deployments(node, namespace)[DEPLOYMENT]["spec"]["template"]["spec"]
    assert container["containers"][0]["args"][-2:] == [
        "--model",
        f"wine-classifier={second.version}",
    ]
    cluster_ip, pod_ips = addresses(node, namespace)
    assert len(pod_ips) == 2
    for host in (cluster_ip, *pod_ips):
        status, headers, _ = post(host)
        assert status == 200
        assert_lineage(headers, second)
    print(f"cluster stage timings (s): {demo.timings}")


def test_wait_names_an_image_that_is_not_on_the_node(demo: Demo) -> None:
    namespace = demo.node.new_namespace()
    started = time.monotonic()
    done = demo.deploy(namespace, "--wait", "--timeout", WAIT, image="hml-wines:not-built")
    print(f"\n{done.stderr}")
    assert done.returncode == 1
    assert time.monotonic() - started < 60  # fails at once, not at the timeout
    error = done.stderr.splitlines()[-1]
    assert error.startswith(f"error: deployment/{DEPLOYMENT} in namespace '{namespace}' cannot ")
    assert "ErrImageNeverPull" in error and 'image "hml-wines:not-built"' in error
    assert "--image-pull-policy" in error and "Traceback" not in done.stderr


def test_wait_shows_the_log_of_a_crash_looping_server(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # the demo image, told to exit when its model cannot load, on an empty bucket
    from hypermodel import hml

    app = hml.HmlApp(name="wines", image_url=TAG, package_entrypoint="wines")
    app.with_env("HML_FAIL_FAST", "1")
    empty = tmp_path / "empty-bucket"
    empty.mkdir()
    namespace = demo.node.new_namespace()
    argv = ["inference", "deploy", "--kubeconfig", str(demo.node.kubeconfig), "-n", namespace]
    argv += ["--image-pull-policy", "Never", "--host-root", str(empty)]
    argv += ["--wait", "--timeout", WAIT]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(app.cli(), argv, prog_name="wines")
    _, err = capsys.readouterr()
    with capsys.disabled():
        print(f"\n{err}")
    assert exit_info.value.code == 1, err
    assert "CrashLoopBackOff (the container keeps crashing), restarted " in err
    assert "the last run ended with exit code 1 (Error)" in err
    assert "MissingClusterDNS" not in err  # the test cluster has no DNS: noise, left out
    log = err.split("the last lines of the crashed container's log:\n", 1)[1]
    assert "  | error: model 'wine-classifier' has never been published" in log, log
    assert "Traceback (most recent call last)" not in err.split("  | ", 1)[0]


def test_wait_times_out_on_a_readiness_probe_that_never_passes(demo: Demo) -> None:
    # a pinned digest that no published model has: the server stays up, never ready
    namespace = demo.node.new_namespace()
    demo.train()
    wrong = "sha256:" + "0" * 64
    done = demo.deploy(namespace, "--model-sha256", wrong, "--wait", "--timeout", "25")
    print(f"\n{done.stderr}")
    assert done.returncode == 1
    error = done.stderr.split("error: ", 1)[1]
    assert error.startswith(
        f"deployment/{DEPLOYMENT} in namespace '{namespace}' did not roll out within 25s: "
        "waiting for 0 of 1 updated replicas ready; pod "
    )
    assert "not ready; last event: Unhealthy: Readiness probe failed:" in error
    assert "statuscode: 503" in error
    assert "the last lines of its log:" in error and f"not {wrong}" in error
