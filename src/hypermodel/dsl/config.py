"""Container configuration declared once and applied where the container runs.

The same builder configures a Kubeflow op's pod and the inference server's Deployment. It holds
only names and references: a secret's value never passes through here, only the secret's name.

Each setting is a dataclass field whose metadata (:func:`setting`) says how two configs merge,
whether the local runner applies it (or reports it as "not applied locally"), and which
renderers honour it: the Kubeflow compiler (``kfp``) and the inference Deployment (``k8s``).
Merging, the local notes and the renderers' coverage are derived from it, so a new setting is
declared in one place.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import DeclarationError

if TYPE_CHECKING:
    from ..app import HmlApp, HmlPipelineApp
    from ..serving.app import HmlInferenceApp
    from ..settings import Settings


class SecretEnv(NamedTuple):
    env: str
    secret: str
    key: str


class SecretVolume(NamedTuple):
    secret: str
    mount_path: str


class Volume(NamedTuple):
    kind: str  # "empty_dir" | "pvc"
    name: str
    mount_path: str
    medium: str = ""
    size_limit: str = ""


# Names that hold the path of a file with the secret, not the secret itself.
_PATH_WORDS = frozenset({"file", "path", "dir", "directory", "location"})
_PATH_NAMES = frozenset({"GOOGLE_APPLICATION_CREDENTIALS"})


def check_env_name(name: Any) -> None:
    if not name or not str(name).replace("_", "a").isalnum():
        raise DeclarationError(f"env var name {name!r} is not valid: use letters, digits and '_'")


def check_not_secret(name: str, value: str) -> None:
    """Refuse a plain env var that carries a secret: it would be compiled in plain text into the
    KFP YAML and the Deployment manifest (and so into git and the cluster's API objects)."""
    from ..redact import is_secret_name, redact_text, words

    secret_name = (
        is_secret_name(name)
        and name not in _PATH_NAMES
        and (words(name) or [""])[-1] not in _PATH_WORDS  # PASSWORD_FILE: a path
    )
    if not secret_name and redact_text(value) == value:
        return
    why = "looks secret" if secret_name else "has a value holding a credential (a URL password)"
    raise DeclarationError(
        f"env var {name!r} {why}: with_env would write its value in plain text into the "
        "compiled pipeline YAML and the Deployment manifest. Keep the value in a Kubernetes "
        f"secret and use with_secret_env({name!r}, '<secret>', '<key>') instead (kubectl "
        f"create secret generic <secret> --from-literal=<key>=...); if {name} holds no "
        "secret, pass not_secret=True"
    )


# -- how a setting merges (``base.merged(other)``) ---------------------------------------------------
KEEP = "keep"  # base's value stays: the config's identity
REPLACE = "replace"  # other's value wins when it is set (not None)
UPDATE = "update"  # a mapping: other's keys are added, winning over base's
EXTEND = "extend"  # a list: other's items are appended
UNIQUE = "unique"  # a list: other's items are appended unless already there
FOLLOWS = "follows"  # taken from other together with the field it qualifies (``follows=``)
MERGES = (KEEP, REPLACE, UPDATE, EXTEND, UNIQUE, FOLLOWS)

# -- who honours a setting ------------------------------------------------------------------------
KFP = "kfp"  # the Kubeflow compiler (kubeflow/compiler.py)
K8S = "k8s"  # the inference server's Deployment (k8s/manifests.py)
RENDERERS = {KFP: "Kubeflow", K8S: "the inference Deployment"}

Note = Callable[[Any], list[str]]


def setting(
    *,
    merge: str = REPLACE,
    local: bool = False,
    renderers: tuple[str, ...],
    note: Note | None = None,
    follows: str | None = None,
) -> dict[str, Any]:
    """The metadata of a :class:`ContainerConfig` field: ``field(default=..., metadata=setting(...))``.

    ``local`` says the local runner applies it; otherwise ``note(value)`` describes it for the
    "not applied locally" report. ``renderers`` name who honours it on a cluster (``KFP``,
    ``K8S``)."""
    return {
        "merge": merge,
        "local": local,
        "renderers": tuple(renderers),
        "note": note,
        "follows": follows,
    }


def _scalar(label: str) -> Note:
    return lambda value: [f"{label}={value}"]


@dataclass(frozen=True)
class SettingField:
    """One container setting and its metadata (see :func:`setting`)."""

    name: str
    merge: str
    local: bool
    renderers: tuple[str, ...]
    note: Note | None
    follows: str | None
    default: Any

    def is_set(self, value: Any) -> bool:
        """Whether ``value`` says something: not None, not empty, not the default."""
        return value is not None and value != self.default and value not in ({}, [])

    def describe(self, value: Any) -> list[str]:
        return self.note(value) if self.note is not None else []


@dataclass
class ContainerConfig:
    """Chainable settings for a container: ``cfg.with_env(...).with_resources(...)``.

    Each field says in its metadata how two configs merge, whether the local runner applies
    it, and which renderers honour it (:func:`settings_fields`); ``merged``, ``cluster_only``
    and the renderers' coverage checks read that metadata instead of listing the fields.
    """

    # the op/task or deployment being configured (read-only for configurators)
    name: str | None = field(
        default=None, metadata=setting(merge=KEEP, local=True, renderers=(K8S,))
    )
    image: str | None = field(
        default=None, metadata=setting(merge=REPLACE, renderers=(KFP, K8S), note=_scalar("image"))
    )
    command: list[str] | None = field(
        default=None,
        metadata=setting(
            merge=REPLACE, renderers=(K8S,), note=lambda v: [f"command={' '.join(v)}"]
        ),
    )
    env: dict[str, str] = field(
        default_factory=dict, metadata=setting(merge=UPDATE, local=True, renderers=(KFP, K8S))
    )
    secret_env: list[SecretEnv] = field(
        default_factory=list,
        metadata=setting(
            merge=EXTEND,
            renderers=(KFP, K8S),
            note=lambda v: [f"secret {s.secret} as ${s.env}" for s in v],
        ),
    )
    secret_volumes: list[SecretVolume] = field(
        default_factory=list,
        metadata=setting(
            merge=EXTEND,
            renderers=(KFP, K8S),
            note=lambda v: [f"secret {s.secret} at {s.mount_path}" for s in v],
        ),
    )
    volumes: list[Volume] = field(
        default_factory=list,
        metadata=setting(
            merge=EXTEND,
            renderers=(KFP, K8S),
            note=lambda v: [f"{x.kind.replace('_', '-')} {x.name} at {x.mount_path}" for x in v],
        ),
    )
    cpu_request: str | None = field(
        default=None, metadata=setting(renderers=(KFP, K8S), note=_scalar("cpu"))
    )
    cpu_limit: str | None = field(
        default=None, metadata=setting(renderers=(KFP, K8S), note=_scalar("cpu limit"))
    )
    memory_request: str | None = field(
        default=None, metadata=setting(renderers=(KFP, K8S), note=_scalar("memory"))
    )
    memory_limit: str | None = field(
        default=None, metadata=setting(renderers=(KFP, K8S), note=_scalar("memory limit"))
    )
    gpu_limit: int | None = field(
        default=None, metadata=setting(renderers=(KFP, K8S), note=_scalar("gpu"))
    )
    # the vendor goes with the GPU count that names it: merged only with a count
    gpu_vendor: str = field(
        default="nvidia.com/gpu",
        metadata=setting(
            merge=FOLLOWS,
            follows="gpu_limit",
            renderers=(KFP, K8S),
            note=lambda v: [f"gpu vendor {v}"],
        ),
    )
    node_selector: dict[str, str] = field(
        default_factory=dict,
        metadata=setting(
            merge=UPDATE,
            renderers=(KFP, K8S),
            note=lambda v: [f"node selector {k}={x}" for k, x in v.items()],
        ),
    )
    tolerations: list[dict[str, Any]] = field(
        default_factory=list,
        metadata=setting(
            merge=EXTEND, renderers=(KFP, K8S), note=lambda v: [f"toleration {t['key']}" for t in v]
        ),
    )
    image_pull_secrets: list[str] = field(
        default_factory=list,
        metadata=setting(
            merge=UNIQUE, renderers=(KFP, K8S), note=lambda v: [f"image pull secret {s}" for s in v]
        ),
    )
    # Kubeflow sets it per run: the compiler collects it and deploy passes it on
    service_account: str | None = field(
        default=None, metadata=setting(renderers=(KFP, K8S), note=_scalar("service account"))
    )
    annotations: dict[str, str] = field(
        default_factory=dict,
        metadata=setting(
            merge=UPDATE, renderers=(KFP, K8S), note=lambda v: [f"annotation {k}" for k in v]
        ),
    )
    labels: dict[str, str] = field(
        default_factory=dict,
        metadata=setting(
            merge=UPDATE,
            renderers=(KFP, K8S),
            note=lambda v: [f"label {k}={x}" for k, x in v.items()],
        ),
    )

    # -- builders (each returns self so calls chain) -----------------------------------------
    def with_image(self, image: str) -> ContainerConfig:
        self.image = image
        return self

    def with_command(self, *command: str) -> ContainerConfig:
        self.command = list(command)
        return self

    def with_env(self, name: str, value: Any, *, not_secret: bool = False) -> ContainerConfig:
        """A plain env var: its value is written as it is into the compiled pipeline YAML and
        the Deployment manifest. A secret-looking name (``API_TOKEN``, ``DB_PASSWORD``...) or a
        value holding a URL password is refused: use :meth:`with_secret_env`. ``not_secret=True``
        says the name only looks secret (``TOKEN_LIMIT``)."""
        check_env_name(name)
        text = str(value)
        if not not_secret:
            check_not_secret(name, text)
        self.env[name] = text
        return self

    def with_secret_env(self, env: str, secret: str, key: str | None = None) -> ContainerConfig:
        """Expose one key of a Kubernetes secret as an env var (the value is never read here)."""
        check_env_name(env)
        self.secret_env.append(SecretEnv(env, secret, key or env))
        return self

    def with_secret(self, secret: str, mount_path: str) -> ContainerConfig:
        """Mount a Kubernetes secret as a volume at ``mount_path``."""
        self.secret_volumes.append(SecretVolume(secret, mount_path))
        return self

    def with_gcp_auth(
        self, secret: str = "user-gcp-sa", key_file: str = "user-gcp-sa.json"
    ) -> ContainerConfig:
        """Authenticate as a GCP service account whose key lives in a Kubernetes secret."""
        mount = f"/secret/gcp-credentials/{secret}"
        self.with_secret(secret, mount)
        self.env["GOOGLE_APPLICATION_CREDENTIALS"] = f"{mount}/{key_file}"
        return self

    def with_empty_dir(
        self, name: str, mount_path: str, medium: str = "", size_limit: str = ""
    ) -> ContainerConfig:
        self.volumes.append(Volume("empty_dir", name, mount_path, medium, size_limit))
        return self

    def with_pvc(self, claim: str, mount_path: str) -> ContainerConfig:
        self.volumes.append(Volume("pvc", claim, mount_path))
        return self

    def with_resources(
        self,
        cpu: str | None = None,
        memory: str | None = None,
        gpu: int | None = None,
        cpu_limit: str | None = None,
        memory_limit: str | None = None,
        gpu_vendor: str | None = None,
        *,
        limit_cpu: str | None = None,
        limit_memory: str | None = None,
        request_cpu: str | None = None,
        request_memory: str | None = None,
    ) -> ContainerConfig:
        """Requests (``cpu``, ``memory``) and limits; a GPU count is a limit."""
        self.cpu_request = request_cpu or cpu or self.cpu_request
        self.memory_request = request_memory or memory or self.memory_request
        self.cpu_limit = limit_cpu or cpu_limit or self.cpu_limit
        self.memory_limit = limit_memory or memory_limit or self.memory_limit
        if gpu is not None:
            self.gpu_limit = int(gpu)
        if gpu_vendor:
            self.gpu_vendor = gpu_vendor
        return self

    def with_node_selector(self, key: str, value: str) -> ContainerConfig:
        self.node_selector[key] = value
        return self

    def with_toleration(
        self, key: str, value: str = "", effect: str = "NoSchedule", operator: str = "Equal"
    ) -> ContainerConfig:
        self.tolerations.append(
            {"key": key, "value": value, "effect": effect, "operator": operator}
        )
        return self

    def with_image_pull_secret(self, name: str) -> ContainerConfig:
        self.image_pull_secrets.append(name)
        return self

    def with_service_account(self, name: str) -> ContainerConfig:
        self.service_account = name
        return self

    def with_annotation(self, key: str, value: str) -> ContainerConfig:
        self.annotations[key] = value
        return self

    def with_label(self, key: str, value: str) -> ContainerConfig:
        self.labels[key] = value
        return self

    # -- reading -----------------------------------------------------------------------------
    def copy(self) -> ContainerConfig:
        return copy.deepcopy(self)

    def merged(self, other: ContainerConfig) -> ContainerConfig:
        """A new config: ``self`` overridden/extended by ``other``, field by field as each
        setting's ``merge`` metadata says."""
        out = self.copy()
        for f in settings_fields():
            theirs = getattr(other, f.name)
            if f.merge == REPLACE and theirs is not None:
                setattr(out, f.name, copy.deepcopy(theirs))
            elif f.merge == FOLLOWS and getattr(other, f.follows or "") is not None:
                setattr(out, f.name, copy.deepcopy(theirs))
            elif f.merge == UPDATE:
                getattr(out, f.name).update(copy.deepcopy(theirs))
            elif f.merge == EXTEND:
                getattr(out, f.name).extend(copy.deepcopy(theirs))
            elif f.merge == UNIQUE:
                mine = getattr(out, f.name)
                mine.extend(x for x in copy.deepcopy(theirs) if x not in mine)
        return out

    def cluster_only(self) -> list[str]:
        """Settings the local runner cannot honour, described for the 'not applied locally' note."""
        notes: list[str] = []
        for f in settings_fields():
            if f.local or (f.follows and getattr(self, f.follows) is None):
                continue
            value = getattr(self, f.name)
            if f.is_set(value):
                notes += f.describe(value)
        return notes

    def not_rendered(self, renderer: str) -> list[str]:
        """The cluster settings given here that ``renderer`` does not honour, by field name."""
        return [
            f.name
            for f in settings_fields()
            if not f.local
            and renderer not in f.renderers
            and not (f.follows and getattr(self, f.follows) is None)
            and f.is_set(getattr(self, f.name))
        ]


@cache
def settings_fields() -> tuple[SettingField, ...]:
    """Every container setting of :class:`ContainerConfig` with its metadata, in field order."""
    out = []
    names = {f.name for f in fields(ContainerConfig)}
    for f in fields(ContainerConfig):
        meta = f.metadata
        fix = f"declare ContainerConfig.{f.name} with setting(merge=..., renderers=..., note=...)"
        if meta.get("merge") not in MERGES or not meta.get("renderers"):
            raise TypeError(f"container setting '{f.name}' lacks its metadata: {fix}")
        unknown = set(meta["renderers"]) - set(RENDERERS)
        if unknown:
            raise TypeError(
                f"container setting '{f.name}' names unknown renderers {sorted(unknown)} "
                f"(known: {', '.join(RENDERERS)})"
            )
        if not meta["local"] and meta.get("note") is None:
            raise TypeError(
                f"container setting '{f.name}' is not applied locally but has no note for "
                f"the 'not applied locally' report: {fix}"
            )
        if meta["merge"] == FOLLOWS and meta.get("follows") not in names:
            raise TypeError(f"container setting '{f.name}' follows no known field: {fix}")
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        out.append(
            SettingField(
                name=f.name,
                merge=meta["merge"],
                local=bool(meta["local"]),
                renderers=tuple(meta["renderers"]),
                note=meta.get("note"),
                follows=meta.get("follows"),
                default=default,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class AppSpec:
    """What the renderers (the Kubeflow compiler, the Kubernetes manifests) read of an app.

    Built once from the app by :meth:`of`; the renderers never see the ``HmlApp`` itself.
    """

    name: str
    entrypoint: str  # the package's console script, which every pod runs
    image_url: str | None  # the app's image as declared
    image: str | None  # what runs for it: the pushed build's registry digest, when known here
    image_note: str | None  # which build ``image`` pins (and whether the code moved on since)
    settings: Settings
    pipelines: HmlPipelineApp  # each task's container settings (app env, op, task, @deploy_op)
    inference: HmlInferenceApp  # the Deployment's settings (@deploy_inference)

    @classmethod
    def of(cls, app: HmlApp) -> AppSpec:
        from ..images import pinned_image

        image, note = pinned_image(app, app.image_url)
        return cls(
            name=app.name,
            entrypoint=app.package_entrypoint,
            image_url=app.image_url,
            image=image,
            image_note=note,
            settings=app.settings,
            pipelines=app.pipelines,
            inference=app.inference,
        )

    def run_image(self, image: str | None) -> tuple[str | None, str | None]:
        """(the image to run, a note or None): the app's own image by its pinned build, any
        other image as given."""
        if image and image == self.image_url:
            return self.image, self.image_note
        return image, None
