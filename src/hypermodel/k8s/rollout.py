"""Wait for a Deployment's rollout (``inference deploy --wait``), like ``kubectl rollout status``.

The Deployment, its ReplicaSets and the pods of the new revision are polled once a second. A
progress line is printed whenever the replica counts change (and when a new pod changes state);
the wait ends when every replica runs the new pod template and is available, and no pod of an
older revision is left. It fails early, naming the pod and its reason, when a pod of the new
revision cannot start on its own: its image cannot be pulled (``ErrImageNeverPull``,
``ImagePullBackOff``, ``InvalidImageName``), its container crash-loops (``CrashLoopBackOff``, with
the last lines of the crashed container's log), or its configuration is broken
(``CreateContainerConfigError``: a missing secret...). When the timeout passes first, the error
says what the new pods are waiting for: scheduling (the scheduler's message), a failing
readiness or liveness probe (the kubelet's last ``Unhealthy`` event, and the container's log).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from .errors import ClusterUnreachableError, KubernetesError

Echo = Callable[[str], None]

POLL_SECONDS = 1.0
LOG_LINES = 12
REVISION = "deployment.kubernetes.io/revision"
# A pod of the new revision in one of these states will not start without a change: stop waiting.
FATAL_WAITING = {
    "ErrImageNeverPull": "the image is not on the node and imagePullPolicy is Never",
    "InvalidImageName": "the image name is invalid",
    "ImagePullBackOff": "the image cannot be pulled",
    "CrashLoopBackOff": "the container keeps crashing",
    "CreateContainerConfigError": "the container's configuration is invalid",
    "CreateContainerError": "the container cannot be created",
    "RunContainerError": "the container cannot be started",
}
# Warnings that say nothing about why this pod fails: the pod's own state already says "back-off",
# and a cluster without DNS warns on every pod.
NOISE_EVENTS = {"BackOff", "MissingClusterDNS", "DNSConfigForming"}
PULL_REASONS = ("ErrImageNeverPull", "ImagePullBackOff", "ErrImagePull", "InvalidImageName")
PULL_HINT = (
    "the image must be in a registry the cluster's nodes can pull from (with pull secrets if "
    "it is private), or already on the node with --image-pull-policy IfNotPresent or Never"
)


class RolloutError(KubernetesError):
    """The rollout failed (a pod of the new revision cannot start) or did not finish in time."""


class RolloutTimeoutError(RolloutError):
    """The rollout did not finish within the timeout."""


@dataclass
class PodState:
    """What one pod of the new revision is doing, for progress lines and errors."""

    name: str
    phase: str
    ready: bool
    reason: str = ""  # ContainerCreating, ImagePullBackOff, Unschedulable, Unhealthy...
    message: str = ""
    container: str = ""
    restarts: int = 0
    last_exit: str = ""  # of the container's previous run: "exit code 1 (Error)"
    fatal: bool = False

    def short(self) -> str:
        if self.ready:
            return f"{self.name} ready"
        what = self.reason or self.phase
        return f"{self.name} {what}" + (f" (restarts {self.restarts})" if self.restarts else "")


@dataclass
class RolloutStatus:
    desired: int = 0
    updated: int = 0
    ready: int = 0
    available: int = 0
    total: int = 0  # pods of every revision the Deployment still has
    observed: bool = False
    revision: str = ""
    pods: list[PodState] = field(default_factory=list)

    @property
    def old(self) -> int:
        return max(0, self.total - self.updated)

    @property
    def done(self) -> bool:
        return (
            self.observed
            and self.updated == self.desired
            and self.total == self.updated
            and self.available >= self.desired
        )

    @property
    def new_ready(self) -> int:
        return sum(1 for p in self.pods if p.ready)

    def waiting_for(self) -> str:
        if not self.observed:
            return "the deployment controller to see the new spec"
        if self.updated < self.desired:
            return f"{self.updated} of {self.desired} replicas updated"
        if self.new_ready < self.desired:
            return f"{self.new_ready} of {self.desired} updated replicas ready"
        if self.total > self.updated:
            return f"{self.old} old replica{'s' if self.old != 1 else ''} to terminate"
        if self.available < self.desired:
            return f"{self.available} of {self.desired} replicas available"
        return "nothing"

    def line(self, name: str) -> str:
        if not self.observed:
            return f"deployment/{name}: waiting for the deployment controller"
        text = (
            f"deployment/{name}: {self.updated}/{self.desired} updated, {self.ready} ready, "
            f"{self.available} available"
        )
        if self.old:
            text += f", {self.old} old"
        not_ready = [p.short() for p in self.pods if not p.ready]
        if not_ready:
            text += f" [{'; '.join(not_ready)}]"
        return text


def wait_for_rollout(
    api: Any,
    namespace: str,
    name: str,
    timeout: float,
    echo: Echo,
    *,
    poll: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RolloutStatus:
    """Poll until the rollout of Deployment ``name`` is complete; RolloutError when it fails."""
    started = clock()
    last_line = ""
    while True:
        status = read_status(api, namespace, name)
        line = status.line(name)
        if line != last_line:
            echo(f"[{clock() - started:5.1f}s] {line}")
            last_line = line
        if status.done:
            return status
        fatal = [p for p in status.pods if p.fatal]
        if fatal:
            raise RolloutError(_failure(api, namespace, name, fatal[0], "cannot roll out", status))
        if clock() - started >= timeout:
            raise RolloutTimeoutError(_timed_out(api, namespace, name, status, timeout))
        sleep(poll)


def read_status(api: Any, namespace: str, name: str) -> RolloutStatus:
    ns = quote(namespace, safe="")
    deployment = _get(api, f"/apis/apps/v1/namespaces/{ns}/deployments/{quote(name, safe='')}")
    if deployment is None:
        raise RolloutError(f"deployment/{name} does not exist in namespace '{namespace}'")
    spec, st = deployment.get("spec") or {}, deployment.get("status") or {}
    meta = deployment.get("metadata") or {}
    status = RolloutStatus(
        desired=int(spec.get("replicas", 1)),
        updated=int(st.get("updatedReplicas", 0)),
        ready=int(st.get("readyReplicas", 0)),
        available=int(st.get("availableReplicas", 0)),
        total=int(st.get("replicas", 0)),
        observed=int(st.get("observedGeneration", 0)) >= int(meta.get("generation", 0)),
        revision=str((meta.get("annotations") or {}).get(REVISION, "")),
    )
    for condition in st.get("conditions") or []:
        if condition.get("reason") == "ProgressDeadlineExceeded":
            raise RolloutError(
                f"deployment/{name} in namespace '{namespace}' exceeded its progress deadline "
                f"({spec.get('progressDeadlineSeconds', 600)}s): {condition.get('message')}"
            )
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            raise RolloutError(
                f"deployment/{name} in namespace '{namespace}' cannot create pods "
                f"({condition.get('reason')}): {condition.get('message')}"
            )
    if status.observed and status.revision:
        status.pods = _new_pods(api, ns, deployment, status.revision)
    return status


def _new_pods(api: Any, ns: str, deployment: dict[str, Any], revision: str) -> list[PodState]:
    """The pods of the ReplicaSet of the Deployment's current revision."""
    uid = deployment["metadata"].get("uid")
    labels = (deployment["spec"].get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    query = urlencode({"labelSelector": selector})
    sets = _get(api, f"/apis/apps/v1/namespaces/{ns}/replicasets?{query}") or {}
    current = None
    for rs in sets.get("items") or []:
        meta = rs.get("metadata") or {}
        owners = {o.get("uid") for o in meta.get("ownerReferences") or []}
        if uid in owners and (meta.get("annotations") or {}).get(REVISION) == revision:
            current = rs
    if current is None:
        return []
    template_hash = (current["metadata"].get("labels") or {}).get("pod-template-hash")
    if template_hash:
        selector += f",pod-template-hash={template_hash}"
    pods = _get(api, f"/api/v1/namespaces/{ns}/pods?{urlencode({'labelSelector': selector})}")
    rs_uid = current["metadata"].get("uid")
    states = []
    for pod in (pods or {}).get("items") or []:
        owners = {o.get("uid") for o in pod["metadata"].get("ownerReferences") or []}
        if rs_uid in owners and not pod["metadata"].get("deletionTimestamp"):
            states.append(pod_state(pod))
    return sorted(states, key=lambda p: p.name)


def pod_state(pod: dict[str, Any]) -> PodState:
    """Why a pod is (not) ready, from its status alone."""
    status = pod.get("status") or {}
    name = pod["metadata"]["name"]
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = (conditions.get("Ready") or {}).get("status") == "True"
    state = PodState(name=name, phase=str(status.get("phase", "Pending")), ready=ready)
    if ready:
        return state
    if state.phase == "Failed":
        state.reason = str(status.get("reason") or "Failed")
        state.message = str(status.get("message") or "")
        state.fatal = True
        return state
    scheduled = conditions.get("PodScheduled") or {}
    if scheduled.get("status") == "False":
        state.reason = str(scheduled.get("reason") or "Unschedulable")
        state.message = str(scheduled.get("message") or "")
        return state
    containers = list(status.get("initContainerStatuses") or [])
    containers += list(status.get("containerStatuses") or [])
    for cs in containers:
        if cs.get("ready"):
            continue
        state.container = str(cs.get("name", ""))
        state.restarts = int(cs.get("restartCount", 0))
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if last:
            state.last_exit = f"exit code {last.get('exitCode')} ({last.get('reason') or '?'})"
        waiting = (cs.get("state") or {}).get("waiting")
        running = (cs.get("state") or {}).get("running")
        if waiting:
            state.reason = str(waiting.get("reason") or "Waiting")
            state.message = str(waiting.get("message") or "")
            state.fatal = state.reason in FATAL_WAITING
        elif running:
            state.reason = "Running, not ready"
        else:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            state.reason = str(terminated.get("reason") or "Terminated")
            state.message = f"exit code {terminated.get('exitCode')}"
        return state
    state.reason = state.reason or ("ContainerCreating" if state.phase == "Pending" else "")
    return state


# -- errors -------------------------------------------------------------------------------------
def _failure(
    api: Any, namespace: str, name: str, pod: PodState, what: str, status: RolloutStatus
) -> str:
    return (
        f"deployment/{name} in namespace '{namespace}' {what}: {describe_pod(api, namespace, pod)}"
    )


def _timed_out(api: Any, namespace: str, name: str, status: RolloutStatus, timeout: float) -> str:
    text = (
        f"deployment/{name} in namespace '{namespace}' did not roll out within {timeout:g}s: "
        f"waiting for {status.waiting_for()}"
    )
    stuck = [p for p in status.pods if not p.ready]
    return f"{text}; {describe_pod(api, namespace, stuck[0])}" if stuck else text


def describe_pod(api: Any, namespace: str, pod: PodState) -> str:
    """One pod's trouble: its reason and message, its last Warning event (a failed probe...)
    and, when its container ran, the last lines of its log (of the crashed run if it restarted)."""
    text = f"pod {pod.name}"
    if pod.container:
        text += f", container {pod.container}"
    reason = "not ready" if pod.reason == "Running, not ready" else pod.reason
    text += f": {reason}"
    if pod.reason in FATAL_WAITING:
        text += f" ({FATAL_WAITING[pod.reason]})"
    if pod.message and pod.reason != "CrashLoopBackOff":  # its message repeats the pod's name
        text += f": {pod.message}"
    if pod.reason in PULL_REASONS:
        # the back-off says only "Back-off pulling image"; the kubelet's event says why
        event = _last_warning(api, namespace, pod.name, prefer="Failed to pull image")
        if event and "Failed to pull image" in event:
            text += f"; last event: {event}"
        return f"{text}. {PULL_HINT[0].upper()}{PULL_HINT[1:]}"
    if pod.restarts:
        text += f", restarted {pod.restarts} time{'s' if pod.restarts != 1 else ''}"
        if pod.last_exit:
            text += f", the last run ended with {pod.last_exit}"
    event = _last_warning(api, namespace, pod.name)
    if event and event not in text:
        text += f"; last event: {event}"
    elif pod.reason == "Running, not ready":
        text += "; its readiness probe has not passed yet"
    ran = pod.restarts > 0 or pod.reason in ("Running, not ready", "CrashLoopBackOff", "Error")
    if pod.container and ran:
        text += _log_tail(
            api, namespace, pod, previous=pod.restarts > 0 and pod.reason != "Running, not ready"
        )
    return text


def _last_warning(api: Any, namespace: str, pod: str, prefer: str = "") -> str:
    """The newest Warning event of a pod (a failed probe, a failed mount...), as one line; the
    newest whose message starts with ``prefer`` if there is one."""
    query = urlencode(
        {"fieldSelector": f"involvedObject.name={pod},involvedObject.kind=Pod,type=Warning"}
    )
    try:
        events = _get(api, f"/api/v1/namespaces/{quote(namespace, safe='')}/events?{query}")
    except KubernetesError:
        return ""
    items = [e for e in (events or {}).get("items") or [] if e.get("reason") not in NOISE_EVENTS]
    if not items:
        return ""

    def when(e: dict[str, Any]) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime") or "")

    preferred = [e for e in items if prefer and str(e.get("message", "")).startswith(prefer)]
    newest = max(preferred or items, key=when)
    message = " ".join(str(newest.get("message", "")).split())
    count = int(newest.get("count") or 1)
    return f"{newest.get('reason')}: {message}" + (f" (x{count})" if count > 1 else "")


def _log_tail(api: Any, namespace: str, pod: PodState, previous: bool) -> str:
    query = {"container": pod.container, "tailLines": str(LOG_LINES)}
    if previous:
        query["previous"] = "true"
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod.name, safe='')}/log"
    try:
        text = _get_text(api, f"{path}?{urlencode(query)}")
    except KubernetesError as exc:
        return f"\n(its log cannot be read: {exc})"
    lines = [line for line in text.splitlines() if line.strip()][-LOG_LINES:]
    if not lines:
        return "\n(its log is empty)"
    which = "the crashed container's" if previous else "its"
    return f"\nthe last lines of {which} log:\n" + "\n".join(f"  | {line}" for line in lines)


# -- HTTP ---------------------------------------------------------------------------------------
def _get(api: Any, path: str) -> Any:
    """GET ``path`` as JSON; None on 404."""
    text = _get_text(api, path, missing_ok=True)
    return None if text is None else json.loads(text)


def _get_text(api: Any, path: str, missing_ok: bool = False) -> Any:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from .apply import REQUEST_TIMEOUT, server_url

    try:
        response = api.call_api(
            path,
            "GET",
            header_params={"Accept": "application/json, */*"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
        return response.data.decode("utf-8", errors="replace")
    except ApiException as exc:
        if missing_ok and exc.status == 404:
            return None
        try:
            message = json.loads(exc.body or "{}").get("message") or exc.reason
        except (ValueError, AttributeError):
            message = exc.body or exc.reason
        raise KubernetesError(
            f"the Kubernetes API server at {server_url(api)} refused GET {path.split('?')[0]} "
            f"({exc.status} {exc.reason}): {message}"
        ) from None
    except HTTPError as exc:
        cause = getattr(exc, "reason", None) or exc
        raise ClusterUnreachableError(
            f"lost the Kubernetes API server at {server_url(api)} while waiting: {cause}"
        ) from None
