"""Canary rollouts of the inference server: a second Deployment serving another model version,
and which model versions (or moving references) the pods serve.

``inference deploy --canary [MODEL=]REF --weight W`` renders, beside the stable objects, a
Deployment ``<name>-canary`` whose pods run ``run-prod --model MODEL=VERSION`` (and pin that
version's digest when the bucket the pods read is readable here). REF is a version, or
``latest`` or an alias, which is resolved through the model store here, at deploy time: the
canary pins the version (and digest) it named then, and does not follow it. How the requests
reach it:

- without an Ingress, the Service selects the pods of both Deployments, so the canary answers
  its share of the pods: the replicas are split by the weight (:func:`split_replicas`);
- with an Ingress, the canary pods leave the Service (their component label is
  ``inference-canary``) and a second Ingress, with nginx-ingress's canary annotations, sends
  exactly W % of the host's requests to a Service of their own.

``--promote`` gives the stable Deployment the canary's pod template (a rolling update to the
canary's version), waits for it, then deletes the canary objects; where the stable pods follow
an alias of the canary's model, it moves the alias to the canary's version instead and restarts
the stable pods, which keep following it (``LiveCanary.following``). ``--abort-canary``
restores the stable replicas and deletes them. Both read what to do from the cluster: the
stable and canary Deployments' last applied manifests and the canary's record annotation.

``inference deploy --model MODEL=REF`` chooses what the stable pods serve: a version is pinned
like the canary's; ``latest`` or an alias is passed on as ``HML_MODELS`` (run-prod's
``--model`` from the environment), which the pods resolve when they load and then follow
(hot reload), so nothing pins its digest. Once a Deployment follows a reference, every model
it selects goes into ``HML_MODELS`` (run-prod's ``--model`` arguments would override it).
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import DeclarationError, NotFoundError, StorageError, UsageError
from .errors import KubernetesError
from .manifests import (
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    Manifest,
    deployment,
    dns_label,
    ingress,
    service,
)

if TYPE_CHECKING:
    from ..dsl.config import AppSpec
    from ..serving.app import HmlInferenceDeployment

# on a promoted stable Deployment's pod template: MODEL=VERSION its restart was for
PROMOTED = "hypermodel/promoted"
MODELS_ENV = "HML_MODELS"  # run-prod --model NAME=REF, space-separated, read from the pod's env
LABEL_TRACK = "hypermodel/track"
CANARY_RECORD = "hypermodel/canary"  # on the canary Deployment: model, version, weight, replicas
NGINX_CANARY = "nginx.ingress.kubernetes.io/canary"
NGINX_CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
SUFFIX = "-canary"
_log = logging.getLogger("hypermodel.k8s")


@dataclass(frozen=True)
class ModelVersion:
    """One published version of a model, and its digest when the pods' bucket is readable here."""

    model: str
    version: str
    sha256: str | None = None
    ref: str | None = None  # the alias or 'latest' it was resolved from at deploy time

    @property
    def text(self) -> str:
        return f"{self.model}={self.version}"


@dataclass(frozen=True)
class MovingRef:
    """A model served by ``latest`` or an alias: the pods resolve it and follow it."""

    model: str
    ref: str
    version: str | None = None  # what it names now, when the pods' bucket is readable here

    @property
    def text(self) -> str:
        return f"{self.model}={self.ref}"


def canary_name(stable: str) -> str:
    return f"{stable[: 63 - len(SUFFIX)].rstrip('-')}{SUFFIX}"


def split_replicas(total: int, weight: int) -> tuple[int, int]:
    """(stable, canary) pods for ``weight`` % of ``total``: the canary gets the nearest whole
    number of pods, at least one; the stable keeps the rest, at least one (so one replica asked
    gives two pods, one of each)."""
    canary = max(1, (total * weight + 50) // 100)
    return max(1, total - canary), canary


# -- which version, which digest ------------------------------------------------------------------
def pods_root(spec: AppSpec, cfg: HmlInferenceDeployment) -> str | None:
    """The bucket the pods read, when this machine can read it too (else None)."""
    if cfg.host_root:
        from pathlib import Path

        return cfg.host_root if Path(cfg.host_root).is_dir() else None
    if not spec.settings.is_local:
        return spec.settings.root
    return None


def model_version(
    spec: AppSpec, cfg: HmlInferenceDeployment, model: str | None, version: str, option: str
) -> ModelVersion:
    """``model``'s ``version`` as published in the pods' bucket, with its digest; the model is
    found by its version when not given. Where the bucket cannot be read here the digest stays
    unknown (and the model must be named). ``latest`` or an alias is resolved to the version
    it names now (the bucket must be readable here)."""
    selected = model_ref(spec, cfg, model, version, option, follow=False)
    assert isinstance(selected, ModelVersion)
    return selected


def model_ref(
    spec: AppSpec,
    cfg: HmlInferenceDeployment,
    model: str | None,
    ref: str,
    option: str,
    *,
    follow: bool,
) -> ModelVersion | MovingRef:
    """What ``--model``/``--canary`` ``[MODEL=]REF`` selects: a version (with its digest when
    the pods' bucket is readable here), or, for ``latest`` or an alias, a :class:`MovingRef`
    the pods follow (``follow=True``) or the version it names now (``follow=False``)."""
    from ..models.aliases import is_alias_name
    from ..names import check_name

    if ref != "latest" and not is_alias_name(ref):
        return _published_version(spec, cfg, model, check_name(ref, "model version"), option)
    root = pods_root(spec, cfg)
    if root is None:
        if not follow:
            raise UsageError(
                f"{option} {model or ''}{'=' if model else ''}{ref}: '{ref}' is resolved to a "
                "version and its digest at deploy time, and the pods' bucket cannot be read "
                f"from here: give the version ({option} MODEL=VERSION), or deploy where the "
                "bucket is readable (a gs:// or s3:// root, or --host-root)"
            )
        if model is None:
            raise UsageError(
                f"{option} {ref}: name the model ({option} MODEL={ref}); the pods' bucket "
                "cannot be read from here to find which model it is"
            )
        _log.warning(
            "%s %s=%s: the pods' bucket cannot be read from here, so whether '%s' names a "
            "version is not checked; the pods resolve it when they load",
            option,
            model,
            ref,
            ref,
        )
        return MovingRef(check_name(model, "model"), ref)
    from ..models.store import ModelStore
    from ..storage import open_storage

    store = ModelStore(open_storage(root))
    name = model or ""
    try:
        name = check_name(model, "model") if model else _only_model(store, ref, option)
        reference = store.resolve(name, ref)
    except NotFoundError as exc:
        raise DeclarationError(f"{option} {name}={ref}: {exc}") from None
    except (OSError, StorageError) as exc:
        raise DeclarationError(
            f"{option} {name}={ref}: cannot read {store.storage.url} to resolve it: {exc}"
        ) from exc
    if reference.version == ref:  # a version named like an alias
        return ModelVersion(name, ref, f"sha256:{reference.model_sha256}")
    if follow:
        return MovingRef(name, ref, reference.version)
    return ModelVersion(name, reference.version, f"sha256:{reference.model_sha256}", ref)


def _only_model(store: Any, ref: str, option: str) -> str:
    models = store.models()
    if len(models) == 1:
        return str(models[0])
    raise UsageError(
        f"{option} {ref}: name the model ({option} MODEL={ref}); {store.storage.url} holds "
        f"{'models ' + ', '.join(models) if models else 'no model'}"
    )


def _published_version(
    spec: AppSpec, cfg: HmlInferenceDeployment, model: str | None, version: str, option: str
) -> ModelVersion:
    from ..names import check_name

    root = pods_root(spec, cfg)
    if root is None:
        if model is None:
            raise UsageError(
                f"{option} {version}: name the model ({option} MODEL={version}); the pods' bucket "
                "cannot be read from here to find which model has that version"
            )
        _log.warning(
            "%s %s=%s: the pods' bucket cannot be read from here, so its digest is not pinned",
            option,
            model,
            version,
        )
        return ModelVersion(check_name(model, "model"), version)
    from ..serving.model import ModelReference
    from ..storage import open_storage

    store = open_storage(root)
    name = ""
    try:
        name = check_name(model, "model") if model else _model_of(store, version, option)
        key = f"models/{name}/{version}/reference.json"
        reference = ModelReference.from_json(store.read_bytes(key), key=key)
    except NotFoundError:
        raise DeclarationError(
            f"{option} {name}={version}: no such version of model '{name}' in {store.url} "
            f"(published: {', '.join(_versions(store, name)) or 'none'}); publish it first"
        ) from None
    except (OSError, StorageError) as exc:
        raise DeclarationError(
            f"{option} {model or ''}{'=' if model else ''}{version}: cannot read {store.url} "
            f"to find its digest: {exc}"
        ) from exc
    return ModelVersion(name, version, f"sha256:{reference.model_sha256}")


def _model_of(store: Any, version: str, option: str) -> str:
    suffix = f"/{version}/reference.json"
    models = sorted({k.split("/")[1] for k in store.list("models") if k.endswith(suffix)})
    if len(models) == 1:
        return models[0]
    found = f"models {', '.join(models)} all have it" if models else "no model has it"
    raise UsageError(f"{option} {version}: {found} in {store.url}; give {option} MODEL={version}")


def _versions(store: Any, model: str) -> list[str]:
    prefix = f"models/{model}"
    return sorted(
        {
            k[len(prefix) + 1 :].split("/")[0]
            for k in store.list(prefix)
            if k.endswith("/reference.json")
        }
    )


def serve(cfg: HmlInferenceDeployment, selected: ModelVersion | MovingRef) -> None:
    """Have the pods of ``cfg`` serve ``selected``: a version pinned with its digest when known,
    or a moving reference they follow."""
    if isinstance(selected, MovingRef):
        _check_not_pinned(cfg, selected)
        _select_in_env(cfg, selected.model, selected.ref)
        return
    if MODELS_ENV in cfg.env:  # run-prod's --model arguments would hide HML_MODELS
        _select_in_env(cfg, selected.model, selected.version)
    else:
        cfg.with_model_version(selected.model, selected.version)
    if selected.sha256:
        cfg.with_model_sha256(selected.sha256, selected.model)


def serve_versions(
    spec: AppSpec, cfg: HmlInferenceDeployment, models: tuple[tuple[str | None, str], ...]
) -> None:
    for model, ref in models:
        serve(cfg, model_ref(spec, cfg, model, ref, "--model", follow=True))


def models_in_env(cfg: HmlInferenceDeployment) -> dict[str, str]:
    """The ``HML_MODELS`` entries of ``cfg``: model -> ref."""
    return parse_models_env(cfg.env.get(MODELS_ENV, ""))


def parse_models_env(text: str) -> dict[str, str]:
    """``HML_MODELS``'s space-separated NAME=REF entries: model -> ref."""
    refs = {}
    for item in text.split():
        name, sep, ref = item.partition("=")
        if not sep or not name or not ref:
            raise DeclarationError(
                f"{MODELS_ENV} of the inference Deployment holds {item!r}, which is not "
                "NAME=REF: set it to space-separated NAME=REF entries, or use `inference "
                "deploy --model NAME=REF`"
            )
        refs[name] = ref
    return refs


def _select_in_env(cfg: HmlInferenceDeployment, model: str, ref: str) -> None:
    refs = models_in_env(cfg)
    refs.update(cfg.model_versions)  # every selection in one place: HML_MODELS
    cfg.model_versions.clear()
    refs[model] = ref
    cfg.with_env(MODELS_ENV, " ".join(f"{m}={refs[m]}" for m in sorted(refs)))


def _check_not_pinned(cfg: HmlInferenceDeployment, moving: MovingRef) -> None:
    from ..serving.model import PIN_ENV, pin_env_name

    pinned = [name for name in (pin_env_name(moving.model), PIN_ENV) if name in cfg.env]
    if pinned:
        raise DeclarationError(
            f"--model {moving.text} follows '{moving.ref}', but the model's digest is pinned "
            f"({pinned[0]}, from --model-sha256 or with_model_sha256): the next version "
            f"'{moving.ref}' names would be refused; drop the pin, or serve a version "
            f"(--model {moving.model}=VERSION) with its digest pinned"
        )


# -- rendering ------------------------------------------------------------------------------------
def canary_manifests(
    spec: AppSpec,
    cfg: HmlInferenceDeployment,
    stable: list[Manifest],
    canary: tuple[str | None, str],
    weight: int,
) -> list[Manifest]:
    """The canary's Deployment (and Service), the stable objects with the replicas split, then
    the canary's Ingress: the order to apply them, so that the canary runs before the stable
    shrinks and before the Ingress sends it requests."""
    if not 1 <= weight <= 99:
        raise UsageError(f"--weight {weight}: give a percentage from 1 to 99")
    total = cfg.replicas if cfg.hpa_min_replicas is None else cfg.hpa_min_replicas
    if total < 1:
        raise UsageError(
            "a canary runs beside serving pods: deploy with --replicas 1 or more (it has 0)"
        )
    version = model_version(spec, cfg, canary[0], canary[1], "--canary")
    stable_replicas, canary_replicas = split_replicas(total, weight)
    stable = copy.deepcopy(stable)
    if cfg.hpa_min_replicas is None:
        stable[0]["spec"]["replicas"] = stable_replicas

    by_ingress = bool(cfg.ingress_host)
    ccfg: HmlInferenceDeployment = cfg.copy()  # type: ignore[assignment]
    ccfg.name = canary_name(stable[0]["metadata"]["name"])
    ccfg.replicas, ccfg.hpa_min_replicas = canary_replicas, None
    ccfg.service_type, ccfg.node_port = "ClusterIP", None  # its own Service is internal
    serve(ccfg, version)
    selector = {LABEL_NAME: dns_label(spec.name), LABEL_TRACK: "canary"}
    component = "inference-canary" if by_ingress else "inference"  # in the Service or not
    labels = {
        LABEL_NAME: selector[LABEL_NAME],
        LABEL_COMPONENT: component,
        LABEL_MANAGED_BY: "hypermodel",
        **cfg.labels,
        LABEL_TRACK: "canary",
    }
    record = {
        "stable": stable[0]["metadata"]["name"],
        "model": version.model,
        "version": version.version,
        "sha256": version.sha256,
        "weight": weight,
        "replicas": None if cfg.hpa_min_replicas is not None else total,
        **({"ref": version.ref} if version.ref else {}),
    }
    meta = {"name": ccfg.name, "namespace": cfg.namespace, "labels": labels}
    canary_deployment = deployment(spec, ccfg, meta, selector, labels)
    canary_deployment["metadata"]["annotations"] = {
        CANARY_RECORD: json.dumps(record, sort_keys=True)
    }
    first = [canary_deployment]
    last = []
    if by_ingress:
        first.append(service(ccfg, meta, selector))
        route = ingress(ccfg, meta)
        route["spec"].pop("tls", None)  # the stable Ingress terminates TLS for the host
        route["metadata"]["annotations"] = {NGINX_CANARY: "true", NGINX_CANARY_WEIGHT: str(weight)}
        last.append(route)
    return [*first, *stable, *last]


def describe_canary(manifests: list[Manifest]) -> str | None:
    """One line on what the canary among ``manifests`` serves and the share it gets."""
    canary = next((m for m in manifests if CANARY_RECORD in _annotations(m)), None)
    if canary is None:
        return None
    record = json.loads(_annotations(canary)[CANARY_RECORD])
    pinned = f" (digest {str(record['sha256'])[:19]}...)" if record.get("sha256") else ""
    named = f" ('{record['ref']}' at deploy time)" if record.get("ref") else ""
    what = (
        f"{canary_name(record['stable'])} serves {record['model']}={record['version']}"
        f"{named}{pinned}"
    )
    route = next((m for m in manifests if NGINX_CANARY in _annotations(m)), None)
    if route is not None:
        host = route["spec"]["rules"][0]["host"]
        return (
            f"{what}: its Ingress sends it {record['weight']}% of the requests to {host}; "
            "the Service keeps the stable pods only"
        )
    stable = next(m for m in manifests if m["metadata"]["name"] == record["stable"])
    pods, total = canary["spec"]["replicas"], stable["spec"].get("replicas")
    if total is None:  # the HPA owns the stable count: the share is at its minimum
        return f"{what} on {pods} pod(s) beside the stable pods the HPA scales"
    share = pods * 100 / (pods + total)
    hint = "" if abs(share - record["weight"]) < 5 else "; more --replicas split closer"
    return (
        f"{what} on {pods} of {pods + total} pods: about {share:.0f}% of the Service's "
        f"requests (weight {record['weight']}%{hint})"
    )


def _annotations(manifest: Manifest) -> dict[str, str]:
    return (manifest.get("metadata") or {}).get("annotations") or {}


# -- promote and abort, from what the cluster holds -----------------------------------------------
@dataclass(frozen=True)
class LiveCanary:
    """A canary running in the cluster, as its Deployments' last applied manifests say."""

    namespace: str
    stable: Manifest  # the stable Deployment as last applied
    canary: Manifest  # the canary Deployment as last applied
    record: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.canary["metadata"]["name"])

    def promoted(self) -> Manifest:
        """The stable Deployment running the canary's pod template, at the full replica count."""
        out = self.restored()
        template = copy.deepcopy(self.canary["spec"]["template"])
        template["metadata"]["labels"] = copy.deepcopy(
            self.stable["spec"]["template"]["metadata"]["labels"]
        )
        out["spec"]["template"] = template
        return out

    def following(self) -> Manifest:
        """The stable Deployment as it was (still following its alias), at the full replica
        count, with its pods restarted: once the alias names the canary's version, the new
        pods load that version when they start, so the rollout ends with every stable pod on
        it (the old ones would only reach it at their next poll)."""
        out = self.restored()
        metadata = out["spec"]["template"].setdefault("metadata", {})
        annotations = metadata.setdefault("annotations", {})
        annotations[PROMOTED] = f"{self.record.get('model')}={self.record.get('version')}"
        return out

    @property
    def followed_alias(self) -> str | None:
        """The alias the stable pods follow for the canary's model (``HML_MODELS``), or None
        when they pin a version or follow ``latest`` (which no promotion can move)."""
        from ..models.aliases import is_alias_name

        try:
            refs = parse_models_env(_container_env(self.stable).get(MODELS_ENV) or "")
        except DeclarationError:  # not NAME=REF entries: nothing this promotion can move
            return None
        ref = refs.get(str(self.record.get("model")))
        if ref is None or ref == "latest" or not is_alias_name(ref):
            return None
        return ref

    def pods_root(self) -> str | None:
        """The bucket the stable pods read (their ``HML_ROOT``), when it can be opened from
        here: a bucket URL, or a directory that exists here (a node's ``--host-root``)."""
        from pathlib import Path

        root = _container_env(self.stable).get("HML_ROOT")
        if not root:
            return None
        if "://" in root and not root.startswith("file://"):
            return root
        path = root.removeprefix("file://")
        return path if Path(path).is_dir() else None

    def restored(self) -> Manifest:
        """The stable Deployment as before the canary: the full replica count."""
        out = copy.deepcopy(self.stable)
        if "replicas" in out["spec"] and self.record.get("replicas") is not None:
            out["spec"]["replicas"] = int(self.record["replicas"])
        return out

    def objects(self) -> list[tuple[str, str, str]]:
        """(apiVersion, kind, name) of the canary's objects, in the order to delete them: the
        Ingress first, so that no request is routed to pods about to go."""
        return [
            ("networking.k8s.io/v1", "Ingress", self.name),
            ("v1", "Service", self.name),
            ("apps/v1", "Deployment", self.name),
        ]

    def line(self) -> str:
        r = self.record
        return f"deployment/{self.name} (serving {r.get('model')}={r.get('version')})"


def _container_env(deployment: Manifest) -> dict[str, str]:
    """The plain ``value`` entries of the first container's env."""
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    first = (containers.get("containers") or [{}])[0]
    return {
        str(e["name"]): str(e["value"])
        for e in first.get("env") or []
        if isinstance(e, dict) and "name" in e and isinstance(e.get("value"), str)
    }


def find_canary(api: Any, namespace: str, stable: str) -> LiveCanary | None:
    """The canary beside Deployment ``stable``, or None when there is none."""
    from .apply import read_object

    name = canary_name(stable)
    live = read_object(api, "apps/v1", "Deployment", namespace, name)
    if live is None:
        return None
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(CANARY_RECORD)
    try:
        record = json.loads(text) if text else None
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise KubernetesError(
            f"deployment/{name} in namespace '{namespace}' has no {CANARY_RECORD} annotation: "
            "it was not made by `inference deploy --canary`; delete it by hand "
            f"(kubectl -n {namespace} delete deployment {name})"
        )
    stable_live = read_object(api, "apps/v1", "Deployment", namespace, stable)
    stable_last = _last_applied(stable_live, namespace, stable)
    return LiveCanary(namespace, stable_last, _last_applied(live, namespace, name), record)


def _last_applied(live: Manifest | None, namespace: str, name: str) -> Manifest:
    from .apply import LAST_APPLIED

    if live is None:
        raise KubernetesError(
            f"deployment/{name} does not exist in namespace '{namespace}': deploy the stable "
            "server with `inference deploy` first"
        )
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    try:
        manifest = json.loads(text) if text else None
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        raise KubernetesError(
            f"deployment/{name} in namespace '{namespace}' has no readable {LAST_APPLIED} "
            "annotation (it was not deployed by `inference deploy`): deploy it again with "
            "`inference deploy`, then retry"
        )
    return manifest
