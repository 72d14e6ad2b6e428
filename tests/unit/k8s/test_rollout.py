"""`inference deploy --wait` without a cluster: rollout states from a scripted API server.

The real thing runs in tests/integration/test_cluster_deploy.py on a single-node cluster."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from hypermodel.k8s.rollout import (
    RolloutError,
    RolloutTimeoutError,
    pod_state,
    wait_for_rollout,
)
from tests.support import require_module

require_module("kubernetes")

NS, NAME = "ml", "shop-inference"
DEPLOYMENT_UID, RS_UID = "d-1", "rs-2"


class Response:
    def __init__(self, data: bytes) -> None:
        self.data = data


class Configuration:
    host = "https://k8s.example:6443"


class FakeApi:
    """Answers GETs from ``routes`` (path without query -> callable(query) -> JSON or text)."""

    configuration = Configuration()

    def __init__(self, routes: dict[str, Callable[[dict[str, list[str]]], Any]]) -> None:
        self.routes = routes
        self.calls: list[str] = []

    def call_api(self, path: str, method: str, **kwargs: Any) -> Response:
        from kubernetes.client.exceptions import ApiException

        assert method == "GET" and kwargs["_preload_content"] is False
        self.calls.append(path)
        url = urlparse(path)
        route = self.routes.get(url.path)
        if route is None:
            raise ApiException(status=404, reason="Not Found")
        value = route(parse_qs(url.query))
        return Response(value.encode() if isinstance(value, str) else json.dumps(value).encode())


def deployment(
    replicas: int = 2,
    updated: int = 2,
    ready: int = 2,
    available: int = 2,
    total: int | None = None,
    generation: int = 3,
    observed: int = 3,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": NAME,
            "uid": DEPLOYMENT_UID,
            "generation": generation,
            "annotations": {"deployment.kubernetes.io/revision": "2"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "shop"}},
        },
        "status": {
            "observedGeneration": observed,
            "replicas": updated if total is None else total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": conditions or [],
        },
    }


REPLICA_SETS = {
    "items": [
        {
            "metadata": {
                "uid": "rs-old",
                "labels": {"pod-template-hash": "old"},
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "ownerReferences": [{"uid": DEPLOYMENT_UID}],
            }
        },
        {
            "metadata": {
                "uid": RS_UID,
                "labels": {"pod-template-hash": "abc"},
                "annotations": {"deployment.kubernetes.io/revision": "2"},
                "ownerReferences": [{"uid": DEPLOYMENT_UID}],
            }
        },
    ]
}


def pod(name: str, ready: bool = False, /, **container: Any) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": "Running" if container.get("state", {}).get("running") else "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True" if ready else "False"},
        ],
    }
    if container:
        status["containerStatuses"] = [{"name": "inference", "ready": ready, **container}]
    return {
        "metadata": {"name": name, "ownerReferences": [{"uid": RS_UID}]},
        "status": status,
    }


def api_for(
    deployments: list[dict[str, Any]],
    pods: list[list[dict[str, Any]]],
    events: list[dict[str, Any]] | None = None,
    log: str = "",
) -> FakeApi:
    """Each GET of the Deployment moves both scripts one step on (the last step repeats)."""
    step = {"i": -1}

    def get_deployment(_: dict[str, list[str]]) -> Any:
        step["i"] += 1
        return deployments[min(step["i"], len(deployments) - 1)]

    def get_pods(query: dict[str, list[str]]) -> Any:
        assert "pod-template-hash=abc" in query["labelSelector"][0]
        return {"items": pods[min(step["i"], len(pods) - 1)]}

    base = f"/apis/apps/v1/namespaces/{NS}"
    return FakeApi(
        {
            f"{base}/deployments/{NAME}": get_deployment,
            f"{base}/replicasets": lambda q: REPLICA_SETS,
            f"/api/v1/namespaces/{NS}/pods": get_pods,
            f"/api/v1/namespaces/{NS}/events": lambda q: {"items": events or []},
            f"/api/v1/namespaces/{NS}/pods/shop-1/log": lambda q: log,
        }
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def wait(api: FakeApi, timeout: float = 60) -> tuple[Any, list[str]]:
    lines: list[str] = []
    clock = Clock()
    status = wait_for_rollout(api, NS, NAME, timeout, lines.append, clock=clock, sleep=clock.sleep)
    return status, lines


RUNNING: dict[str, Any] = {"state": {"running": {"startedAt": "t"}}}


def test_progress_lines_only_when_something_changes_then_done() -> None:
    api = api_for(
        [
            deployment(generation=4, observed=3),
            deployment(updated=1, ready=2, available=2, total=3),
            deployment(updated=1, ready=2, available=2, total=3),
            deployment(updated=2, ready=2, available=2, total=3),
            deployment(),
        ],
        [
            [],
            [pod("shop-1", state={"waiting": {"reason": "ContainerCreating"}})],
            [pod("shop-1", **RUNNING)],
            [pod("shop-1", True, **RUNNING), pod("shop-2", True, **RUNNING)],
        ],
    )
    status, lines = wait(api)
    assert status.done
    assert [line.split("] ", 1)[1] for line in lines] == [
        f"deployment/{NAME}: waiting for the deployment controller",
        f"deployment/{NAME}: 1/2 updated, 2 ready, 2 available, 2 old [shop-1 ContainerCreating]",
        f"deployment/{NAME}: 1/2 updated, 2 ready, 2 available, 2 old [shop-1 Running, not ready]",
        f"deployment/{NAME}: 2/2 updated, 2 ready, 2 available, 1 old",
        f"deployment/{NAME}: 2/2 updated, 2 ready, 2 available",
    ]
    assert lines[0].startswith("[  0.0s] ") and lines[-1].startswith("[  4.0s] ")


def test_an_unchanged_deployment_is_done_at_once() -> None:
    status, lines = wait(api_for([deployment()], [[pod("shop-1", True, **RUNNING)]]))
    assert status.done and len(lines) == 1


def test_crash_loop_fails_at_once_with_the_crashed_containers_log() -> None:
    crashing = pod(
        "shop-1",
        state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting"}},
        lastState={"terminated": {"exitCode": 1, "reason": "Error"}},
        restartCount=2,
    )
    log = "\n".join(f"line {i}" for i in range(30)) + "\nerror: no model 'wine' published\n"
    noise = [  # warnings that say nothing about this failure are left out
        {"reason": "BackOff", "message": "Back-off restarting failed container"},
        {"reason": "MissingClusterDNS", "message": "kubelet does not have ClusterDNS IP"},
    ]
    api = api_for(
        [deployment(updated=2, ready=0, available=0)], [[crashing]], events=noise, log=log
    )
    with pytest.raises(RolloutError) as info:
        wait(api)
    text = str(info.value)
    assert "last event" not in text
    assert text.startswith(
        f"deployment/{NAME} in namespace '{NS}' cannot roll out: pod shop-1, container "
        "inference: CrashLoopBackOff (the container keeps crashing), restarted 2 times, the "
        "last run ended with exit code 1 (Error)\nthe last lines of the crashed container's "
        "log:\n"
    )
    assert text.endswith("  | error: no model 'wine' published")
    shown = [line for line in text.splitlines() if line.startswith("  | ")]
    assert shown[0] == "  | line 19" and len(shown) == 12  # the last 12 lines
    assert any("previous=true" in c and "tailLines=12" in c for c in api.calls)
    assert not isinstance(info.value, RolloutTimeoutError)


def test_image_never_pulled_names_the_image_and_the_fix() -> None:
    missing = pod(
        "shop-1",
        state={
            "waiting": {
                "reason": "ErrImageNeverPull",
                "message": 'Container image "shop:9" is not present with pull policy of Never',
            }
        },
    )
    api = api_for([deployment(updated=2, ready=0, available=0)], [[missing]])
    with pytest.raises(RolloutError, match=r"ErrImageNeverPull \(the image is not on the node"):
        wait(api)
    with pytest.raises(RolloutError, match="--image-pull-policy IfNotPresent or Never"):
        wait(api_for([deployment(updated=2, ready=0, available=0)], [[missing]]))


def test_pull_back_off_quotes_the_kubelets_pull_error() -> None:
    backoff = pod(
        "shop-1",
        state={"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}},
    )
    events: list[dict[str, Any]] = [
        {"reason": "Failed", "message": "Error: ImagePullBackOff", "lastTimestamp": "2"},
        {
            "reason": "Failed",
            "message": 'Failed to pull image "x": no such host',
            "lastTimestamp": "1",
            "count": 3,
        },
    ]
    api = api_for([deployment(updated=2, ready=0, available=0)], [[backoff]], events=events)
    with pytest.raises(RolloutError) as info:
        wait(api)
    assert 'last event: Failed: Failed to pull image "x": no such host (x3)' in str(info.value)


def test_timeout_names_the_failing_probe_and_shows_the_log() -> None:
    unready = pod("shop-1", **RUNNING)
    events = [
        {
            "reason": "Unhealthy",
            "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "lastTimestamp": "5",
            "count": 7,
        }
    ]
    api = api_for(
        [deployment(replicas=1, updated=1, ready=1, available=1, total=2)],
        [[unready]],
        events=events,
        log="model 'wine' has digest sha256:1, not sha256:2 as pinned\n",
    )
    with pytest.raises(RolloutTimeoutError) as info:
        wait(api, timeout=10)
    assert str(info.value) == (
        f"deployment/{NAME} in namespace '{NS}' did not roll out within 10s: waiting for 0 of 1 "
        "updated replicas ready; pod shop-1, container inference: not ready; last event: "
        "Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 503 (x7)\n"
        "the last lines of its log:\n"
        "  | model 'wine' has digest sha256:1, not sha256:2 as pinned"
    )


def test_unschedulable_pod_gives_the_schedulers_message_at_the_timeout() -> None:
    pending = {
        "metadata": {"name": "shop-1", "ownerReferences": [{"uid": RS_UID}]},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/1 nodes are available: 1 Insufficient cpu.",
                }
            ],
        },
    }
    api = api_for([deployment(updated=2, ready=0, available=0)], [[pending]])
    with pytest.raises(RolloutTimeoutError, match="Unschedulable: 0/1 nodes are available"):
        wait(api, timeout=5)


def test_deadline_exceeded_and_missing_deployment() -> None:
    deadline = deployment(
        updated=1,
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "x" has timed out progressing.',
            }
        ],
    )
    with pytest.raises(RolloutError, match="exceeded its progress deadline"):
        wait(api_for([deadline], [[]]))
    with pytest.raises(RolloutError, match=f"deployment/{NAME} does not exist"):
        wait(FakeApi({}))


def test_pod_state_of_a_failed_pod_is_fatal() -> None:
    evicted = {
        "metadata": {"name": "p"},
        "status": {"phase": "Failed", "reason": "Evicted", "message": "low on memory"},
    }
    state = pod_state(evicted)
    assert (state.reason, state.message, state.fatal) == ("Evicted", "low on memory", True)
