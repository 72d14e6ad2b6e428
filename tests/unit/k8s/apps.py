"""Small apps for the deploy tests (unit and integration)."""

from __future__ import annotations

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
