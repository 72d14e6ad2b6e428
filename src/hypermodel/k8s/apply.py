"""Create or patch manifests on a Kubernetes API server with the official client (imported lazily).

Each object is read first: absent -> created; present and already as declared -> "unchanged"
(nothing is written); otherwise a strategic-merge patch. The last manifest applied is kept in
an annotation so that a patch also removes what a later deploy no longer declares (map keys),
and the lists hypermodel owns (containers, volumes, ports...) are replaced as a whole. A rejected
object raises RejectedError with the API server's own message, never a traceback.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .._lazy import require
from .errors import ClusterUnreachableError, KubernetesError, RejectedError

Manifest = dict[str, Any]

LAST_APPLIED = "hypermodel/last-applied"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
REQUEST_TIMEOUT = 30
_PLURALS = {
    "Deployment": "deployments",
    "Service": "services",
    "Ingress": "ingresses",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
}
# Lists replaced as a whole on patch (hypermodel declares every element), by kind and path.
_OWNED_LISTS = {
    "Deployment": (
        ("spec", "template", "spec", "containers"),
        ("spec", "template", "spec", "volumes"),
        ("spec", "template", "spec", "imagePullSecrets"),
    ),
    "Service": (("spec", "ports"),),
}
# Fields a patch never removes even when a deploy stops declaring them.
_KEEP = {("spec", "replicas")}  # the HPA owns it once there is one


@dataclass(frozen=True)
class Outcome:
    kind: str
    name: str
    action: str  # created | patched | unchanged | deleted

    def line(self) -> str:
        return f"{self.kind.lower()}/{self.name} {self.action}"


# -- connecting ------------------------------------------------------------------------------------
def connect(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ApiClient: in-cluster inside a pod (unless a kubeconfig/context is named), else kubeconfig."""
    require("kubernetes", "k8s", "deploying to Kubernetes")
    from kubernetes import client, config

    cfg = client.Configuration()
    cfg.retries = 0  # fail fast: an unreachable server should not cost minutes of retries
    try:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(
                config_file=kubeconfig,
                context=context,
                client_configuration=cfg,
                persist_config=False,
            )
    except (config.ConfigException, OSError) as exc:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise ClusterUnreachableError(
            f"cannot load the Kubernetes configuration from {where}"
            f"{f' (context {context!r})' if context else ''}: {exc}. "
            "Pass --kubeconfig/--context, set KUBECONFIG, or use --dry-run to print the manifests"
        ) from exc
    return client.ApiClient(cfg)


def server_url(api: Any) -> str:
    return str(api.configuration.host)


# -- applying --------------------------------------------------------------------------------------
def apply_manifests(api: Any, manifests: Iterable[Manifest]) -> Iterator[Outcome]:
    """Apply in order, yielding each outcome; stops at the first rejected object (its error)."""
    for manifest in manifests:
        yield apply_one(api, _served_version(api, manifest))


def apply_one(api: Any, manifest: Manifest) -> Outcome:
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    desired = _with_last_applied(manifest)
    live = _request(api, "GET", _path(manifest, name), manifest, missing_ok=True)
    if live is None:
        _request(api, "POST", _path(manifest), manifest, body=desired)
        return Outcome(kind, name, "created")
    if _last_applied(live) == _canonical(manifest) and _covers(_owned_filled(desired), live):
        return Outcome(kind, name, "unchanged")
    patch = _patch_body(desired, live)
    patched = _request(
        api, "PATCH", _path(manifest, name), manifest, body=patch, content_type=STRATEGIC_MERGE
    )
    # The server writes nothing (same resourceVersion) when the patch changes nothing.
    same = _version(patched) == _version(live)
    return Outcome(kind, name, "unchanged" if same else "patched")


def read_object(api: Any, api_version: str, kind: str, namespace: str, name: str) -> Any:
    """The live object, or None when it does not exist."""
    ref = _reference(api_version, kind, namespace, name)
    return _request(api, "GET", _path(ref, name), ref, missing_ok=True)


def delete_object(
    api: Any, api_version: str, kind: str, namespace: str, name: str
) -> Outcome | None:
    """Delete an object (its pods go with a Deployment); None when there was none."""
    ref = _reference(api_version, kind, namespace, name)
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    gone = _request(api, "DELETE", _path(ref, name), ref, body=body, missing_ok=True)
    return None if gone is None else Outcome(kind, name, "deleted")


def _reference(api_version: str, kind: str, namespace: str, name: str) -> Manifest:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
    }


def _served_version(api: Any, manifest: Manifest) -> Manifest:
    """An autoscaling/v2 HPA becomes v2beta2 (same content) on servers older than 1.23."""
    if manifest.get("apiVersion") != "autoscaling/v2":
        return manifest
    group = _request(api, "GET", "/apis/autoscaling", manifest, missing_ok=True)
    versions = {v.get("version") for v in (group or {}).get("versions", [])}
    if "v2" in versions:
        return manifest
    if "v2beta2" in versions:
        return {**manifest, "apiVersion": "autoscaling/v2beta2"}
    raise KubernetesError(
        f"the cluster at {server_url(api)} serves neither autoscaling/v2 nor autoscaling/v2beta2 "
        f"(it has {', '.join(sorted(v for v in versions if v)) or 'none'}); deploy without --hpa"
    )


# -- the patch -------------------------------------------------------------------------------------
def _canonical(manifest: Manifest) -> str:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"))


def _with_last_applied(manifest: Manifest) -> Manifest:
    out = copy.deepcopy(manifest)
    out["metadata"].setdefault("annotations", {})[LAST_APPLIED] = _canonical(manifest)
    return out


def _last_applied(live: Manifest) -> str | None:
    value = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    return value if isinstance(value, str) else None


def _patch_body(desired: Manifest, live: Manifest) -> Manifest:
    """``desired`` + nulls for map keys dropped since the last apply + whole-list replacement."""
    patch = copy.deepcopy(desired)
    previous_text = _last_applied(live)
    if previous_text:
        try:
            previous = json.loads(previous_text)
        except ValueError:
            previous = {}
        _null_removed(previous, patch, ())
    kind = desired["kind"]
    for path in _OWNED_LISTS.get(kind, ()):
        items = _get(patch, path)
        if kind == "Service" and path == ("spec", "ports") and items is not None:
            items = _keep_node_ports(items, patch["spec"].get("type"), live)
        # An empty list is deleted outright: a lone replace directive would leave `[{}]` behind.
        _set(patch, path, [*items, {"$patch": "replace"}] if items else None)
    return patch


def _null_removed(previous: Any, patch: dict[str, Any], path: tuple[str, ...]) -> None:
    if not isinstance(previous, dict):
        return
    for key, old in previous.items():
        here = (*path, key)
        if here in _KEEP:
            continue
        if key not in patch:
            patch[key] = None
        elif isinstance(old, dict) and isinstance(patch[key], dict):
            _null_removed(old, patch[key], here)


def _keep_node_ports(
    ports: list[dict[str, Any]], desired_type: str | None, live: Manifest
) -> list[dict[str, Any]]:
    """Keep the node ports the server allocated, so a patch does not move them."""
    if desired_type == "ClusterIP":  # a ClusterIP Service may not keep node ports
        return ports
    spec = live.get("spec") or {}
    allocated = {p.get("name"): p.get("nodePort") for p in spec.get("ports") or []}
    out = []
    for port in ports:
        node_port = allocated.get(port.get("name"))
        if "nodePort" not in port and node_port:
            port = {**port, "nodePort": node_port}
        out.append(port)
    return out


def _owned_filled(manifest: Manifest) -> Manifest:
    """Owned lists that are not declared must be empty on the server too."""
    out = copy.deepcopy(manifest)
    for path in _OWNED_LISTS.get(manifest["kind"], ()):
        if _get(out, path) is None:
            _set(out, path, [])
    return out


def _covers(desired: Any, live: Any) -> bool:
    """Every declared field has the declared value on the server (which may add defaults)."""
    if isinstance(desired, dict):
        if live is None:
            live = {}
        return isinstance(live, dict) and all(_covers(v, live.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        live = [] if live is None else live
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(_covers(d, x) for d, x in zip(desired, live, strict=True))
        )
    return bool(desired == live)


def _get(obj: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)  # type: ignore[assignment]
    return obj


def _set(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        obj = obj.setdefault(key, {})
    obj[path[-1]] = value


def _version(obj: Manifest | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


# -- HTTP ------------------------------------------------------------------------------------------
def _path(manifest: Manifest, name: str | None = None) -> str:
    api_version = manifest["apiVersion"]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    plural = _PLURALS.get(manifest["kind"])
    if plural is None:
        raise KubernetesError(f"hypermodel does not deploy objects of kind {manifest['kind']!r}")
    namespace = quote(manifest["metadata"].get("namespace") or "default", safe="")
    path = f"{base}/namespaces/{namespace}/{plural}"
    return f"{path}/{quote(name, safe='')}" if name else path


def _request(
    api: Any,
    method: str,
    path: str,
    manifest: Manifest,
    *,
    body: Any = None,
    content_type: str | None = None,
    missing_ok: bool = False,
) -> Any:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    headers = {"Accept": "application/json", "Content-Type": content_type or "application/json"}
    try:
        return api.call_api(
            path,
            method,
            header_params=headers,
            body=body,
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as exc:
        if missing_ok and exc.status == 404:
            return None
        raise _rejected(exc, manifest, method, api) from None
    except HTTPError as exc:
        cause = getattr(exc, "reason", None) or exc  # MaxRetryError wraps the real one
        raise ClusterUnreachableError(
            f"cannot reach the Kubernetes API server at {server_url(api)}: {cause}. "
            "Check --kubeconfig/--context (or KUBECONFIG) and that the cluster is running"
        ) from None


def _rejected(exc: Any, manifest: Manifest, method: str, api: Any) -> KubernetesError:
    """The API server's Status, in one message naming the object and what to do."""
    try:
        status = json.loads(exc.body or "{}")
    except ValueError:
        status = {}
    if not isinstance(status, dict):
        status = {}
    message = status.get("message") or exc.reason or "no message"
    reason = status.get("reason") or exc.reason or ""
    kind = manifest.get("kind", "object")
    name = manifest.get("metadata", {}).get("name", "?")
    namespace = manifest.get("metadata", {}).get("namespace") or "default"
    hint = ""
    if exc.status in (401, 403):
        hint = " (check the credentials and RBAC permissions of your kubeconfig context)"
    elif exc.status == 404 and "namespace" in str(message).lower():
        hint = f" (create it first: kubectl create namespace {namespace})"
    verbs = {"GET": "reading", "POST": "creating", "PATCH": "patching", "DELETE": "deleting"}
    verb = verbs.get(method, method)
    text = (
        f"the Kubernetes API server at {server_url(api)} refused {verb} {kind} '{name}' "
        f"in namespace '{namespace}' ({exc.status} {reason}): {message}{hint}"
    )
    return RejectedError(text, int(exc.status or 0), str(reason))
