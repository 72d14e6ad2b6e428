"""``<app> inference ...``: serve the app's models (run-dev, run-prod), list routes, deploy."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..app import HmlApp

_DEPLOY_MODULE = "hypermodel.cli.inference_deploy"


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _fail_fast() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--fail-fast",
        is_flag=True,
        envvar="HML_FAIL_FAST",
        help="Exit when an @hml.inference initialiser fails (e.g. no model published yet). "
        "By default the server stays up, /livez 200 and /readyz 503 with the reason, and "
        "retries the initialisers with backoff.",
    )


def _connection_limits() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """run-prod's --connection-limit and --channel-timeout (see serving/prod.py)."""
    from ..serving import prod

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option(
            "--channel-timeout",
            type=click.IntRange(1, 86400),
            default=prod.DEFAULT_CHANNEL_TIMEOUT,
            show_default=True,
            envvar="HML_CHANNEL_TIMEOUT",
            help="Close a connection idle this many seconds. Keep it above the idle timeout "
            "of the proxy or load balancer in front (nginx ingress, AWS ALB: 60 s).",
        )(fn)
        return click.option(
            "--connection-limit",
            type=click.IntRange(1, 1_000_000),
            default=prod.DEFAULT_CONNECTION_LIMIT,
            show_default=True,
            envvar="HML_CONNECTION_LIMIT",
            help="Open connections at most (idle ones included); more wait to be accepted.",
        )(fn)

    return decorate


def _model_options() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--model NAME=REF (repeatable), --model-poll-seconds and the drift thresholds."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option(
            "--drift-min-samples",
            type=click.IntRange(min=1),
            default=100,
            show_default=True,
            envvar="HML_DRIFT_MIN_SAMPLES",
            help="Live values a feature needs before its drift can be flagged.",
        )(fn)
        fn = click.option(
            "--drift-unseen-threshold",
            type=click.FloatRange(min=0, max=1, min_open=True),
            default=0.05,
            show_default=True,
            envvar="HML_DRIFT_UNSEEN_THRESHOLD",
            help="Flag drift when this share of a categorical feature's live values were never "
            "seen in training.",
        )(fn)
        fn = click.option(
            "--drift-threshold",
            type=click.FloatRange(min=0, min_open=True),
            default=3.0,
            show_default=True,
            envvar="HML_DRIFT_THRESHOLD",
            help="Flag drift when a feature's live mean is this many training standard "
            "deviations from its training mean (/, /metrics, one warning per crossing).",
        )(fn)
        fn = click.option(
            "--model-poll-seconds",
            type=click.FloatRange(min=0),
            default=30,
            show_default=True,
            envvar="HML_MODEL_POLL_SECONDS",
            help="How often a model loaded by 'latest' or an alias checks whether it moved, "
            "and switches to the new version (0: only on POST /-/reload).",
        )(fn)
        return click.option(
            "--model",
            "models",
            multiple=True,
            metavar="NAME=REF",
            envvar="HML_MODELS",
            help="Load model NAME at REF ('latest', a version, or an alias such as "
            "'production') instead of what the app's initialiser asks for; repeatable "
            "($HML_MODELS: space-separated).",
        )(fn)

    return decorate


def _configure(app: HmlApp, models: tuple[str, ...], **settings: Any) -> None:
    import os

    from ..errors import HypermodelError

    refs = {}
    for text in models:
        name, sep, ref = text.partition("=")
        if not sep or not name.strip() or not ref.strip():
            raise click.BadParameter(
                f"{text!r} is not NAME=REF: write e.g. --model "
                f"{name.strip() or 'wine-classifier'}=production",
                param_hint="--model",
            )
        refs[name.strip()] = ref.strip()
    try:
        app.inference.configure(
            models=refs,
            admin_token=os.environ.get("HML_ADMIN_TOKEN") or None,  # env only: argv is public
            **settings,
        )
    except HypermodelError as exc:
        raise click.UsageError(str(exc)) from exc


def inference_group(app: HmlApp) -> click.Group:
    group = click.Group(
        "inference", help=f"Serve {app.name}'s models and deploy the server.", no_args_is_help=True
    )

    @group.command("run-prod")
    @click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
    @click.option(
        "--port", type=int, default=app.inference_port, show_default=True, help="Port to listen on."
    )
    @click.option(
        "--threads",
        type=click.IntRange(1, 256),
        default=8,
        show_default=True,
        help="waitress worker threads.",
    )
    @click.option(
        "--drain-seconds",
        type=click.FloatRange(min=0),
        default=0,
        show_default=True,
        envvar="HML_DRAIN_SECONDS",
        help="On SIGTERM, keep serving this long (with /readyz 503) before "
        "stopping, so that no request routed to the pod in the meantime fails (the "
        "Deployment of `inference deploy` sets HML_DRAIN_SECONDS=5).",
    )
    @_connection_limits()
    @_model_options()
    @_fail_fast()
    def run_prod(
        host: str,
        port: int,
        threads: int,
        drain_seconds: float,
        fail_fast: bool,
        models: tuple[str, ...],
        model_poll_seconds: float,
        drift_threshold: float,
        drift_min_samples: int,
        drift_unseen_threshold: float,
        **limits: int,
    ) -> None:
        """Serve with waitress (production)."""
        from ..serving.server import serve_prod

        _configure(
            app,
            models,
            poll_seconds=model_poll_seconds,
            drift_threshold=drift_threshold,
            drift_min_samples=drift_min_samples,
            drift_unseen_threshold=drift_unseen_threshold,
        )
        _logging()
        serve_prod(
            app.inference,
            host,
            port,
            threads,
            fail_fast=fail_fast,
            drain_seconds=drain_seconds,
            **limits,  # connection_limit, channel_timeout
        )

    @group.command("run-dev")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option(
        "--port", type=int, default=app.inference_port, show_default=True, help="Port to listen on."
    )
    @click.option(
        "--reload/--no-reload", default=True, show_default=True, help="Restart when code changes."
    )
    @_model_options()
    @_fail_fast()
    def run_dev(
        host: str,
        port: int,
        reload: bool,
        fail_fast: bool,
        models: tuple[str, ...],
        model_poll_seconds: float,
        drift_threshold: float,
        drift_min_samples: int,
        drift_unseen_threshold: float,
    ) -> None:
        """Serve with Flask's development server (reloads on code changes)."""
        from ..serving.server import serve_dev

        _configure(
            app,
            models,
            poll_seconds=model_poll_seconds,
            drift_threshold=drift_threshold,
            drift_min_samples=drift_min_samples,
            drift_unseen_threshold=drift_unseen_threshold,
        )
        _logging()
        serve_dev(app.inference, host, port, reload, fail_fast=fail_fast)

    @group.command("routes")
    def routes() -> None:
        """List the server's routes (runs the initialisers, so models load)."""
        flask_app = app.inference.build()
        declared = {r.endpoint: r for r in app.inference.routes.values()}
        for rule in sorted(flask_app.url_map.iter_rules(), key=lambda r: r.rule):
            if rule.endpoint == "static":
                continue
            methods = ",".join(
                sorted(m for m in rule.methods or () if m not in ("HEAD", "OPTIONS"))
            )
            line = f"{methods:<8} {rule.rule:<24} {rule.endpoint}"
            route = declared.get(rule.endpoint)
            if route is not None:
                d = route.describe()
                line += f"  {d['input'] or '-'} -> {d['output'] or '-'}"
                if route.models:
                    line += f"  model={','.join(route.models)}"
            click.echo(line)

    @group.command("openapi")
    def openapi() -> None:
        """Print the OpenAPI document of the declared routes."""
        import json

        from ..serving.server import openapi_document

        app.inference.build()
        click.echo(json.dumps(openapi_document(app.inference), indent=2))

    # `deploy` and `promote` live in their own module (it needs the kubernetes client); omitted when absent.
    if importlib.util.find_spec(_DEPLOY_MODULE) is not None:
        deploy_module = importlib.import_module(_DEPLOY_MODULE)
        group.add_command(deploy_module.deploy_command(app))
        group.add_command(deploy_module.promote_command(app))
    return group
