"""``<app> image build|show``: the app's container image, built with the local Docker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..app import HmlApp


def _build_args(pairs: tuple[str, ...]) -> dict[str, str]:
    from ..errors import UsageError

    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--build-arg {pair!r}: use NAME=VALUE")
        values[name] = value
    return values


def image_group(app: HmlApp) -> click.Group:
    @click.group("image", help=f"Build {app.name}'s container image with the local Docker.")
    def image() -> None:
        pass

    @image.command("build")
    @click.option(
        "--tag",
        "-t",
        default=None,
        metavar="IMAGE",
        help=f"Image name and tag (default: the app's image_url, '{app.image_url}').",
    )
    @click.option("--push", is_flag=True, help="Also push it and record the registry's digest.")
    @click.option(
        "--base-image",
        default=None,
        metavar="IMAGE",
        help="The Dockerfile's BASE_IMAGE (its default: python:3.11-slim).",
    )
    @click.option(
        "--dockerfile",
        "-f",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The Dockerfile (default: CONTEXT/Dockerfile).",
    )
    @click.option(
        "--context",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="The build context: a git work tree (its HEAD commit goes into the image).",
    )
    @click.option(
        "--network",
        default="host",
        show_default=True,
        help="Network of the build's RUN steps ('default' for Docker's own).",
    )
    @click.option(
        "--build-arg",
        "build_arg",
        multiple=True,
        metavar="NAME=VALUE",
        help="Another build argument (e.g. TRAIN=1); repeatable.",
    )
    @click.option(
        "--force",
        is_flag=True,
        help="Build even from a work tree with uncommitted changes (recorded as dirty).",
    )
    def build(
        tag: str | None,
        push: bool,
        base_image: str | None,
        dockerfile: Path | None,
        context: Path,
        network: str,
        build_arg: tuple[str, ...],
        force: bool,
    ) -> None:
        """Build the image (docker build, honouring DOCKER_HOST) with the commit baked in.

        The build log goes to stderr. The image id, commit and hypermodel version (and the
        registry digest with --push) are recorded in the app's root as images/<app>.json.
        """
        from ..images import BuildOptions, build_image, record_key

        options = BuildOptions(
            tag=tag,
            context=context,
            dockerfile=dockerfile,
            base_image=base_image,
            network=None if network == "default" else network,
            build_args=_build_args(build_arg),
            push=push,
            force=force,
        )
        record = build_image(app, options, log=lambda line: click.echo(line, err=True))
        click.echo(
            f"built {record['tag']} ({record['image_id']}) from commit {record['commit'][:12]}"
            f"{' (dirty)' if record.get('dirty') else ''} in {record['build_seconds']}s"
        )
        if record.get("repo_digest"):
            click.echo(f"pushed {record['repo_digest']}")
        click.echo(f"recorded in {app.settings.root}/{record_key(app.name)}")

    @image.command("show")
    def show() -> None:
        """Print the record of the last build (images/<app>.json in the app's root)."""
        from ..errors import NotFoundError
        from ..images import built_image, record_key

        record = built_image(app)
        if record is None:
            raise NotFoundError(
                f"no image of {app.name} recorded at {app.settings.root}/{record_key(app.name)}: "
                f"run `{app.package_entrypoint} image build` first"
            )
        click.echo(json.dumps(record, indent=2))

    return image
