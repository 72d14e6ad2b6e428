"""Kubeflow commands of a pipeline: compile, deploy-dev, deploy-prod. kfp is imported inside them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..app import HmlApp
    from ..dsl.pipeline import Pipeline


def add_kubeflow_commands(group: click.Group, app: HmlApp, pipeline: Pipeline) -> None:
    """``compile``, ``deploy-dev`` and ``deploy-prod`` for one pipeline."""
    group.add_command(_compile_command(app, pipeline))
    group.add_command(_deploy_command(app, pipeline, prod=False))
    group.add_command(_deploy_command(app, pipeline, prod=True))


def _warn(lines: list[str]) -> None:
    for line in lines:
        click.echo(f"warning: {line}", err=True)


_FORCE_HELP = "Compile from a git tree with uncommitted changes anyway."


def refuse_dirty(what: str, force: bool) -> None:
    """Compiling or deploying ships the commit's image with this tree's code digests: a tree
    with uncommitted changes would run other code than it says. Refused unless ``--force``."""
    from ..errors import UsageError
    from ..provenance import code_state

    state = code_state()
    if not state.get("dirty"):
        return
    if force:
        _warn([f"{what} from a git tree with uncommitted changes (--force)"])
        return
    raise UsageError(
        f"refusing to {what}: the git tree at {state.get('repo')} has uncommitted changes "
        f"({state.get('changed_files', 0)} file(s)), so the image built from commit "
        f"{state['commit'][:12]} would not run this code. Commit them, or pass --force"
    )


def _compile_command(app: HmlApp, pipeline: Pipeline) -> click.Command:
    def callback(output: Path, force: bool) -> None:
        from ..kubeflow.compiler import compile_pipeline

        refuse_dirty(f"compile '{pipeline.name}'", force)
        result = compile_pipeline(app, pipeline.name, output)
        _warn(result.warnings)
        click.echo(f"compiled pipeline '{pipeline.name}' ({len(pipeline.tasks)} ops) to {output}")

    return click.Command(
        "compile",
        callback=callback,
        params=[
            click.Option(
                ["--output", "-o"],
                type=click.Path(dir_okay=False, path_type=Path),
                default=Path(f"{pipeline.name}.yaml"),
                show_default=True,
                help="Where to write the Kubeflow Pipelines v2 YAML.",
            ),
            click.Option(["--force"], is_flag=True, help=_FORCE_HELP),
        ],
        help=f"Compile '{pipeline.name}' to Kubeflow Pipelines v2 YAML (one pod per op, in the app image).",
    )


def _parse_params(pipeline: Pipeline, pairs: tuple[str, ...]) -> dict[str, Any]:
    from ..dsl.types import parse_text
    from ..errors import UsageError

    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        param = pipeline.param(name.strip().replace("-", "_"))
        if not sep or param is None:
            known = ", ".join(p.name for p in pipeline.params) or "none"
            raise UsageError(
                f"--param {pair!r}: use NAME=VALUE with a parameter of '{pipeline.name}' ({known})"
            )
        values[param.name] = parse_text(
            text, param.type, f"pipeline '{pipeline.name}' parameter '{param.name}'"
        )
    return values


def _deploy_command(app: HmlApp, pipeline: Pipeline, prod: bool) -> click.Command:
    def callback(
        host: str | None,
        namespace: str | None,
        token: str | None,
        client_id: str | None,
        ui_host: str | None,
        experiment: str | None,
        param: tuple[str, ...],
        service_account: str | None,
        dry_run: bool,
        force: bool,
        cron: str | None = None,
    ) -> None:
        from ..kubeflow.deploy import Target, deploy

        refuse_dirty(f"deploy '{pipeline.name}'", force)
        target = Target(
            host=host or app.settings.kfp_host,
            namespace=namespace,
            token=token,
            client_id=client_id,
            ui_host=ui_host,
        )
        result = deploy(
            app,
            pipeline,
            target,
            prod=prod,
            params=_parse_params(pipeline, param),
            experiment=experiment,
            cron=cron,
            service_account_name=service_account,
            dry_run=dry_run,
            echo=click.echo,
            warn=lambda note: _warn([note]),
        )
        if dry_run:
            return
        click.echo(
            f"pipeline {result.pipeline_id}, version {result.version_id}, experiment {result.experiment_id}"
        )
        if prod:
            replaced = f" (replaced {', '.join(result.replaced)})" if result.replaced else ""
            click.echo(f"recurring run {result.recurring_run_id}{replaced}")
        else:
            click.echo(f"run {result.run_id}")
        click.echo(result.link)

    params: list[click.Parameter] = [
        click.Option(
            ["--host"],
            envvar="HML_KFP_HOST",
            metavar="URL",
            help="Kubeflow Pipelines API endpoint (env HML_KFP_HOST).",
        ),
        click.Option(
            ["--namespace"],
            envvar="HML_KFP_NAMESPACE",
            help="Profile namespace of a multi-user Kubeflow (env HML_KFP_NAMESPACE).",
        ),
        click.Option(
            ["--token"],
            envvar="HML_KFP_TOKEN",
            metavar="TOKEN",
            help="Bearer token; prefer the env var HML_KFP_TOKEN (never printed).",
        ),
        click.Option(
            ["--client-id"],
            envvar="HML_KFP_CLIENT_ID",
            help="OAuth client id of an IAP-protected Kubeflow (env HML_KFP_CLIENT_ID).",
        ),
        click.Option(
            ["--ui-host"],
            envvar="HML_KFP_UI_HOST",
            metavar="URL",
            help="Kubeflow UI address for the printed link (default: --host).",
        ),
        click.Option(
            ["--experiment"],
            help="Experiment name (default: the pipeline's experiment"
            + ("" if prod else ", with '-dev' appended")
            + ").",
        ),
        click.Option(
            ["--param", "-p"],
            multiple=True,
            metavar="NAME=VALUE",
            help="A pipeline parameter for the run(s); repeat for several.",
        ),
        click.Option(["--service-account"], help="Kubernetes service account of the run's pods."),
        click.Option(["--dry-run"], is_flag=True, help="Print what would be sent; send nothing."),
        click.Option(["--force"], is_flag=True, help=_FORCE_HELP.replace("Compile", "Deploy")),
    ]
    if prod:
        params.append(
            click.Option(
                ["--cron"], help="Override the pipeline's schedule (6 fields, seconds first)."
            )
        )
        help_text = (
            f"Upload a new version of '{pipeline.name}' and create or replace its recurring run "
            "(the pipeline's cron, max concurrency 1)."
        )
    else:
        help_text = f"Upload '{pipeline.name}' (or a new version) and start one run now in a dev experiment."
    return click.Command(
        "deploy-prod" if prod else "deploy-dev", callback=callback, params=params, help=help_text
    )
