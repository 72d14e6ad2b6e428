"""``hml datasets``: list, show, verify datasets and draw their lineage."""

from __future__ import annotations

from typing import Any

import click


def _storage(ctx: click.Context) -> Any:
    from ..storage import open_storage

    return open_storage((ctx.obj or {}).get("root", ".hml"))


def _dataset(storage: Any, info: Any) -> Any:
    """A Dataset over a found one, typed by a stand-in class of the recorded type name (the
    CLI checks and counts; it never needs the user's class)."""
    from ..data.dataset import Dataset
    from ..data.model import BaseData

    stand_in = type(info.dataType, (BaseData,), {})
    return Dataset(
        stand_in,
        storage=storage,
        project=info.project,
        branch=info.branch,
        name=info.name,
        chunkCount=info.chunkCount,
    )


def _short(checksum: str) -> str:
    return checksum[:12]


def datasets_group() -> click.Group:
    group = click.Group(
        "datasets", help="List, show, verify datasets and their lineage.", no_args_is_help=True
    )

    @group.command("list")
    @click.option("--pattern", default=None, help="Regular expression on project/branch/name.")
    @click.option("--as-code", is_flag=True, help="Print the Python that opens each dataset.")
    @click.pass_context
    def list_cmd(ctx: click.Context, pattern: str | None, as_code: bool) -> None:
        """Published datasets under the root."""
        from ..data.project import find_datasets

        storage = _storage(ctx)
        found = list(find_datasets(storage, pattern))
        if as_code:
            click.echo(_as_code(storage.url, found))
            return
        if not found:
            click.echo(
                f"no datasets in {storage.url}" + (f" matching {pattern!r}" if pattern else "")
            )
            return
        from rich.console import Console
        from rich.table import Table

        table = Table("dataset", "type", "chunks", "created", "checksum", box=None)
        for d in found:
            table.add_row(
                d.path, d.dataType, str(d.chunkCount), d.creationTime[:19], _short(d.checksum)
            )
        Console(soft_wrap=True).print(table)

    @group.command("show")
    @click.argument("name")
    @click.pass_context
    def show_cmd(ctx: click.Context, name: str) -> None:
        """A dataset's definition, object count and size (NAME or project/branch/name)."""
        from ..data.project import find_dataset

        storage = _storage(ctx)
        info = find_dataset(storage, name)
        ds = _dataset(storage, info)
        counts = ds.verify()
        size = sum(storage.size(k) for k in storage.list(info.directory))
        repo = info.definition.get("repo", {})
        rows = [
            ("dataset", f"{storage.url}/{info.directory}"),
            ("type", info.dataType),
            ("checksum", info.checksum),
            ("created", info.creationTime),
            ("chunks", str(info.chunkCount)),
            ("objects", f"{sum(counts.values()):,}"),
            ("size", f"{size:,} bytes"),
            ("commit", f"{repo.get('commitHash', '?')} ({repo.get('branchName', '?')})"),
            ("committer", f"{repo.get('comitterName', '?')} <{repo.get('comitterEmail', '?')}>"),
            ("dependencies", str(len(info.definition.get("dependencies", [])))),
        ]
        if repo.get("forced"):
            rows.append(("forced", "yes: written from a repository with uncommitted changes"))
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            click.echo(f"{key:<{width}}  {value}")

    @group.command("lineage")
    @click.argument("name_or_checksum")
    @click.pass_context
    def lineage_cmd(ctx: click.Context, name_or_checksum: str) -> None:
        """The tree of datasets this one was made from, with their commits."""
        from rich.console import Console
        from rich.tree import Tree

        from ..data.project import find_dataset

        info = find_dataset(_storage(ctx), name_or_checksum)
        record = {**info.definition, "chkFileChecksum": info.checksum}
        tree = Tree(_label(record))
        _grow(tree, record)
        console = Console()
        if not console.is_terminal:
            console = Console(width=400)  # piped: never crop a commit or a checksum
        console.print(tree)

    @group.command("verify")
    @click.argument("name")
    @click.pass_context
    def verify_cmd(ctx: click.Context, name: str) -> None:
        """Read every chunk and check every checksum; exit 1 naming the file if one is wrong."""
        from ..data.project import find_dataset

        storage = _storage(ctx)
        info = find_dataset(storage, name)
        counts = _dataset(storage, info).verify()
        click.echo(
            f"ok: {info.path} {_short(info.checksum)}: {len(counts)} chunks, "
            f"{sum(counts.values()):,} objects verified"
        )

    return group


def _label(record: dict[str, Any]) -> str:
    from rich.markup import escape

    repo = record.get("repo", {})
    path = f"{record.get('project')}/{record.get('branch')}/{record.get('name')}"
    commit = str(repo.get("commitHash", "?"))[:10]
    forced = " [red](forced)[/red]" if repo.get("forced") else ""
    return (
        f"[bold]{escape(path)}[/bold] {escape(str(record.get('dataType', '?')))} "
        f"[dim]{_short(str(record.get('chkFileChecksum', '?')))}[/dim] "
        f"commit {commit} on {escape(str(repo.get('branchName', '?')))} by "
        f"{escape(str(repo.get('comitterName', '?')))}, {str(record.get('creationTime', ''))[:19]}{forced}"
    )


def _grow(tree: Any, record: dict[str, Any]) -> None:
    for dep in record.get("dependencies", []):
        _grow(tree.add(_label(dep)), dep)


def _as_code(url: str, found: list[Any]) -> str:
    types = sorted({d.dataType for d in found})
    lines = ["from hypermodel import hml", ""]
    lines += [f"# from <your data models> import {t}" for t in types]
    if types:
        lines.append("")
    for d in found:
        var = d.name.replace("-", "_").replace(".", "_")
        lines.append(
            f"{var} = hml.Dataset(dataType={d.dataType}, location={url!r}, project={d.project!r}, "
            f"branch={d.branch!r}, name={d.name!r}, chunkCount={d.chunkCount})"
        )
    return "\n".join(lines)
