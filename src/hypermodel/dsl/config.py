"""Container configuration declared once and applied where the container runs.

The same builder configures a Kubeflow op's pod and the inference server's Deployment. It holds
only names and references: a secret's value never passes through here, only the secret's name.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import DeclarationError


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


@dataclass
class ContainerConfig:
    """Chainable settings for a container: ``cfg.with_env(...).with_resources(...)``."""

    name: str | None = (
        None  # the op/task or deployment being configured (read-only for configurators)
    )
    image: str | None = None
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    secret_env: list[SecretEnv] = field(default_factory=list)
    secret_volumes: list[SecretVolume] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    cpu_request: str | None = None
    cpu_limit: str | None = None
    memory_request: str | None = None
    memory_limit: str | None = None
    gpu_limit: int | None = None
    gpu_vendor: str = "nvidia.com/gpu"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    image_pull_secrets: list[str] = field(default_factory=list)
    service_account: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

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
        """A new config: ``self`` overridden/extended by ``other``."""
        out = self.copy()
        for name in (
            "image",
            "command",
            "cpu_request",
            "cpu_limit",
            "memory_request",
            "memory_limit",
            "gpu_limit",
            "service_account",
        ):
            value = getattr(other, name)
            if value is not None:
                setattr(out, name, copy.deepcopy(value))
        if other.gpu_limit is not None:  # the vendor goes with the GPU count that names it
            out.gpu_vendor = other.gpu_vendor
        out.env.update(other.env)
        out.node_selector.update(other.node_selector)
        out.annotations.update(other.annotations)
        out.labels.update(other.labels)
        out.secret_env += other.secret_env
        out.secret_volumes += other.secret_volumes
        out.volumes += other.volumes
        out.tolerations += copy.deepcopy(other.tolerations)
        out.image_pull_secrets += [
            s for s in other.image_pull_secrets if s not in out.image_pull_secrets
        ]
        return out

    def cluster_only(self) -> list[str]:
        """Settings the local runner cannot honour, described for the 'not applied locally' note."""
        notes = []
        for label, value in (
            ("cpu", self.cpu_request),
            ("cpu limit", self.cpu_limit),
            ("memory", self.memory_request),
            ("memory limit", self.memory_limit),
            ("gpu", self.gpu_limit),
            ("image", self.image),
            ("service account", self.service_account),
        ):
            if value is not None:
                notes.append(f"{label}={value}")
        notes += [f"secret {s.secret} as ${s.env}" for s in self.secret_env]
        notes += [f"secret {s.secret} at {s.mount_path}" for s in self.secret_volumes]
        notes += [f"{v.kind.replace('_', '-')} {v.name} at {v.mount_path}" for v in self.volumes]
        notes += [f"node selector {k}={v}" for k, v in self.node_selector.items()]
        notes += [f"toleration {t['key']}" for t in self.tolerations]
        notes += [f"image pull secret {s}" for s in self.image_pull_secrets]
        return notes
