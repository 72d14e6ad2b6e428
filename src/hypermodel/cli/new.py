"""``hml new ...``: generate a project and its pieces (data models, tasks, pipelines, models).

Every command writes new files only (an existing file is an error naming it) and each piece
comes with a test; ``--dry-run`` prints the files instead of writing them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import click

from ..scaffold.project import Plan, ProjectLayout


def _dry_run(fn: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--dry-run",
        "--dryrun",  # Hypergol's spelling
        "dry_run",
        is_flag=True,
        help="Print the files that would be written; write nothing.",
    )(fn)


def _project(fn: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--project",
        "project_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="The project directory (default: found from the working directory upwards).",
    )(fn)


def _layout(project_dir: Path | None) -> ProjectLayout:
    from ..scaffold.project import find_project

    return find_project(project_dir)


def _finish(
    plan: Plan, dry_run: bool, next_steps: str = "", layout: ProjectLayout | None = None
) -> None:
    if dry_run:
        click.echo(plan.render())
        return
    if layout is None:
        plan.write()
    else:  # a piece of an existing project: the app must still import afterwards
        from ..scaffold.project import write_checked

        write_checked(plan, layout)
    for path in plan.relative_paths():
        click.echo(f"created {path}")
    if next_steps:
        click.echo(next_steps)


def new_group() -> click.Group:
    @click.group(name="new", help="Generate a project, data models, tasks, pipelines, models.")
    def new() -> None:
        pass

    @new.command("project")
    @click.argument("name")
    @click.option(
        "--directory",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="Where the project directory (snake_case of NAME) is created.",
    )
    @click.option(
        "--hypermodel-spec",
        default=None,
        metavar="SPEC",
        help="The project's hypermodel requirement: a pip spec or a local checkout "
        "(default: $HML_SOURCE, else 'hypermodel').",
    )
    @_dry_run
    def project(name: str, directory: Path, hypermodel_spec: str | None, dry_run: bool) -> None:
        """A complete app package NAME (CamelCase -> snake_case directory) whose tests pass."""
        from ..scaffold.generators import project_plan

        plan = project_plan(name, directory, hypermodel_spec)
        _finish(
            plan,
            dry_run,
            f"next: cd {plan.root} && make test   (then: make demo)",
        )

    @new.command("data-model")
    @click.argument("class_name", metavar="CLASS")
    @click.argument("fields", nargs=-1, metavar="FIELD:TYPE[:id]...")
    @_project
    @_dry_run
    def data_model(
        class_name: str, fields: tuple[str, ...], project_dir: Path | None, dry_run: bool
    ) -> None:
        """A data model CLASS and its round-trip test.

        FIELD:TYPE[:id] with TYPE one of int, float, str, bool, dict, datetime, date, time, a
        data model class of the project, or "List[TYPE]"; ':id' marks id fields (int, str).
        """
        from ..scaffold.fields import check_class_name, parse_fields
        from ..scaffold.generators import data_model_plan

        check_class_name(class_name)  # bad arguments first, wherever the command runs
        parse_fields(list(fields))
        layout = _layout(project_dir)
        _finish(data_model_plan(layout, class_name, list(fields)), dry_run, layout=layout)

    @new.command("task")
    @click.argument("name")
    @click.argument("output_class", metavar="OUTPUT_CLASS")
    @click.option("--input", "inputs", multiple=True, metavar="CLASS", help="An input class.")
    @click.option("--source", "kind", flag_value="source", help="Make objects from any iterable.")
    @click.option(
        "--one-to-one",
        "--simple",  # Hypergol's SimpleTask
        "kind",
        flag_value="one_to_one",
        help="One output per input object, same id (Hypergol's SimpleTask; alias --simple).",
    )
    @click.option(
        "--one-to-many",
        "--task",  # Hypergol's Task
        "kind",
        flag_value="one_to_many",
        default=True,
        help="Any number of outputs per input, any ids (Hypergol's Task; the default, as in "
        "Hypergol's create_task).",
    )
    @_project
    @_dry_run
    def task(
        name: str,
        output_class: str,
        inputs: tuple[str, ...],
        kind: str,
        project_dir: Path | None,
        dry_run: bool,
    ) -> None:
        """A task NAME writing OUTPUT_CLASS objects, and its test."""
        from ..scaffold.tasks import task_plan

        layout = _layout(project_dir)
        plan = task_plan(layout, name, output_class, kind, list(inputs))
        _finish(plan, dry_run, layout=layout)

    @new.command("pipeline")
    @click.argument("name")
    @click.argument("parts", nargs=-1, required=True, metavar="TASK... CLASS...")
    @_project
    @_dry_run
    def pipeline(
        name: str, parts: tuple[str, ...], project_dir: Path | None, dry_run: bool
    ) -> None:
        """A pipeline NAME running the TASKs in order over datasets of the CLASSes, and its test."""
        from ..scaffold.tasks import pipeline_plan

        layout = _layout(project_dir)
        _finish(pipeline_plan(layout, name, list(parts)), dry_run, layout=layout)

    @new.command("model")
    @click.argument("name")
    @click.argument("input_class", metavar="INPUT_CLASS")
    @click.argument("output_class", metavar="OUTPUT_CLASS")
    @click.option("--block", "blocks", multiple=True, metavar="NAME", help="A model block.")
    @_project
    @_dry_run
    def model(
        name: str,
        input_class: str,
        output_class: str,
        blocks: tuple[str, ...],
        project_dir: Path | None,
        dry_run: bool,
    ) -> None:
        """A TensorFlow model NAME (model, blocks, batch processor, training op) and its test."""
        from ..scaffold.model import model_plan

        layout = _layout(project_dir)
        plan = model_plan(layout, name, input_class, output_class, list(blocks))
        _finish(plan, dry_run, "the model needs TensorFlow: pip install 'hypermodel[tf]'", layout)

    @new.command("model-block")
    @click.argument("name")
    @_project
    @_dry_run
    def model_block(name: str, project_dir: Path | None, dry_run: bool) -> None:
        """A TensorFlow model block NAME in models/blocks/ (Hypergol's create_model_block)."""
        from ..scaffold.model import model_block_plan

        layout = _layout(project_dir)
        _finish(model_block_plan(layout, name), dry_run, layout=layout)

    @click.command("create_model", hidden=True)
    @click.argument("name")
    @click.argument("classes", nargs=-1, required=True, metavar="CLASS... [BLOCK...]")
    @click.option("--block", "blocks", multiple=True, metavar="NAME", help="A model block.")
    @_project
    @_dry_run
    def create_model(
        name: str,
        classes: tuple[str, ...],
        blocks: tuple[str, ...],
        project_dir: Path | None,
        dry_run: bool,
    ) -> None:
        """Hypergol's ``create_model NAME TRAINING EVALUATION INPUT OUTPUT [BLOCK...]`` (or
        ``NAME INPUT OUTPUT`` as ``hml new model``).

        In Hypergol's form the model trains on TRAINING objects and writes OUTPUT objects;
        EVALUATION and INPUT must be data models of the project (the batch processor
        generated here converts TRAINING and OUTPUT objects only).
        """
        from ..scaffold.model import model_plan
        from ..scaffold.project import require_models

        layout = _layout(project_dir)
        if len(classes) == 2:
            input_class, output_class = classes
        elif len(classes) >= 4:
            training, evaluation, inputs, output_class = classes[:4]
            require_models(layout, sorted({evaluation, inputs}), f"model {name}")
            input_class = training
            blocks = (*blocks, *classes[4:])
        else:
            raise click.UsageError(
                "give NAME INPUT_CLASS OUTPUT_CLASS, or Hypergol's NAME TRAINING_CLASS "
                "EVALUATION_CLASS INPUT_CLASS OUTPUT_CLASS [BLOCK...]"
            )
        plan = model_plan(layout, name, input_class, output_class, list(blocks))
        _finish(plan, dry_run, "the model needs TensorFlow: pip install 'hypermodel[tf]'", layout)

    new.add_command(create_model, "create_model")
    new.add_command(create_model, "create-model")

    # Hypergol's command names (`python -m hypergol.cli.create_task ...`), hidden aliases
    for alias, command in {
        "create_project": "project",
        "create_data_model": "data-model",
        "create_task": "task",
        "create_pipeline": "pipeline",
        "create_model_block": "model-block",
    }.items():
        twin = copy.copy(new.commands[command])
        twin.hidden = True
        new.add_command(twin, alias)
        new.add_command(twin, alias.replace("_", "-"))

    return new


if __name__ == "__main__":  # `python -m hypermodel.cli.new create_project MyProject`
    new_group()(prog_name="python -m hypermodel.cli.new")
