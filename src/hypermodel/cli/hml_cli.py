"""``hml``: project-level commands (datasets, gc, models, runs, artifacts, scaffolding).

Each command group lives in its own module and is imported only when that group is used, so
``hml --help`` and ``hml --version`` stay instant.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from .errors import run_cli

# command name -> (module, factory function, one-line help). A constant table.
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "datasets": (
        "hypermodel.cli.datasets",
        "datasets_group",
        "List, show, verify, remove datasets and their versions; lineage.",
    ),
    "gc": (
        "hypermodel.cli.gc",
        "gc_command",
        "Remove dataset versions nothing references.",
    ),
    "models": (
        "hypermodel.cli.models",
        "models_group",
        "List and show models; promote versions to aliases; roll back.",
    ),
    "runs": (
        "hypermodel.cli.runs",
        "runs_group",
        "List, show, compare tracked runs; HTML reports.",
    ),
    "artifacts": (
        "hypermodel.cli.artifacts",
        "artifacts_group",
        "Push and pull project-shared artifacts.",
    ),
    "new": (
        "hypermodel.cli.new",
        "new_group",
        "Generate a project, data models, tasks, pipelines, models.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self._available()])

    def _available(self) -> list[str]:
        return [
            name
            for name, (module, _, _) in SUBCOMMANDS.items()
            if importlib.util.find_spec(module) is not None
        ]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in SUBCOMMANDS:
            return found
        module, factory, _ = SUBCOMMANDS[cmd_name]
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError:
            return None
        command: click.Command = getattr(mod, factory)()
        return command

    def format_commands(self, ctx: click.Context, formatter: Any) -> None:
        rows = [(name, SUBCOMMANDS[name][2]) for name in self._available()]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hypermodel")
    except PackageNotFoundError:
        return "unknown"


def build_hml_cli() -> click.Group:
    @click.group(
        name="hml",
        cls=LazyGroup,
        help="hypermodel: project-level commands.",
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    @click.version_option(
        version=_version(), prog_name="hypermodel", message="%(prog)s %(version)s"
    )
    @click.option(
        "--root",
        envvar="HML_ROOT",
        default=".hml",
        show_default=True,
        metavar="URL",
        help="Bucket root: a directory, gs://bucket/prefix or s3://bucket/prefix.",
    )
    @click.pass_context
    def hml(ctx: click.Context, root: str) -> None:
        ctx.obj = {"root": root}

    return hml


def main() -> None:
    run_cli(build_hml_cli(), None, prog_name="hml")
