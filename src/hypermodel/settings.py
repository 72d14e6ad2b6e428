"""Settings built once (from the environment and flags) and passed down; never read ad hoc."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Where an app keeps its state and how it talks to the outside world.

    ``root`` is the bucket URL: a local directory (default ``./.hml`` or ``$HML_ROOT``),
    ``file://...``, ``gs://bucket/prefix`` or ``s3://bucket/prefix``.
    """

    root: str = ".hml"
    workers: int = 0
    kfp_host: str | None = None
    kfp_namespace: str = "kubeflow"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        base = cls(
            root=env.get("HML_ROOT", ".hml"),
            workers=int(env.get("HML_WORKERS", "0") or 0),
            kfp_host=env.get("HML_KFP_HOST") or None,
            kfp_namespace=env.get("HML_KFP_NAMESPACE", "kubeflow"),
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **clean)  # type: ignore[arg-type]

    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")

    @property
    def local_root(self) -> Path:
        """The root as a local path (only meaningful when ``is_local``)."""
        return Path(self.root.removeprefix("file://")).absolute()
