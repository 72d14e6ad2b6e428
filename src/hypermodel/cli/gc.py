"""``hml gc``: remove the dataset versions nothing references (see ``hypermodel.data.gc``)."""

from __future__ import annotations

import shlex
from typing import Any

import click

from .datasets import human_bytes
from .output import echo_json, format_option


def gc_command() -> click.Command:
    @click.command("gc")
    @click.option(
        "--keep",
        type=click.IntRange(min=0),
        default=1,
        show_default=True,
        metavar="N",
        help="Versions kept per dataset, newest first, whatever references them.",
    )
    @click.option("--yes", is_flag=True, help="Remove them (without it: only say what would go).")
    @format_option
    @click.pass_context
    def gc(ctx: click.Context, keep: int, yes: bool, output_format: str) -> None:
        """Remove dataset versions nothing references; only says what would go unless --yes.

        Kept: the newest N versions of each dataset (--keep), every plain (unversioned)
        dataset, a version a published model references (its checksum, NAME@VERSION or
        directory in a models/*/*/reference.json), one the local runner may reuse (named in
        cache/<op>/*.json or pipelines/<p>/latest/*.json), one a project registry record points
        at, one used by a run that has not finished, and every dependency of a kept version.

        Also removes what interrupted writers left in published datasets (publish claims,
        staged chunks, temporary files idle for a minute), never a live writer's.
        """
        from ..data.gc import ListedOnce, plan_gc, remove, remove_leftovers
        from ..storage import open_storage

        root = (ctx.obj or {}).get("root", ".hml")
        storage = ListedOnce(open_storage(root))
        plan = plan_gc(storage, keep)
        if output_format == "json":
            if yes:
                remove(storage, plan.remove)
                remove_leftovers(storage, plan.leftovers)
            echo_json(_json(storage.url, keep, yes, plan))
            return
        if not plan.remove and not plan.leftovers:
            click.echo(
                f"nothing to remove in {storage.url}: {len(plan.kept)} version(s), all kept "
                f"(--keep {keep})"
            )
            return
        if not yes:
            for c in plan.remove:
                click.echo(f"would remove {c.info.ref}  {human_bytes(c.size)}")
            for info, files in plan.leftovers:
                click.echo(
                    f"would remove {len(files)} leftover file(s) of interrupted writers in "
                    f"{info.ref}  {human_bytes(sum(f.size for f in files))}: "
                    + ", ".join(f.name for f in files)
                )
            click.echo(
                f"would free {human_bytes(plan.bytes + plan.leftover_bytes)} in "
                f"{len(plan.remove)} version(s)"
                + (f" and {len(plan.leftovers)} dataset(s)' leftovers" if plan.leftovers else "")
                + f"; kept {len(plan.kept)} version(s) and every plain dataset"
            )
            command = ["hml", "--root", root, "gc", "--keep", str(keep), "--yes"]
            click.echo(f"to remove them: {shlex.join(command)}")
            return
        for c in remove(storage, plan.remove):
            click.echo(f"removed {c.info.ref}  {human_bytes(c.size)}")
        freed = plan.bytes
        for info, files in remove_leftovers(storage, plan.leftovers):
            size = sum(f.size for f in files)
            freed += size
            click.echo(
                f"removed {len(files)} leftover file(s) of interrupted writers in {info.ref}  "
                f"{human_bytes(size)}"
            )
        click.echo(f"freed {human_bytes(freed)} in {len(plan.remove)} version(s)")

    return gc


def _json(url: str, keep: int, removed: bool, plan: Any) -> dict[str, Any]:
    return {
        "root": url,
        "keep": keep,
        "removed": removed,
        "remove": [c.record() for c in plan.remove],
        "bytes": plan.bytes,
        "kept": [{**c.record(), "reason": why} for c, why in plan.kept],
        "leftovers": [
            {
                "id": info.ref,
                "directory": info.directory,
                "files": [f.name for f in files],
                "bytes": sum(f.size for f in files),
            }
            for info, files in plan.leftovers
        ],
    }
