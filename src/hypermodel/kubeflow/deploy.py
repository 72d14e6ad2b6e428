"""deploy-dev and deploy-prod: upload a compiled pipeline to Kubeflow and run or schedule it.

Both upload the pipeline (or a new version of it: an old pipeline is never deleted, so its
runs keep their spec). deploy-dev then starts one run now in a dev experiment; deploy-prod
creates the recurring run from the pipeline's cron (max concurrency 1) and removes any older
recurring run of the same name, so deploying twice leaves one schedule.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._lazy import require
from ..errors import HypermodelError, UsageError
from .compiler import compile_pipeline, service_account
from .cron import to_kfp_cron

if TYPE_CHECKING:
    from ..app import HmlApp
    from ..dsl.pipeline import Pipeline


#: Seconds per attempt of the health check (urllib3 makes up to 4 attempts).
CONNECT_TIMEOUT = 5.0


class KubeflowError(HypermodelError):
    """Kubeflow Pipelines could not be reached, or refused a request."""


@dataclass
class Target:
    """Where and as whom to deploy. The token is only ever handed to the client, never shown."""

    host: str | None
    namespace: str | None = None
    token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    ui_host: str | None = None

    @property
    def ui(self) -> str:
        return (self.ui_host or self.host or "").rstrip("/")


@dataclass
class Plan:
    """Everything a deploy sends, computed before any request (what --dry-run prints)."""

    pipeline_name: str
    version_name: str
    experiment: str
    run_name: str
    params: dict[str, Any]
    cron: str | None = None
    service_account: str | None = None
    description: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class DeployResult:
    pipeline_id: str = ""
    version_id: str = ""
    experiment_id: str = ""
    run_id: str = ""
    recurring_run_id: str = ""
    replaced: list[str] = field(default_factory=list)
    link: str = ""
    notes: list[str] = field(default_factory=list)


def kfp_pipeline_name(app: HmlApp, pipeline: Pipeline) -> str:
    """The pipeline's name in Kubeflow: app and pipeline, so two apps never collide."""
    return pipeline.name if pipeline.name == app.name else f"{app.name}-{pipeline.name}"


def make_plan(
    app: HmlApp,
    pipeline: Pipeline,
    yaml_text: str,
    *,
    prod: bool,
    params: dict[str, Any],
    experiment: str | None = None,
    cron: str | None = None,
    service_account_name: str | None = None,
) -> Plan:
    from ..dsl.params import resolve_params

    resolve_params(pipeline, params)  # unknown or mistyped parameters fail before any request
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256(yaml_text.encode()).hexdigest()[:8]
    base = experiment or pipeline.experiment or pipeline.name
    plan = Plan(
        pipeline_name=kfp_pipeline_name(app, pipeline),
        version_name=f"{pipeline.name}-{stamp}-{digest}",
        experiment=base if prod else f"{base}-dev",
        run_name=f"{pipeline.name}-prod" if prod else f"{pipeline.name}-dev-{stamp}",
        params=dict(params),
        service_account=service_account_name or service_account(app, pipeline),
        description=pipeline.description.splitlines()[0] if pipeline.description else "",
    )
    if prod:
        expr = cron or pipeline.cron
        if not expr:
            raise UsageError(
                f"pipeline '{pipeline.name}' has no schedule: declare @hml.pipeline(..., cron='0 0 2 * * *') "
                "or pass --cron"
            )
        plan.cron, note = to_kfp_cron(expr)
        if note:
            plan.notes.append(note)
    return plan


def describe(plan: Plan, target: Target, prod: bool) -> list[str]:
    """Human-readable lines of what a deploy would send (no secret in them)."""
    version_ref = {
        "pipeline_id": "<id of " + plan.pipeline_name + ">",
        "pipeline_version_id": "<id of version " + plan.version_name + ">",
    }
    body: dict[str, Any] = {
        "display_name": plan.run_name,
        "experiment_id": f"<id of experiment {plan.experiment}>",
        "pipeline_version_reference": version_ref,
        "runtime_config": {"parameters": plan.params},
    }
    if plan.service_account:
        body["service_account"] = plan.service_account
    if prod:
        body.update(
            trigger={"cron_schedule": {"cron": plan.cron}},
            max_concurrency=1,
            mode="ENABLE",
            no_catchup=True,
        )
    auth = (
        "token" if target.token else f"client id {target.client_id}" if target.client_id else "none"
    )
    lines = [
        f"dry run: nothing is sent to {target.host or '(no host given)'} (namespace {target.namespace or 'default'}, auth {auth})",
        f"pipeline: '{plan.pipeline_name}': uploaded if new, else a new version '{plan.version_name}' (old versions are kept)",
        f"experiment: '{plan.experiment}' (created if missing)",
    ]
    if prod:
        lines.append(
            f"recurring run: '{plan.run_name}' every '{plan.cron}', max concurrency 1; "
            "older recurring runs of that name are deleted once it exists"
        )
        lines.append("POST /apis/v2beta1/recurringruns " + json.dumps(body, sort_keys=True))
    else:
        lines.append(f"run: '{plan.run_name}' starts now")
        lines.append("POST /apis/v2beta1/runs " + json.dumps(body, sort_keys=True))
    return lines


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """kfp prints links and warns on every client; we report results ourselves."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


class _Kfp:
    """A kfp.Client whose failures become one-line KubeflowErrors naming the step and the fix."""

    def __init__(self, target: Target) -> None:
        if not target.host:
            raise UsageError(
                "no Kubeflow host: pass --host URL or set $HML_KFP_HOST "
                "(e.g. http://localhost:8080 after `kubectl port-forward svc/ml-pipeline-ui`)"
            )
        self.host = target.host
        kfp = require("kfp", "kubeflow", "Deploying to Kubeflow")
        self.server_api = require("kfp_server_api", "kubeflow", "Deploying to Kubeflow")

        class Client(kfp.Client):  # type: ignore[misc,name-defined]
            checked = False

            def _load_config(self, host: Any, client_id: Any, *args: Any) -> Any:
                # With a client id (and no token) kfp asks google-auth for an IAP ID token
                # here, before any request: its errors escape as tracebacks, and a token it
                # cannot get (user credentials) silently means no Authorization header.
                # With an OAuth app ($KF_PIPELINES_APP_OAUTH2_CLIENT_ID and _SECRET) kfp
                # signs a user in interactively: it prints a URL and may read the answer
                # from stdin. That must be seen, so stdout goes to stderr meanwhile.
                user_flow = bool(client_id and len(args) > 2 and args[1] and args[2])
                try:
                    if user_flow:
                        with contextlib.redirect_stdout(sys.stderr):
                            config = super()._load_config(host, client_id, *args)
                    else:
                        config = super()._load_config(host, client_id, *args)
                except EOFError:
                    raise _login_error(client_id) from None
                except Exception as exc:
                    if not client_id:
                        raise
                    raise _iap_error(client_id, exc) from None
                if client_id and not config.api_key.get("authorization"):
                    raise _iap_error(client_id, None)
                return config

            def get_kfp_healthz(self, sleep_duration: int = 0) -> Any:
                # One attempt with a timeout: kfp's own check retries for 25 s on an error
                # and waits forever on a host that accepts connections but never answers.
                self.checked = True
                # (connect, read): the generated client ignores a plain float
                timeout = (CONNECT_TIMEOUT, CONNECT_TIMEOUT)
                return self._healthz_api.healthz_service_get_healthz(_request_timeout=timeout)

        self.client = self.call(
            "connect",
            lambda: Client(
                host=target.host,
                namespace=target.namespace or "kubeflow",
                existing_token=target.token or None,
                client_id=target.client_id or None,
            ),
        )
        if not self.client.checked:  # the client skips its check when given a namespace
            self.call("connect", self.client.get_kfp_healthz)

    def call(self, step: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import urllib3

        try:
            with _quiet():
                return fn(*args, **kwargs)
        except self.server_api.ApiException as exc:
            raise KubeflowError(
                f"Kubeflow at {self.host} answered {exc.status} {exc.reason or ''} to '{step}': "
                f"{_server_message(exc.body)}; check the host, --namespace and your access"
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise KubeflowError(
                f"cannot reach Kubeflow at {self.host} ({type(reason).__name__}) during '{step}': check "
                "--host / $HML_KFP_HOST and that the endpoint is reachable (port-forward or ingress)"
            ) from exc
        except ValueError as exc:  # kfp's own checks (e.g. two pipelines with one name)
            raise KubeflowError(f"Kubeflow at {self.host}: '{step}' failed: {exc}") from exc


def _login_error(client_id: str) -> KubeflowError:
    return KubeflowError(
        f"signing in to the IAP client id '{client_id}' with the OAuth app in "
        "$KF_PIPELINES_APP_OAUTH2_CLIENT_ID asks for the URL the browser lands on, and stdin "
        "is closed: run the command once in a terminal (the login is saved for next time), or "
        "unset KF_PIPELINES_APP_OAUTH2_CLIENT_ID and use a service account key "
        "(GOOGLE_APPLICATION_CREDENTIALS) or --token / $HML_KFP_TOKEN"
    )


def _iap_error(client_id: str, exc: Exception | None) -> KubeflowError:
    """Why no IAP token for ``client_id`` came, in one line with the fix (never a token)."""
    if exc is None:
        why = (
            "the Google credentials found are not a service account's (user credentials from "
            "`gcloud auth application-default login` cannot mint one)"
        )
    else:
        detail = " ".join(str(exc).split()).rstrip(".")
        detail = (detail[:200] + "...") if len(detail) > 200 else detail
        why = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return KubeflowError(
        f"cannot get a Google IAP token for client id '{client_id}' (--client-id / "
        f"$HML_KFP_CLIENT_ID): {why}; set GOOGLE_APPLICATION_CREDENTIALS to a service account "
        "key file (or run where a service account is attached), or pass --token / "
        "$HML_KFP_TOKEN instead"
    )


def _server_message(body: Any) -> str:
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        parsed = json.loads(text)
        text = str(parsed.get("message") or parsed.get("error") or text)
    text = " ".join(text.split())
    return (text[:200] + "...") if len(text) > 200 else (text or "no message")


def _upload(k: _Kfp, plan: Plan, path: Path, result: DeployResult) -> None:
    client = k.client
    pipeline_id = k.call("find pipeline", client.get_pipeline_id, plan.pipeline_name)
    if pipeline_id is None:
        created = k.call(
            "upload pipeline",
            client.upload_pipeline,
            str(path),
            pipeline_name=plan.pipeline_name,
            description=plan.description or None,
        )
        pipeline_id = created.pipeline_id
        versions = k.call(
            "find the new version",
            client.list_pipeline_versions,
            pipeline_id,
            page_size=1,
            sort_by="created_at desc",
        )
        if not versions.pipeline_versions:
            raise KubeflowError(
                f"Kubeflow at {k.host} created pipeline '{plan.pipeline_name}' without a version"
            )
        version_id = versions.pipeline_versions[0].pipeline_version_id
    else:
        version = k.call(
            "upload pipeline version",
            client.upload_pipeline_version,
            str(path),
            pipeline_version_name=plan.version_name,
            pipeline_id=pipeline_id,
            description=plan.description or None,
        )
        version_id = version.pipeline_version_id
    result.pipeline_id, result.version_id = pipeline_id, version_id


def _experiment(k: _Kfp, plan: Plan, target: Target) -> str:
    experiment = k.call(
        "ensure experiment",
        k.client.create_experiment,
        name=plan.experiment,
        namespace=target.namespace or None,
    )
    return str(experiment.experiment_id)


def _existing_schedules(k: _Kfp, experiment_id: str, name: str) -> list[str]:
    flt = json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]}
    )
    found: list[str] = []
    token = ""
    while True:
        page = k.call(
            "list recurring runs",
            k.client.list_recurring_runs,
            page_token=token,
            page_size=100,
            experiment_id=experiment_id,
            filter=flt,
        )
        found += [r.recurring_run_id for r in (page.recurring_runs or []) if r.display_name == name]
        token = page.next_page_token or ""
        if not token:
            return found


@contextlib.contextmanager
def _compiled(app: HmlApp, pipeline: Pipeline) -> Iterator[tuple[Path, str, list[str]]]:
    with tempfile.TemporaryDirectory(prefix="hml-deploy-") as tmp:
        path = Path(tmp) / f"{pipeline.name}.yaml"
        compiled = compile_pipeline(app, pipeline.name, path)
        yield path, compiled.yaml, compiled.warnings


def deploy(
    app: HmlApp,
    pipeline: Pipeline,
    target: Target,
    *,
    prod: bool,
    params: dict[str, Any] | None = None,
    experiment: str | None = None,
    cron: str | None = None,
    service_account_name: str | None = None,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
    warn: Callable[[str], None] | None = None,
) -> DeployResult:
    """deploy-dev (``prod=False``) or deploy-prod (``prod=True``); see the module doc.

    ``warn`` receives each note (local root, cron conversion...) before any request is sent.
    """
    result = DeployResult()
    with _compiled(app, pipeline) as (path, text, compile_notes):
        plan = make_plan(
            app,
            pipeline,
            text,
            prod=prod,
            params=params or {},
            experiment=experiment,
            cron=cron,
            service_account_name=service_account_name,
        )
        result.notes = compile_notes + plan.notes
        if warn is not None:
            for note in result.notes:
                warn(note)
        if dry_run:
            for line in describe(plan, target, prod):
                echo(line)
            return result
        k = _Kfp(target)
        _upload(k, plan, path, result)
    result.experiment_id = _experiment(k, plan, target)
    common = dict(
        experiment_id=result.experiment_id,
        job_name=plan.run_name,
        params=plan.params,
        pipeline_id=result.pipeline_id,
        version_id=result.version_id,
        service_account=plan.service_account,
    )
    if not prod:
        run = k.call("start run", k.client.run_pipeline, **common)
        result.run_id = run.run_id
        result.link = f"{target.ui}/#/runs/details/{run.run_id}"
        return result
    old = _existing_schedules(k, result.experiment_id, plan.run_name)
    # Create the new schedule first: if that fails, the old one keeps running.
    created = k.call(
        "create recurring run",
        k.client.create_recurring_run,
        cron_expression=plan.cron,
        max_concurrency=1,
        enabled=True,
        no_catchup=True,
        description=plan.description or None,
        **common,
    )
    result.recurring_run_id = created.recurring_run_id
    for recurring_run_id in old:
        if recurring_run_id != result.recurring_run_id:
            k.call(
                f"delete old recurring run {recurring_run_id}",
                k.client.delete_recurring_run,
                recurring_run_id,
            )
            result.replaced.append(recurring_run_id)
    result.link = f"{target.ui}/#/recurringrun/details/{created.recurring_run_id}"
    return result
