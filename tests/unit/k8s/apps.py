"""Small apps for the deploy tests (unit and integration)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hypermodel import hml


def make_app(
    name: str = "shop",
    image: str | None = "registry.example.com/shop:1.0",
    *,
    env: dict[str, str] | None = None,
    configure: Any = None,
    **kwargs: Any,
) -> hml.HmlApp:
    """An app with a secret, a GCP key, an emptyDir and resources, plus ``configure(deployment)``."""
    app = hml.HmlApp(name, image_url=image, inference_port=8080, **kwargs)
    for key, value in (env or {"MODEL_NAME": "wine", "LOG_LEVEL": "info"}).items():
        app.with_env(key, value)

    @hml.deploy_inference(app.inference)
    def base(deployment: Any) -> Any:
        return (
            deployment.with_secret_env("DB_PASSWORD", "shop-db", "password")
            .with_gcp_auth("shop-sa")
            .with_empty_dir("scratch", "/scratch")
            .with_resources(cpu="100m", memory="128Mi", limit_memory="256Mi")
        )

    if configure is not None:
        hml.deploy_inference(app.inference)(configure)
    return app


def publish(root: Path, model: str, version: str) -> str:
    """A model version's reference.json in a bucket directory; returns its digest."""
    digest = hashlib.sha256(f"{model}/{version}".encode()).hexdigest()
    folder = root / "models" / model / version
    folder.mkdir(parents=True)
    reference = {
        "name": model,
        "version": version,
        "long_name": f"{model}_{version}",
        "created": "2026-12-06T00:00:00Z",
        "model_sha256": digest,
        "distributions_sha256": "0" * 64,
    }
    (folder / "reference.json").write_text(json.dumps(reference))
    return digest


def point_latest(root: Path, model: str, version: str) -> None:
    """Make ``version`` the model's ``latest`` (models/<model>/latest.json), as publishing does."""
    pointer = {"reference": f"models/{model}/{version}/reference.json", "version": version}
    (root / "models" / model / "latest.json").write_text(json.dumps(pointer))


def set_alias(root: Path, model: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version`` through the model store, as `hml models promote` does."""
    from hypermodel.models.store import ModelStore
    from hypermodel.storage import open_storage

    ModelStore(open_storage(str(root))).set_alias(model, alias, version)
