"""Each app's own console script: a fresh click group per app instance.

The ``pipelines``, ``inference`` and ``image`` groups are built only when a command needs them, so
``<app> --help`` costs no more than importing the app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..app import HmlApp


def _pipelines(app: HmlApp) -> click.Command:
    from .pipelines import pipelines_group

    return pipelines_group(app)


def _inference(app: HmlApp) -> click.Command:
    from .inference import inference_group

    return inference_group(app)


def _image(app: HmlApp) -> click.Command:
    from .image import image_group

    return image_group(app)


class AppGroup(click.Group):
    """A group whose subgroups are built on first use, once per group instance."""

    def __init__(self, app: HmlApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.lazy: dict[str, tuple[str, Callable[[HmlApp], click.Command]]] = {
            "image": (f"Build {app.name}'s container image with the local Docker.", _image),
            "inference": (f"Serve {app.name}'s models and deploy the server.", _inference),
            "pipelines": (f"The pipelines of {app.name}: run, compile, deploy.", _pipelines),
        }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            self.add_command(self.lazy[cmd_name][1](self.app), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, self.lazy[name][0]) for name in sorted(self.lazy) if name not in self.commands
        ]
        rows += [(name, cmd.get_short_help_str(60)) for name, cmd in sorted(self.commands.items())]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


def build_app_cli(app: HmlApp) -> click.Group:
    def root(root: str | None) -> None:
        if root:
            app.configure(root=root)
        click.get_current_context().obj = app  # what the app's own commands get from ctx.obj

    group = AppGroup(
        app,
        name=app.package_entrypoint,
        callback=root,
        help=f"{app.name}: pipelines, inference and its image (hypermodel app).",
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        params=[
            click.Option(
                ["--root"],
                default=None,
                metavar="URL",
                help="Bucket root for outputs, datasets and runs: a directory, gs://... or "
                "s3://... (default $HML_ROOT or ./.hml).",
            )
        ],
    )
    for name, command in app.commands.items():
        group.add_command(command, name)
    return group
