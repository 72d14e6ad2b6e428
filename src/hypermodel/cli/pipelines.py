"""``<app> pipelines ...``: list, show, run one op, run-all (and Kubeflow commands, added lazily)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..dsl.pipeline import PipelineParam, Task
from ..dsl.types import NO_DEFAULT, parse_text
from ..errors import UsageError
from .params import given, option_for

if TYPE_CHECKING:
    from ..app import HmlApp
    from ..dsl.pipeline import Pipeline


def pipelines_group(app: HmlApp) -> click.Group:
    group = click.Group(
        "pipelines",
        help=f"The pipelines of {app.name}: run them locally, compile and deploy them.",
        no_args_is_help=True,
    )
    for pipeline in app.pipelines:
        group.add_command(pipeline_group(app, pipeline))
    return group


def pipeline_group(app: HmlApp, pipeline: Pipeline) -> click.Group:
    summary = (
        pipeline.description.splitlines()[0]
        if pipeline.description
        else f"ops: {', '.join(pipeline.order())}"
    )
    group = click.Group(
        pipeline.name,
        help=pipeline.description or summary,
        short_help=summary,
        no_args_is_help=True,
    )
    group.add_command(run_group(app, pipeline))
    group.add_command(run_all_command(app, pipeline))
    group.add_command(show_command(pipeline))
    from .kubeflow import add_kubeflow_commands

    add_kubeflow_commands(group, app, pipeline)
    return group


def _arg_help(pipeline: Pipeline, task: Task, name: str, type_name: str) -> str:
    bound = task.arguments.get(name)
    if isinstance(bound, Task):
        return f"{type_name}; default: the stored output of op '{bound.name}'"
    if isinstance(bound, PipelineParam):
        default = "" if bound.default is NO_DEFAULT else f", default {bound.default!r}"
        return f"{type_name}; pipeline parameter '{bound.name}'{default}"
    if name in task.arguments:
        return f"{type_name}; default {bound!r} (set in the pipeline)"
    p = task.op.param(name)
    return (
        f"{type_name}; required"
        if p is not None and p.required
        else f"{type_name}; default {p.default!r}"
        if p
        else type_name
    )


def run_group(app: HmlApp, pipeline: Pipeline) -> click.Group:
    group = click.Group(
        "run",
        help=f"Run one op of '{pipeline.name}' in this process and store its output.",
        no_args_is_help=True,
    )
    for task in pipeline:
        group.add_command(run_op_command(app, pipeline, task))
    return group


def run_op_command(app: HmlApp, pipeline: Pipeline, task: Task) -> click.Command:
    params: list[click.Parameter] = [
        option_for(p, _arg_help(pipeline, task, p.name, p.type_name)) for p in task.op.params
    ]
    params += [
        click.Option(["--no-cache"], is_flag=True, help="Run even if a cached output matches."),
        click.Option(
            ["--force"],
            is_flag=True,
            help="Write datasets even from a repository with uncommitted changes.",
        ),
        click.Option(["--hml-run-id", "run_id"], default=None, hidden=True),
        click.Option(
            ["--hml-output-file", "output_file"],
            default=None,
            hidden=True,
            type=click.Path(dir_okay=False, path_type=Path),
        ),
        click.Option(["--hml-retries", "retries"], default=None, type=int, hidden=True),
        # Set by compiled Kubeflow components: the KFP task id, and NAME VALUE pairs for
        # arguments a placeholder cannot express as an option (bool switches).
        click.Option(["--hml-task-id", "kfp_task_id"], default=None, hidden=True),
        click.Option(["--hml-arg", "hml_args"], nargs=2, multiple=True, hidden=True),
        click.Option(["--hml-code", "compiled_code"], default=None, hidden=True),
    ]

    def callback(
        no_cache: bool,
        force: bool,
        run_id: str | None,
        output_file: Path | None,
        retries: int | None,
        kfp_task_id: str | None,
        hml_args: tuple[tuple[str, str], ...],
        compiled_code: str | None,
        **kwargs: Any,
    ) -> None:
        from ..local.runner import FAILED, run_single

        if compiled_code and not task.op.code_fingerprint.startswith(compiled_code):
            click.echo(
                f"warning: op '{task.name}': this image runs other code than the pipeline was "
                f"compiled from (compiled {compiled_code}, here "
                f"{task.op.code_fingerprint[: len(compiled_code)]}); rebuild and push the image, "
                "then deploy again, or cached results may not match the code",
                err=True,
            )

        values = given(kwargs, task.op.params)
        for name, text in hml_args:
            param = task.op.param(name)
            if param is None:
                raise UsageError(f"op '{task.name}' has no argument '{name}' (--hml-arg)")
            values[name] = parse_text(text, param.type, f"op '{task.name}' argument '{name}'")
        result = run_single(
            app,
            pipeline,
            task.name,
            values,
            run_id=run_id,
            cache=not no_cache,
            force=force,
            retries=retries,
            kfp_task_id=kfp_task_id,
            reporter=_AttemptLines(),
        )
        if result.notes:
            click.echo(
                f"note: op '{task.name}': not applied locally (applied on Kubeflow): "
                + ", ".join(result.notes),
                err=True,
            )
        if result.status == FAILED:
            click.echo(result.error.rstrip(), err=True)
            click.echo(
                f"error: op '{task.name}' failed after {result.attempts} attempt(s)", err=True
            )
            raise click.exceptions.Exit(1)
        if result.cache_hit:
            click.echo(
                f"op '{task.name}': cached output reused (pass --no-cache to run it)", err=True
            )
        if output_file is not None:
            write_output_file(output_file, result.output)
        click.echo(render(result.output))

    doc = task.op.description or f"Run op '{task.op.name}'."
    return click.Command(
        task.name,
        params=params,
        callback=callback,
        help=doc,
        short_help=doc.splitlines()[0] if doc else None,
    )


class _AttemptLines:
    """A single op's reporter: each failed attempt's one line on stderr as it happens."""

    def run_started(self, *args: Any) -> None:
        pass

    def task_changed(self, result: Any) -> None:
        pass

    def attempt_failed(self, result: Any, attempt: int, error: str, retry_in: float | None) -> None:
        from ..local.results import attempt_line

        click.echo(attempt_line(result, attempt, error, retry_in), err=True)

    def run_finished(self, result: Any) -> None:
        pass


def leaves(pipeline: Pipeline) -> list[str]:
    """Tasks nothing depends on: their outputs are the pipeline's results."""
    used = {d for t in pipeline for d in t.dependencies()}
    return [t.name for t in pipeline if t.name not in used]


def render(value: Any) -> str:
    if isinstance(value, str):
        return value
    import orjson

    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def write_output_file(path: Path, value: Any) -> None:
    """Kubeflow reads an output parameter from a file: raw text for strings, JSON otherwise."""
    import orjson

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value if isinstance(value, str) else orjson.dumps(value).decode())


def run_all_command(app: HmlApp, pipeline: Pipeline) -> click.Command:
    params: list[click.Parameter] = [
        option_for(
            p,
            f"{p.type_name}; pipeline parameter"
            + ("; required" if p.required else f" (default {p.default!r})"),
        )
        for p in pipeline.params
    ]
    params += [
        click.Option(
            ["--workers", "-w"],
            type=click.IntRange(min=0),
            default=None,
            help="Processes for independent ops (default: CPU count; 0 runs in this process).",
        ),
        click.Option(["--no-cache"], is_flag=True, help="Run cached ops anyway."),
        click.Option(
            ["--force"],
            is_flag=True,
            help="Write datasets even from a repository with uncommitted changes.",
        ),
        click.Option(["--quiet", "-q"], is_flag=True, help="No live progress, only the summary."),
        click.Option(
            ["--resume", "resume"],
            metavar="RUN_ID",
            default=None,
            help="Run again only what did not succeed in run RUN_ID, with its parameters; "
            "its succeeded ops keep their stored outputs.",
        ),
    ]

    def callback(
        workers: int | None,
        no_cache: bool,
        force: bool,
        quiet: bool,
        resume: str | None,
        **kwargs: Any,
    ) -> None:
        from ..local.progress import ConsoleReporter, print_summary
        from ..local.runner import RunCancelled, run_pipeline

        reporter = _AttemptLines() if quiet else ConsoleReporter()  # -q: failed attempts only
        try:
            result = run_pipeline(
                app,
                pipeline,
                given(kwargs, pipeline.params),
                workers=workers,
                cache=not no_cache,
                force=force,
                reporter=reporter,
                resume=resume,
            )
        except RunCancelled as exc:
            click.echo(str(exc), err=True)
            raise click.exceptions.Exit(exc.exit_code) from None
        print_summary(result)
        if quiet:  # the live reporter prints these up front; -q must not drop them
            for r in result.tasks.values():
                if r.notes:
                    click.echo(
                        f"note: op '{r.name}': not applied locally (applied on Kubeflow): "
                        + ", ".join(r.notes),
                        err=True,
                    )
        failed = result.failed
        if failed is not None:
            click.echo(f"\nop '{failed.name}' failed on attempt {failed.attempts}:", err=True)
            click.echo(failed.error.rstrip(), err=True)
            skipped = [n for n, r in result.tasks.items() if r.status == "skipped"]
            if skipped:
                click.echo(f"skipped because of it: {', '.join(skipped)}", err=True)
            click.echo(f"error: pipeline '{pipeline.name}' failed (run {result.run_id})", err=True)
            raise click.exceptions.Exit(1)
        for name in leaves(pipeline):
            click.echo(f"{name}: {render(result.tasks[name].output)}")
        click.echo(f"outputs: {app.settings.root}/runs/{result.run_id}/outputs/")

    return click.Command(
        "run-all",
        params=params,
        callback=callback,
        help=f"Run every op of '{pipeline.name}' in dependency order, independent ops in parallel.",
    )


def show_command(pipeline: Pipeline) -> click.Command:
    def callback() -> None:
        click.echo(
            f"pipeline {pipeline.name}" + (f" (cron {pipeline.cron})" if pipeline.cron else "")
        )
        for p in pipeline.params:
            click.echo(
                f"  param {p.name}: {p.type_name}" + ("" if p.required else f" = {p.default!r}")
            )
        for task in pipeline:
            deps = task.dependencies()
            extra = []
            if task.retries:
                extra.append(f"retries={task.retries}")
            if task.cache:
                extra.append("cache")
            click.echo(
                f"  {task.name}"
                + (f" <- {', '.join(deps)}" if deps else "")
                + (f" [{', '.join(extra)}]" if extra else "")
            )
        sys.stdout.flush()

    return click.Command(
        "show", callback=callback, help="Show the ops, their dependencies and the parameters."
    )
