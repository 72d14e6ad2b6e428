"""A small app exercising every compiled feature. Ops live at module level so pods (and the
replay in the parity test) can import them: ``python -m tests.unit.kubeflow.apps``."""

from __future__ import annotations

from hypermodel import hml

SECRET_VALUE = "s3cr3t-value-never-in-yaml"


@hml.op(cache=True)
def make_items(count: int, label: str = "item") -> list:
    return [f"{label}-{i}" for i in range(count)]


@hml.op(retries=3, cpu="500m", memory="1Gi", cpu_limit="2", memory_limit="4Gi", gpu=1)
def score(items: list, weight: float, verbose: bool = False, options: dict | None = None) -> dict:
    opts = options or {}
    return {
        "n": len(items),
        "total": weight * len(items),
        "verbose": verbose,
        "options": opts,
        "kfp_task": hml.context().kfp_task_id,
    }


@hml.op()
def summarize(scored: dict, threshold: int = 1) -> float:
    return float(scored["total"]) + threshold


@hml.op()
def passed(value: float, strict: bool = True) -> bool:
    return value > 0 if strict else True


@hml.op()
def cleanup() -> str:
    return "clean"


def make_app(
    root: str | None = "gs://hml-test-bucket/kfp", image: str | None = "registry.example/app:1"
) -> hml.HmlApp:
    app = hml.HmlApp("kfpapp", image_url=image, package_entrypoint="kfpapp", root=root)
    app.with_env("APP_LEVEL", "on")

    @hml.pipeline(app.pipelines, cron="30 2 * * *", experiment="kfp-tests")
    def scoring(count: int = 3, weight: float = 1.5, strict: bool = True):
        """Score a few items."""
        items = make_items(count=count)
        scored = score(items=items, weight=weight, verbose=True, options={"mode": "fast"})
        scored.with_secret_env("DB_PASSWORD", "db-credentials", "password")
        scored.with_secret("model-keys", "/etc/keys")
        scored.with_gcp_auth("gcp-sa")
        scored.with_pvc("shared-claim", "/shared").with_empty_dir(
            "cache", "/cache", medium="Memory"
        )
        scored.with_node_selector("pool", "gpu").with_toleration("gpu", "true")
        scored.with_image_pull_secret("regcred").with_annotation("team", "ml").with_label(
            "tier", "batch"
        )
        total = summarize(scored=scored)
        ok = passed(value=total, strict=strict)
        cleanup().after(ok).set_retry(2)

    @hml.deploy_op(app.pipelines)
    def every_op(cfg: hml.ContainerConfig) -> hml.ContainerConfig:
        return cfg.with_env("CONFIGURED_BY", "deploy_op")

    return app


# The console script of this app when the parity test runs its compiled commands.
app = make_app(root=None)

if __name__ == "__main__":
    app.start()
