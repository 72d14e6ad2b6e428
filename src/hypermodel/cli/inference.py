"""``<app> inference ...``: serve the app's models and deploy the server (filled in by serving)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..app import HmlApp


def inference_group(app: HmlApp) -> click.Group:
    return click.Group("inference", help=f"Serve {app.name}'s models and deploy the server.", no_args_is_help=True)
