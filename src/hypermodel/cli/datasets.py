"""``hml datasets``: list, show, verify and remove datasets and their versions; draw their
lineage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..data.project import BrokenDataset

from ..storage import Storage
from .output import echo_json, format_option, limit_option, table, warn


def _storage(ctx: click.Context) -> Any:
    from ..storage import open_storage

    return open_storage((ctx.obj or {}).get("root", ".hml"))


def _dataset(storage: Any, info: Any) -> Any:
    """A Dataset over a found one (its version, or the plain one), typed by a stand-in class of
    the recorded type name (the CLI checks and counts; it never needs the user's class)."""
    from ..data.catalog import as_dataset

    return as_dataset(storage, info)


def _short(checksum: str) -> str:
    return checksum[:12]


def human_bytes(n: int) -> str:
    """``512 B``, ``4.0 KiB``, ``12.3 MiB``, ``1.2 GiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n:,} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def datasets_group() -> click.Group:
    group = click.Group(
        "datasets",
        help="List, show, verify, remove datasets and their versions; their lineage.",
        no_args_is_help=True,
    )

    @group.command("list")
    @click.option("--pattern", default=None, help="Regular expression on project/branch/name.")
    @click.option("--all-versions", is_flag=True, help="One row per version (and plain dataset).")
    @click.option("--as-code", is_flag=True, help="Print the Python that opens each dataset.")
    @limit_option
    @format_option
    @click.pass_context
    def list_cmd(
        ctx: click.Context,
        pattern: str | None,
        all_versions: bool,
        as_code: bool,
        limit: int | None,
        output_format: str,
    ) -> None:
        """Published datasets under the root by stable name, newest first (by the creation time
        in the .def of the latest version), with their version count and latest version.

        A dataset whose .chk is there but whose .def cannot be read is listed as broken."""
        if as_code and output_format == "json":
            raise click.UsageError("--as-code and --format json cannot be combined")
        storage = _storage(ctx)
        found = _listing(storage, pattern, all_versions)[:limit]
        if output_format == "json":
            echo_json([_entry(storage, row, all_versions) for row in found])
            return
        if as_code:
            rows = [r for r in found if not _broken(r)]
            click.echo(_as_code(storage.url, [r.info for r in rows]))
            return
        if not found:
            click.echo(
                f"no datasets in {storage.url}" + (f" matching {pattern!r}" if pattern else "")
            )
            return
        if all_versions:
            _version_table(storage, found)
        else:
            _name_table(storage, found)

    @group.command("show")
    @click.argument("name")
    @format_option
    @click.pass_context
    def show_cmd(ctx: click.Context, name: str, output_format: str) -> None:
        """A dataset's definition, object count, size and versions.

        NAME is name or project/branch/name (the latest version: the one a read by name sees),
        either with @VERSION (that version), or a checksum prefix."""
        from ..data.catalog import resolve
        from ..data.gc import ListedOnce, directory_size

        storage = ListedOnce(_storage(ctx))
        named, info = resolve(_catalog(storage), name, storage.url, storage)
        counts = _dataset(storage.inner, info).verify()
        size = directory_size(storage, info.directory)
        latest = named.latest
        if output_format == "json":
            echo_json(_show_json(storage, named, info, sum(counts.values()), size))
            return
        repo = info.definition.get("repo", {})
        rows = [
            ("dataset", f"{storage.url}/{info.directory}"),
            ("version", _which(named, info, latest)),
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
        if named.versions:
            click.echo("")
            click.echo(f"versions of {named.path}, newest first (* the one shown):")
            table(
                ("", "version", "created (UTC)", "run", "checksum"),
                [
                    (
                        "*" if v.directory == info.directory else "",
                        v.version or "(plain)",
                        _created(named, v),
                        (named.entry(v) or {}).get("run_id") or "-",
                        _short(v.checksum),
                    )
                    for v in named.every()
                ],
            )

    @group.command("lineage")
    @click.argument("name_or_checksum")
    @click.pass_context
    def lineage_cmd(ctx: click.Context, name_or_checksum: str) -> None:
        """The tree of datasets this one was made from, with their commits (NAME[@VERSION])."""
        from rich.console import Console
        from rich.tree import Tree

        from ..data.project import find_dataset

        info = find_dataset(_storage(ctx), name_or_checksum)
        record = {**info.definition, "chkFileChecksum": info.checksum}
        tree = Tree(_label(record, info.version))
        _grow(tree, record)
        console = Console()
        if not console.is_terminal:
            console = Console(width=400)  # piped: never crop a commit or a checksum
        console.print(tree)

    @group.command("verify")
    @click.argument("name")
    @click.pass_context
    def verify_cmd(ctx: click.Context, name: str) -> None:
        """Read every chunk and check every checksum; exit 1 naming the file if one is wrong
        (NAME[@VERSION]: by name alone, the latest version)."""
        from ..data.project import find_dataset

        storage = _storage(ctx)
        info = find_dataset(storage, name)
        counts = _dataset(storage, info).verify()
        click.echo(
            f"ok: {info.ref} {_short(info.checksum)}: {len(counts)} chunks, "
            f"{sum(counts.values()):,} objects verified"
        )

    @group.command("rm")
    @click.argument("name")
    @click.option(
        "--all-versions", is_flag=True, help="Every version of NAME and its plain dataset."
    )
    @click.option("--plain", is_flag=True, help="The plain (unversioned) dataset of NAME.")
    @click.option("--yes", is_flag=True, help="Remove them (without it: only say what would go).")
    @click.option("--force", is_flag=True, help="Remove a published model's training dataset too.")
    @click.pass_context
    def rm_cmd(
        ctx: click.Context, name: str, all_versions: bool, plain: bool, yes: bool, force: bool
    ) -> None:
        """Remove NAME@VERSION (one version), NAME's plain dataset, or with --all-versions every
        version and the plain one. NAME is name or project/branch/name.

        Only says what would go unless --yes. Refuses a version whose checksum a published
        model references (its training data) unless --force."""
        from ..data.catalog import lookup
        from ..data.gc import Candidate, DatasetInUseError, ListedOnce, directory_size, model_users

        storage = ListedOnce(_storage(ctx))
        named, version = lookup(_catalog(storage), name, storage.url, storage)
        if version is not None and (all_versions or plain):
            raise click.UsageError(
                "NAME@VERSION names one version: leave out --all-versions/--plain"
            )
        if all_versions and plain:
            raise click.UsageError("--all-versions already includes the plain dataset")
        if all_versions:
            targets = named.every()
        elif plain or (version is None and not named.versions):
            if named.plain is None:
                raise click.UsageError(f"{named.path} has no plain dataset, only versions")
            targets = [named.plain]
        elif version is None:
            raise click.UsageError(
                f"{named.path} has {len(named.versions)} version(s) (latest "
                f"{named.latest.version or 'plain'}): give {named.name}@VERSION, --plain or "
                "--all-versions"
            )
        else:
            targets = [named.pick(version, storage.url)]
        users = model_users(storage, targets)
        if users and not force:
            info = next(t for t in targets if t.directory in users)
            more = f" (and {len(users) - 1} more)" if len(users) > 1 else ""
            raise DatasetInUseError(
                f"{info.ref} is referenced by {users[info.directory]}{more} as training data; "
                "nothing removed (--force removes it anyway)"
            )
        doomed = [Candidate(named, t, directory_size(storage, t.directory)) for t in targets]
        total = sum(c.size for c in doomed)
        if not yes:
            for c in doomed:
                click.echo(f"would remove {c.info.ref}  {human_bytes(c.size)}")
            click.echo(
                f"would free {human_bytes(total)} in {len(doomed)} dataset(s); "
                "run again with --yes to remove"
            )
            return
        from ..data.gc import remove

        for c in remove(storage, doomed):
            click.echo(f"removed {c.info.ref}  {human_bytes(c.size)}")
        click.echo(f"freed {human_bytes(total)}")

    return group


def _catalog(storage: Any) -> list[Any]:
    from ..data.catalog import catalog

    return catalog(storage)


def _which(named: Any, info: Any, latest: Any) -> str:
    """The ``version`` line of ``show``: which one this is, and whether reads by name see it."""
    if info.version is None:
        what = "plain (no version)"
    else:
        what = info.version
    count = len(named.versions)
    if info.directory == latest.directory:
        return f"{what}: the latest of {count} version(s), what a read by name sees"
    return f"{what}: not the latest (that is {latest.version or 'the plain dataset'})"


def _created(named: Any, info: Any) -> str:
    """A version's registry time (UTC), else its .def's creation time."""
    entry = named.entry(info) or {}
    return str(entry.get("created") or info.creationTime)[:19]


def _show_json(storage: Any, named: Any, info: Any, objects: int, size: int) -> dict[str, Any]:
    repo = info.definition.get("repo", {})
    latest = named.latest
    return {
        "id": info.ref,
        "project": info.project,
        "branch": info.branch,
        "name": info.name,
        "version": info.version,
        "latest": info.directory == latest.directory,
        "latest_version": latest.version,
        "directory": info.directory,
        "url": f"{storage.url}/{info.directory}",
        "dataType": info.dataType,
        "checksum": info.checksum,
        "created": info.creationTime,
        "chunks": info.chunkCount,
        "objects": objects,
        "bytes": size,
        "repo": repo,
        "dependencies": [
            {k: d.get(k) for k in ("project", "branch", "name", "chkFileChecksum")}
            for d in info.definition.get("dependencies", [])
            if isinstance(d, dict)
        ],
        "versions": [_version_json(named, v, latest) for v in named.versions[::-1]],
        "plain": _version_json(named, named.plain, latest) if named.plain else None,
    }


def _version_json(named: Any, info: Any, latest: Any) -> dict[str, Any]:
    entry = named.entry(info) or {}
    return {
        "version": info.version,
        "created": entry.get("created") or info.creationTime,
        "run_id": entry.get("run_id"),
        "pipeline": entry.get("pipeline"),
        "task": entry.get("task"),
        "checksum": info.checksum,
        "latest": info.directory == latest.directory,
    }


def _label(record: dict[str, Any], version: str | None = None) -> str:
    from rich.markup import escape

    repo = record.get("repo", {})
    repo = repo if isinstance(repo, dict) else {}
    # a version's .def names it in its branch ("main@<version>", Hypergol's view of it)
    branch, _, in_def = str(record.get("branch")).partition("@")
    version = version or in_def or None
    path = f"{record.get('project')}/{branch}/{record.get('name')}"
    if version:
        path += f"@{version}"
    commit = str(repo.get("commitHash", "?"))[:10]
    forced = " [red](forced)[/red]" if repo.get("forced") else ""
    return (
        f"[bold]{escape(path)}[/bold] {escape(str(record.get('dataType', '?')))} "
        f"[dim]{_short(str(record.get('chkFileChecksum', '?')))}[/dim] "
        f"commit {commit} on {escape(str(repo.get('branchName', '?')))} by "
        f"{escape(str(repo.get('comitterName', '?')))}, {str(record.get('creationTime', ''))[:19]}{forced}"
    )


def _grow(tree: Any, record: dict[str, Any]) -> None:
    deps = record.get("dependencies", [])
    for dep in deps if isinstance(deps, list) else []:
        if isinstance(dep, dict):  # the dataset's own .def is checked; its copies are not
            _grow(tree.add(_label(dep)), dep)


def _as_code(url: str, found: list[Any]) -> str:
    types = sorted({d.dataType for d in found})
    lines = ["from hypermodel import hml", ""]
    lines += [f"# from <your data models> import {t}" for t in types]
    if types:
        lines.append("")
    for d in found:
        var = d.name.replace("-", "_").replace(".", "_")
        if d.version:
            var += "_" + d.version.replace("-", "_").replace(".", "_")
        version = f", version={d.version!r}" if d.version else ""
        lines.append(
            f"{var} = hml.Dataset(dataType={d.dataType}, location={url!r}, project={d.project!r}, "
            f"branch={d.branch!r}, name={d.name!r}, chunkCount={d.chunkCount}{version})"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class _Row:
    """One row of the listing: a stable name shown by its latest version, or (with
    --all-versions) one version or plain dataset of it."""

    named: Any  # catalog.Named
    info: Any  # project.DatasetInfo


def _broken(row: Any) -> bool:
    from ..data.project import BrokenDataset

    return isinstance(row, BrokenDataset)


def _listing(storage: Storage, pattern: str | None, all_versions: bool = False) -> list[Any]:
    """Every stable name (its latest version) or, ``all_versions``, every version and plain
    dataset (``_Row``), newest first; then the broken ones (``BrokenDataset``), which have no
    creation time. The bucket is listed once."""
    from ..data.catalog import catalog
    from ..data.gc import ListedOnce

    listed = ListedOnce(storage)
    broken: list[BrokenDataset] = []
    groups = sorted(
        catalog(listed, pattern, broken),
        key=lambda g: (g.latest.creationTime, g.path),
        reverse=True,
    )
    rows: list[Any] = []
    for g in groups:
        if all_versions:
            rows += [_Row(g, d) for d in g.every()]
        else:
            rows.append(_Row(g, g.latest))
    return rows + sorted(broken, key=lambda d: d.ref)


def _name_table(storage: Storage, found: list[Any]) -> None:
    rows = []
    for d in found:
        if _broken(d):
            rows.append((d.ref, "?", "?", "-", "-", "-", "BROKEN"))
            warn(f"dataset {storage.url}/{d.directory} is broken: {d.error}")
            continue
        info = d.info
        rows.append(
            (
                info.path,
                info.dataType,
                str(info.chunkCount),
                str(len(d.named.versions)),
                info.version or "-",
                info.creationTime[:19],
                _short(info.checksum),
            )
        )
    table(("dataset", "type", "chunks", "versions", "latest", "created", "checksum"), rows)


def _version_table(storage: Storage, found: list[Any]) -> None:
    rows = []
    for d in found:
        if _broken(d):
            rows.append((d.path, d.version or "-", "?", "?", "-", "-", "BROKEN"))
            warn(f"dataset {storage.url}/{d.directory} is broken: {d.error}")
            continue
        info = d.info
        mark = "*" if info.directory == d.named.latest.directory else ""
        rows.append(
            (
                info.path,
                (info.version or "(plain)") + mark,
                info.dataType,
                str(info.chunkCount),
                info.creationTime[:19],
                (d.named.entry(info) or {}).get("run_id") or "-",
                _short(info.checksum),
            )
        )
    table(("dataset", "version", "type", "chunks", "created", "run", "checksum"), rows)
    click.echo("(* the latest: what a read by name sees)")


def _entry(storage: Storage, d: Any, all_versions: bool = False) -> dict[str, Any]:
    """One row of ``hml datasets list --format json``."""
    if _broken(d):
        return {
            "id": d.ref,
            "project": d.project,
            "branch": d.branch,
            "name": d.name,
            "version": d.version,
            "directory": d.directory,
            "dataType": None,
            "chunks": None,
            "objects": None,
            "created": None,
            "checksum": None,
            "versions": None,
            "latest_version": None,
            "latest": None,
            "run_id": None,
            "error": d.error,
        }
    info, named = d.info, d.named
    latest = named.latest
    return {
        "id": info.ref if all_versions else info.path,
        "project": info.project,
        "branch": info.branch,
        "name": info.name,
        "version": info.version,
        "directory": info.directory,
        "dataType": info.dataType,
        "chunks": info.chunkCount,
        "objects": _objects(storage, info),
        "created": info.creationTime,
        "checksum": info.checksum,
        "versions": len(named.versions),
        "latest_version": latest.version,
        "latest": info.directory == latest.directory,
        "run_id": (named.entry(info) or {}).get("run_id"),
        "error": None,
    }


def _objects(storage: Storage, info: Any) -> int | None:
    """The object count from the dataset's stored index (one small read); None when it has no
    up-to-date index (counting would mean reading every chunk: `hml datasets show` does)."""
    from ..data.index import load_index

    try:
        return load_index(_dataset(storage, info), build=False).total
    except Exception:
        return None
