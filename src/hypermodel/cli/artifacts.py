"""``hml artifacts``: push, pull and list project-shared artifacts in the bucket."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click


def _storage(ctx: click.Context) -> Any:
    from ..storage import open_storage

    return open_storage((ctx.obj or {}).get("root", ".hml"))


def artifacts_group() -> click.Group:
    group = click.Group(
        "artifacts", help="Push and pull project-shared artifacts.", no_args_is_help=True
    )
    project_option = click.option(
        "--project",
        default=lambda: os.environ.get("HML_PROJECT", "default"),
        show_default="$HML_PROJECT or 'default'",
        help="The project (an app's name) the artifact belongs to.",
    )

    @group.command("push")
    @click.argument("path", type=click.Path(exists=True, path_type=Path))
    @click.option(
        "--name",
        default=None,
        help="Name in the project (default: the file name; a directory becomes NAME.zip).",
    )
    @project_option
    @click.pass_context
    def push(ctx: click.Context, path: Path, name: str | None, project: str) -> None:
        """Upload FILE (or a directory, zipped) as a shared artifact; same name overwrites."""
        from ..tracking.registry import push_shared

        stored = push_shared(_storage(ctx), project, path, name)
        click.echo(f"pushed {path} as '{stored}' to project '{project}'")

    @group.command("pull")
    @click.argument("name")
    @click.option(
        "-o",
        "--output",
        "output",
        type=click.Path(path_type=Path),
        default=None,
        help="Where to write it (a file, or an existing directory). Default: ./NAME",
    )
    @project_option
    @click.pass_context
    def pull(ctx: click.Context, name: str, output: Path | None, project: str) -> None:
        """Download the shared artifact NAME."""
        from ..tracking.registry import pull_shared

        target = pull_shared(_storage(ctx), project, name, output)
        click.echo(f"pulled '{name}' to {target}")

    @group.command("list")
    @project_option
    @click.pass_context
    def list_cmd(ctx: click.Context, project: str) -> None:
        """Shared artifacts of the project with their sizes."""
        from ..tracking.registry import list_shared

        found = list_shared(_storage(ctx), project)
        if not found:
            click.echo(f"project '{project}' has no shared artifacts")
            return
        width = max(len(n) for n, _ in found)
        for name, size in found:
            click.echo(f"{name.ljust(width)}  {size:,} B")

    return group
