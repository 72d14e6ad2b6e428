"""Plain-dict Kubernetes manifests for an app's inference server (no kubernetes import here).

From the app's spec (:class:`~hypermodel.dsl.config.AppSpec`) and its
``@hml.deploy_inference`` configurators: an ``apps/v1`` Deployment, a Service, and optionally a
``networking.k8s.io/v1`` Ingress and an ``autoscaling/v2`` HPA, plus a canary beside them
(``k8s/canary.py``). The same dicts are printed by ``--dry-run``, committed under ``k8s/`` and
sent to the API server. Secrets appear by name only: a secret's value never passes through here.
"""

from __future__ import annotations

import logging
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..dsl.config import K8S, AppSpec
from ..errors import DeclarationError, UsageError

if TYPE_CHECKING:
    from ..app import HmlApp
    from ..dsl.config import ContainerConfig
    from ..serving.app import HmlInferenceDeployment

Manifest = dict[str, Any]

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
IMAGE_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PORT_NAME = "http"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
HOST_ROOT_VOLUME = "hml-root"
DEFAULT_GRACE_SECONDS = 30  # Kubernetes' terminationGracePeriodSeconds when unset
_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class DeployOptions:
    """Deploy-time overrides (CLI flags); they win over the app's configurators."""

    namespace: str | None = None
    image: str | None = None
    replicas: int | None = None
    service_type: str | None = None
    ingress_host: str | None = None
    hpa: tuple[int, int, int] | None = None  # min replicas, max replicas, target CPU %
    model_sha256: tuple[tuple[str | None, str], ...] = ()  # (model or None for all, digest)
    image_pull_policy: str | None = None  # Always | IfNotPresent | Never
    host_root: str | None = None  # a node directory mounted as the bucket root (HML_ROOT)
    connection_limit: int | None = None  # run-prod's --connection-limit, via the pod's env
    channel_timeout: int | None = None  # run-prod's --channel-timeout (seconds)
    # (model or None for the one published with that version, ref) the stable pods serve: a
    # version is pinned, 'latest' or an alias goes into HML_MODELS and is followed (canary.py)
    models: tuple[tuple[str | None, str], ...] = ()
    canary: tuple[str | None, str] | None = None  # the canary's (model or None, version or alias)
    weight: int = 10  # percent of the requests the canary should answer
    model_poll_seconds: float | None = None  # run-prod's --model-poll-seconds, via the pod's env
    # (secret, key) whose value becomes the pod's HML_ADMIN_TOKEN (secretKeyRef: never read here)
    admin_token_secret: tuple[str, str] | None = None


POLL_ENV = "HML_MODEL_POLL_SECONDS"
ADMIN_TOKEN_ENV = "HML_ADMIN_TOKEN"
DEFAULT_ADMIN_TOKEN_KEY = "token"
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def parse_model_version(text: str, option: str = "--model") -> tuple[str | None, str]:
    """``"wine-classifier=20261206-1"`` -> ("wine-classifier", version); a bare version (or
    alias) leaves the model to be found in the bucket (``None``). The ref may also be
    ``latest`` or an alias (``wine-classifier=production``)."""
    model, sep, version = text.rpartition("=")
    if (sep and not model) or not version:
        raise UsageError(
            f"{option} {text!r}: give [MODEL=]VERSION or MODEL=ALIAS, e.g. "
            "wine-classifier=20261206-084213-78966a or wine-classifier=production"
        )
    return (model or None), version


def parse_secret_key(text: str, option: str = "--admin-token-secret") -> tuple[str, str]:
    """``"wines-admin:token"`` -> ("wines-admin", "token"); the key defaults to ``token``.
    The text is never repeated in an error: it may be the token itself, given by mistake."""
    secret, sep, key = text.partition(":")
    key = key if sep else DEFAULT_ADMIN_TOKEN_KEY
    if len(secret) > 253 or not _SECRET_NAME.fullmatch(secret) or _looks_random(secret):
        raise UsageError(
            f"{option} takes the name of a Kubernetes Secret (lower-case letters, digits, '-' "
            "and '.'), not the token itself, then optionally ':' and the key holding the token "
            f"(default '{DEFAULT_ADMIN_TOKEN_KEY}'): e.g. {option} wines-admin, after `kubectl "
            "create secret generic wines-admin --from-literal=token=<token>`"
        )
    if len(key) > 253 or not _SECRET_KEY.fullmatch(key) or _looks_random(key):
        raise UsageError(
            f"{option} {secret}:KEY: the key must be letters, digits, '-', '_' or '.', the "
            "name of the Secret's entry that holds the token (e.g. token), not the token itself"
        )
    return secret, key


def _looks_random(text: str) -> bool:
    """A token given by mistake, which must not become a name in the manifests: a long run of
    letters and digits (``openssl rand -hex 32``, ``ghp_...``), a UUID, or hex digits split by
    separators. Ordinary names (``wine-classifier-admin-v2``) pass."""
    parts = [part for part in re.split(r"[-._]", text) if part]
    for part in parts:
        if len(part) >= 16 and any(c.isdigit() for c in part) and any(c.isalpha() for c in part):
            return True
    if re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", text):
        return True
    hexdigits = "".join(p for p in parts if all(c in string.hexdigits for c in p))
    return len(hexdigits) >= 24 and any(c.isdigit() for c in hexdigits)


def parse_hpa(text: str) -> tuple[int, int, int]:
    """``"2:10:75"`` -> (2, 10, 75); the CPU target may be left out (``"2:10"`` -> 80 %)."""
    parts = text.split(":")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 2:
        numbers.append(80)
    if len(numbers) != 3 or not 1 <= numbers[0] <= numbers[1] or not 1 <= numbers[2] <= 1000:
        raise UsageError(
            f"--hpa {text!r} is not MIN:MAX[:CPU%] with 1 <= MIN <= MAX and 1 <= CPU% <= 1000 "
            "(e.g. --hpa 2:10:75)"
        )
    return numbers[0], numbers[1], numbers[2]


def parse_model_pin(text: str) -> tuple[str | None, str]:
    """``"wine-classifier=sha256:ab..."`` -> ("wine-classifier", digest); a bare digest pins
    every model (``None``)."""
    model, sep, digest = text.rpartition("=")
    if sep and not model:
        raise UsageError(
            f"--model-sha256 {text!r}: give [MODEL=]DIGEST, e.g. wine-classifier=sha256:..."
        )
    return (model or None), digest


def dns_label(text: str) -> str:
    """A Kubernetes object/volume name from a hypermodel name (``My_App`` -> ``my-app``)."""
    label = _DNS_LABEL.sub("-", text.lower()).strip("-")
    return label[:63].rstrip("-")


def deployment_config(
    spec: AppSpec, options: DeployOptions | None = None
) -> HmlInferenceDeployment:
    """The app's deployment settings after its configurators and then the deploy-time options."""
    options = options or DeployOptions()
    cfg = spec.inference.deployment_config()
    if options.namespace:
        cfg.with_namespace(options.namespace)
    if options.image:
        cfg.with_image(options.image)
    else:  # the app's own image: by the digest of the last pushed build, when there is one
        image, note = spec.run_image(cfg.image)
        if image and note:
            cfg.with_image(image)
            logging.getLogger("hypermodel.k8s").warning("%s", note)
    if options.replicas is not None:
        cfg.with_replicas(options.replicas)
    if options.service_type:
        _check_service_type(options.service_type)
        cfg.with_service_type(options.service_type, cfg.node_port)
    if options.ingress_host:  # only the host: a configurator's class, path and TLS still apply
        cfg.ingress_host = options.ingress_host
    if options.hpa:
        cfg.with_hpa(*options.hpa)
    for model, digest in options.model_sha256:
        cfg.with_model_sha256(digest, model)
    if options.image_pull_policy:
        cfg.with_image_pull_policy(options.image_pull_policy)
    if options.host_root:
        if not options.host_root.startswith("/"):
            raise UsageError(
                f"--host-root {options.host_root!r} must be an absolute path on the node"
            )
        cfg.with_host_root(options.host_root)
    if options.connection_limit is not None or options.channel_timeout is not None:
        cfg.with_connection_limits(options.connection_limit, options.channel_timeout)
    if options.model_poll_seconds is not None:
        if not options.model_poll_seconds >= 0:
            raise UsageError(
                f"--model-poll-seconds {options.model_poll_seconds}: give 0 (reload only on "
                "POST /-/reload) or more seconds"
            )
        cfg.with_env(POLL_ENV, f"{options.model_poll_seconds:g}")
    if options.admin_token_secret is not None:
        secret, key = options.admin_token_secret
        # the value stays in the cluster: the pod reads it through a secretKeyRef
        cfg.secret_env = [s for s in cfg.secret_env if s.env != ADMIN_TOKEN_ENV]
        cfg.with_secret_env(ADMIN_TOKEN_ENV, secret, key)
    return cfg


def build_manifests(app: HmlApp, options: DeployOptions | None = None) -> list[Manifest]:
    """The manifests of ``app``'s inference server, in the order to apply them (see
    :func:`render_manifests`)."""
    return render_manifests(AppSpec.of(app), options)


def render_manifests(spec: AppSpec, options: DeployOptions | None = None) -> list[Manifest]:
    """Deployment, Service, then the Ingress and HPA when asked for, in the order to apply them;
    with a canary, its Deployment (and Service) first and its Ingress last."""
    options = options or DeployOptions()
    cfg = deployment_config(spec, options)
    _check(spec, cfg)
    from .canary import canary_manifests, serve_versions

    serve_versions(spec, cfg, options.models)
    manifests = stable_manifests(spec, cfg)
    if options.canary is not None:
        manifests = canary_manifests(spec, cfg, manifests, options.canary, options.weight)
    return manifests


def selector_labels(spec: AppSpec) -> dict[str, str]:
    """The labels the stable Deployment selects and the Service routes to."""
    return {LABEL_NAME: dns_label(spec.name), LABEL_COMPONENT: "inference"}


def stable_manifests(spec: AppSpec, cfg: HmlInferenceDeployment) -> list[Manifest]:
    """Deployment, Service, then the Ingress and HPA when asked for."""
    name = dns_label(cfg.deployment_name)
    selector = selector_labels(spec)
    labels = {**selector, LABEL_MANAGED_BY: "hypermodel", **cfg.labels}
    meta = {"name": name, "namespace": cfg.namespace, "labels": labels}
    manifests = [
        deployment(spec, cfg, meta, selector, labels),
        service(cfg, meta, selector),
    ]
    if cfg.ingress_host:
        manifests.append(ingress(cfg, meta))
    if cfg.hpa_min_replicas is not None:
        manifests.append(_hpa(cfg, meta))
    return manifests


# -- checks that the API server cannot make for us ------------------------------------------------
def _check_service_type(service_type: str) -> None:
    if service_type not in SERVICE_TYPES:
        raise UsageError(f"service type {service_type!r} is not one of {', '.join(SERVICE_TYPES)}")


def _check(spec: AppSpec, cfg: HmlInferenceDeployment) -> None:
    ignored = cfg.not_rendered(K8S)
    if ignored:  # every container setting reaches the Deployment today; a new one must too
        raise DeclarationError(
            f"app '{spec.name}' sets {', '.join(ignored)} for its inference server, which the "
            "Deployment does not apply; remove it from @hml.deploy_inference"
        )
    if not cfg.image:
        raise DeclarationError(
            f"app '{spec.name}' has no container image for its inference server: set "
            "HmlApp(image_url=...), call deployment.with_image(...) in @hml.deploy_inference, "
            "or pass --image"
        )
    _check_service_type(cfg.service_type)
    if cfg.replicas < 0:
        raise UsageError(f"replicas must be 0 or more, got {cfg.replicas}")
    if cfg.hpa_min_replicas is not None and not cfg.cpu_request:
        # Utilisation is a percentage of the request: without one the HPA never scales.
        raise DeclarationError(
            f"the HPA of app '{spec.name}' targets CPU utilisation, which needs a CPU request: "
            "call deployment.with_resources(cpu='250m', ...) in @hml.deploy_inference"
        )
    if cfg.host_root and cfg.env.get("HML_ROOT", cfg.host_root) != cfg.host_root:
        raise DeclarationError(
            f"app '{spec.name}' sets HML_ROOT={cfg.env['HML_ROOT']} and mounts the host root "
            f"{cfg.host_root} as HML_ROOT; keep one"
        )
    secret_names = {s.env for s in cfg.secret_env}
    clash = sorted(secret_names & set(cfg.env))
    if clash:
        raise DeclarationError(
            f"env var(s) {', '.join(clash)} of app '{spec.name}' are set both as plain values and "
            "from secrets; keep one"
        )


# -- the objects -----------------------------------------------------------------------------------
def deployment(
    spec: AppSpec,
    cfg: HmlInferenceDeployment,
    meta: dict[str, Any],
    selector: dict[str, str],
    pod_labels: dict[str, str],
) -> Manifest:
    """The server's Deployment: ``selector`` picks its pods, which carry ``pod_labels``."""
    annotations = {
        # /metrics serves Prometheus text; these are the conventional scrape hints.
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(cfg.port),
        "prometheus.io/path": "/metrics",
        **cfg.annotations,
    }
    body: dict[str, Any] = {}
    if cfg.hpa_min_replicas is None:
        # With an HPA the autoscaler owns the replica count; setting it here would fight it.
        body["replicas"] = cfg.replicas
    body["selector"] = {"matchLabels": dict(selector)}
    body["template"] = {
        "metadata": {"labels": dict(pod_labels), "annotations": annotations},
        "spec": _pod_spec(spec, cfg),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": copy_meta(meta),
        "spec": body,
    }


def _pod_spec(spec: AppSpec, cfg: HmlInferenceDeployment) -> dict[str, Any]:
    volumes, mounts = _volumes(cfg)
    if cfg.host_root:
        if any(v["name"] == HOST_ROOT_VOLUME for v in volumes):
            raise DeclarationError(
                f"the volume name '{HOST_ROOT_VOLUME}' is taken by the host root; rename yours"
            )
        source = {"path": cfg.host_root, "type": "Directory"}
        volumes.append({"name": HOST_ROOT_VOLUME, "hostPath": source})
        mounts.append({"name": HOST_ROOT_VOLUME, "mountPath": cfg.host_root, "readOnly": True})
    from ..serving.app import CONTAINER_NAME  # the name deployment.k8s_container shows

    container: dict[str, Any] = {"name": CONTAINER_NAME, "image": cfg.image}
    if cfg.image_pull_policy:
        container["imagePullPolicy"] = cfg.image_pull_policy
    if cfg.command:
        container["command"] = list(cfg.command)
    container["args"] = cfg.server_args()  # the image's ENTRYPOINT is the app's script
    container["ports"] = [{"name": PORT_NAME, "containerPort": cfg.port, "protocol": "TCP"}]
    env = _env(spec, cfg)
    if env:
        container["env"] = env
    resources = _resources(cfg)
    if resources:
        container["resources"] = resources
    if mounts:
        container["volumeMounts"] = mounts
    container["livenessProbe"] = _probe("/livez", initial_delay=10, period=10)
    container["readinessProbe"] = _probe("/readyz", initial_delay=2, period=5)
    pod: dict[str, Any] = {"containers": [container]}
    if cfg.drain_seconds + 10 > DEFAULT_GRACE_SECONDS:
        # room for the drain, then for the requests in flight to finish
        pod["terminationGracePeriodSeconds"] = cfg.drain_seconds + 10
    if volumes:
        pod["volumes"] = volumes
    if cfg.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in cfg.image_pull_secrets]
    if cfg.service_account:
        pod["serviceAccountName"] = cfg.service_account
    if cfg.node_selector:
        pod["nodeSelector"] = dict(cfg.node_selector)
    if cfg.tolerations:
        pod["tolerations"] = [dict(t) for t in cfg.tolerations]
    return pod


def _probe(path: str, initial_delay: int, period: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "initialDelaySeconds": initial_delay,
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


def _env(spec: AppSpec, cfg: HmlInferenceDeployment) -> list[dict[str, Any]]:
    values = dict(cfg.env)
    if cfg.drain_seconds and "HML_DRAIN_SECONDS" not in values:
        # an env var, not an argument: an image older than --drain-seconds still starts
        values["HML_DRAIN_SECONDS"] = str(cfg.drain_seconds)
    if cfg.host_root:
        values["HML_ROOT"] = cfg.host_root
    elif not spec.settings.is_local and "HML_ROOT" not in values:
        # A bucket URL means the same thing inside the pod; a local path would not.
        values["HML_ROOT"] = spec.settings.root
    env: list[dict[str, Any]] = [{"name": k, "value": values[k]} for k in sorted(values)]
    for s in cfg.secret_env:
        env.append({"name": s.env, "valueFrom": {"secretKeyRef": {"name": s.secret, "key": s.key}}})
    return env


def _resources(cfg: ContainerConfig) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cfg.cpu_request), ("memory", cfg.memory_request)) if v}
    limits: dict[str, Any] = {
        k: v for k, v in (("cpu", cfg.cpu_limit), ("memory", cfg.memory_limit)) if v
    }
    if cfg.gpu_limit:
        limits[cfg.gpu_vendor] = cfg.gpu_limit
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _volumes(cfg: ContainerConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: dict[str, dict[str, Any]] = {}
    mounts: list[dict[str, Any]] = []

    def add(name: str, source: dict[str, Any], mount_path: str, read_only: bool) -> None:
        name = dns_label(name)
        if name in volumes and volumes[name] != {"name": name, **source}:
            raise DeclarationError(
                f"two different volumes of the inference Deployment are both named '{name}'; "
                "rename one of them"
            )
        volumes[name] = {"name": name, **source}
        mount: dict[str, Any] = {"name": name, "mountPath": mount_path}
        if read_only:
            mount["readOnly"] = True
        mounts.append(mount)

    for sv in cfg.secret_volumes:
        add(f"secret-{sv.secret}", {"secret": {"secretName": sv.secret}}, sv.mount_path, True)
    for v in cfg.volumes:
        if v.kind == "pvc":
            add(
                f"pvc-{v.name}",
                {"persistentVolumeClaim": {"claimName": v.name}},
                v.mount_path,
                False,
            )
        else:
            empty: dict[str, Any] = {}
            if v.medium:
                empty["medium"] = v.medium
            if v.size_limit:
                empty["sizeLimit"] = v.size_limit
            add(v.name, {"emptyDir": empty}, v.mount_path, False)
    return list(volumes.values()), mounts


def service(
    cfg: HmlInferenceDeployment, meta: dict[str, Any], selector: dict[str, str]
) -> Manifest:
    # protocol is always set: a 1.20 API server rejects a port without it under server-side apply.
    port: dict[str, Any] = {
        "name": PORT_NAME,
        "port": cfg.port,
        "targetPort": PORT_NAME,
        "protocol": "TCP",
    }
    if cfg.node_port is not None and cfg.service_type != "ClusterIP":
        port["nodePort"] = cfg.node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": copy_meta(meta),
        "spec": {"type": cfg.service_type, "selector": dict(selector), "ports": [port]},
    }


def ingress(cfg: HmlInferenceDeployment, meta: dict[str, Any]) -> Manifest:
    backend = {"service": {"name": meta["name"], "port": {"name": PORT_NAME}}}
    path = {"path": cfg.ingress_path or "/", "pathType": "Prefix", "backend": backend}
    spec: dict[str, Any] = {}
    if cfg.ingress_class:
        spec["ingressClassName"] = cfg.ingress_class
    if cfg.ingress_tls_secret:
        spec["tls"] = [{"hosts": [cfg.ingress_host], "secretName": cfg.ingress_tls_secret}]
    spec["rules"] = [{"host": cfg.ingress_host, "http": {"paths": [path]}}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": copy_meta(meta),
        "spec": spec,
    }


def _hpa(cfg: HmlInferenceDeployment, meta: dict[str, Any]) -> Manifest:
    target = {"type": "Utilization", "averageUtilization": cfg.hpa_cpu_percent}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": copy_meta(meta),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"]},
            "minReplicas": cfg.hpa_min_replicas,
            "maxReplicas": cfg.hpa_max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
        },
    }


def copy_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in meta.items()}


def to_yaml(manifests: list[Manifest]) -> str:
    """Multi-document YAML in declaration order (what ``--dry-run`` prints and k8s/ holds)."""
    from .._lazy import require

    yaml = require("yaml", "k8s", "printing Kubernetes manifests")
    return str(yaml.safe_dump_all(manifests, sort_keys=False, default_flow_style=False))
