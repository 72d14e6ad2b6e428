"""Each app's own console script: a fresh click group per app instance."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .pipelines import pipelines_group

if TYPE_CHECKING:
    from ..app import HmlApp


def build_app_cli(app: HmlApp) -> click.Group:
    @click.group(
        name=app.package_entrypoint,
        help=f"{app.name}: pipelines and inference (hypermodel app).",
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    @click.option(
        "--root",
        default=None,
        metavar="URL",
        help="Bucket root for outputs, datasets and runs: a directory, gs://... or s3://... "
        "(default $HML_ROOT or ./.hml).",
    )
    def root(root: str | None) -> None:
        if root:
            app.configure(root=root)

    root.add_command(pipelines_group(app))
    from .inference import inference_group

    root.add_command(inference_group(app))
    return root
