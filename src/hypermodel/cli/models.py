"""``hml models``: list published models and their versions, show one with its aliases and
lineage, promote a version to an alias, move or delete aliases, roll an alias back."""

from __future__ import annotations

from typing import Any

import click

from .output import echo_json, format_option, table


def _store(ctx: click.Context) -> Any:
    from ..models.store import ModelStore
    from ..storage import open_storage

    return ModelStore(open_storage((ctx.obj or {}).get("root", ".hml")))


def _reason_option(func: Any) -> Any:
    return click.option("--reason", default="", help="Why: recorded in the alias's history.")(func)


def _expect_option(func: Any) -> Any:
    return click.option(
        "--expect",
        "expected",
        default=None,
        metavar="VERSION",
        help="Only if the alias is at VERSION now (compare-and-set).",
    )(func)


def models_group() -> click.Group:
    group = click.Group(
        "models",
        help="List and show published models; promote versions to aliases; roll back.",
        no_args_is_help=True,
    )

    @group.command("list")
    @click.argument("name", required=False)
    @format_option
    @click.pass_context
    def list_cmd(ctx: click.Context, name: str | None, output_format: str) -> None:
        """Every model with its version count, latest version and aliases; with NAME, its
        versions (oldest first) and the aliases pointing at each."""
        store = _store(ctx)
        if name:
            _list_versions(store, name, output_format)
        else:
            _list_models(store, output_format)

    @group.command("show")
    @click.argument("ref", metavar="NAME[@REF]")
    @format_option
    @click.pass_context
    def show_cmd(ctx: click.Context, ref: str, output_format: str) -> None:
        """A version's reference, the model's aliases and the version's lineage (training
        datasets, their sources and commits, the tracking runs). REF is latest (the default),
        a version or an alias."""
        from ..models.lineage import render

        store = _store(ctx)
        name, _, wanted = ref.partition("@")
        reference = store.resolve(name, wanted or "latest")
        aliases = store.aliases(name)
        lineage = store.lineage(name, reference.version)
        if output_format == "json":
            echo_json(
                {
                    "reference": {**reference.to_dict(), "key": reference.key},
                    "aliases": aliases,
                    "lineage": lineage,
                }
            )
            return
        here = sorted(a for a, v in aliases.items() if v == reference.version)
        rows = [
            ("model", f"{reference.name} ({reference.kind})"),
            ("version", reference.version + (f"  [{', '.join(here)}]" if here else "")),
            ("long name", reference.long_name),
            ("created", reference.created),
            ("digest", f"sha256:{reference.model_sha256}"),
            ("commit", reference.commit + (" (dirty)" if reference.dirty else "")),
            ("run", reference.run_id or "-"),
            ("datasets", ", ".join(reference.datasets) or "none"),
            ("reference", f"{store.storage.url}/{reference.key}"),
        ]
        for key, value in sorted(reference.metrics.items()):
            rows.append((f"metric {key}", f"{value:g}"))
        for key, value in sorted(reference.params.items()):
            rows.append((f"param {key}", str(value)))
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            click.echo(f"{key:<{width}}  {value}")
        click.echo("\naliases:")
        for alias, version in sorted(aliases.items()) or [("(none)", "")]:
            click.echo(f"  {alias}" + (f" -> {version}" if version else ""))
        click.echo("\nlineage:")
        for line in render(lineage):
            click.echo(f"  {line}")

    @group.command("promote")
    @click.argument("name")
    @click.argument("version")
    @click.option(
        "--to", "alias", default="production", show_default=True, help="The alias to move."
    )
    @_expect_option
    @_reason_option
    @format_option
    @click.pass_context
    def promote_cmd(
        ctx: click.Context,
        name: str,
        version: str,
        alias: str,
        expected: str | None,
        reason: str,
        output_format: str,
    ) -> None:
        """Point ALIAS (production) of model NAME at VERSION; servers loading the alias get
        VERSION from their next load."""
        entry = _store(ctx).set_alias(name, alias, version, expected=expected, reason=reason)
        _changed(entry, output_format)

    @group.command("alias")
    @click.argument("name")
    @click.argument("alias")
    @click.argument("version", required=False)
    @click.option("--delete", is_flag=True, help="Unset ALIAS (recorded in its history).")
    @_expect_option
    @_reason_option
    @format_option
    @click.pass_context
    def alias_cmd(
        ctx: click.Context,
        name: str,
        alias: str,
        version: str | None,
        delete: bool,
        expected: str | None,
        reason: str,
        output_format: str,
    ) -> None:
        """Point ALIAS of model NAME at VERSION, or unset it with --delete."""
        if delete == (version is not None):
            raise click.UsageError("give either VERSION or --delete")
        store = _store(ctx)
        if delete:
            entry = store.delete_alias(name, alias, expected=expected, reason=reason)
        else:
            assert version is not None  # checked above
            entry = store.set_alias(name, alias, version, expected=expected, reason=reason)
        _changed(entry, output_format)

    @group.command("rollback")
    @click.argument("name")
    @click.argument("alias")
    @_reason_option
    @format_option
    @click.pass_context
    def rollback_cmd(
        ctx: click.Context, name: str, alias: str, reason: str, output_format: str
    ) -> None:
        """Move ALIAS of model NAME back to the version its last change replaced (a new entry
        in its history: rolling back twice returns to where it was)."""
        _changed(_store(ctx).rollback(name, alias, reason=reason), output_format)

    @group.command("history")
    @click.argument("name")
    @click.argument("alias")
    @format_option
    @click.pass_context
    def history_cmd(ctx: click.Context, name: str, alias: str, output_format: str) -> None:
        """Every change of ALIAS of model NAME, oldest first."""
        entries = _store(ctx).alias_history(name, alias)
        if output_format == "json":
            echo_json([e.to_dict() for e in entries])
            return
        table(
            ("ENTRY", "VERSION", "PREVIOUS", "AT (UTC)", "BY", "REASON"),
            [
                (e.sequence, e.version or "(deleted)", e.previous or "-", e.at[:19], e.by, e.reason)
                for e in entries
            ],
        )

    return group


def _list_models(store: Any, output_format: str) -> None:
    rows = []
    for name in store.models():
        versions = store.versions(name)
        rows.append(
            {
                "name": name,
                "versions": len(versions),
                "latest": _latest(store, name),
                "newest": versions[-1].version if versions else None,
                "aliases": store.aliases(name),
            }
        )
    if output_format == "json":
        echo_json(rows)
        return
    if not rows:
        click.echo(f"no models in {store.storage.url}")
        return
    table(
        ("MODEL", "VERSIONS", "LATEST", "ALIASES"),
        [
            (
                r["name"],
                r["versions"],
                r["latest"] or "-",
                ", ".join(f"{a} -> {v}" for a, v in sorted(r["aliases"].items())) or "-",
            )
            for r in rows
        ],
    )


def _latest(store: Any, name: str) -> str | None:
    from ..errors import NotFoundError

    try:
        return str(store.resolve(name, "latest").version)
    except NotFoundError:
        return None


def _list_versions(store: Any, name: str, output_format: str) -> None:
    versions = store.versions(name)
    aliases = store.aliases(name)
    latest = _latest(store, name)
    pointing: dict[str, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        pointing.setdefault(version, []).append(alias)
    if output_format == "json":
        echo_json(
            [
                {
                    **r.to_dict(),
                    "key": r.key,
                    "latest": r.version == latest,
                    "aliases": pointing.get(r.version, []),
                }
                for r in versions
            ]
        )
        return
    table(
        ("VERSION", "KIND", "CREATED", "ALIASES", "METRICS", "RUN"),
        [
            (
                r.version,
                r.kind,
                r.created,
                ", ".join(
                    [*(["latest"] if r.version == latest else []), *pointing.get(r.version, [])]
                )
                or "-",
                " ".join(f"{k}={v:g}" for k, v in sorted(r.metrics.items())) or "-",
                r.run_id or "-",
            )
            for r in versions
        ],
    )


def _changed(entry: Any, output_format: str) -> None:
    if output_format == "json":
        echo_json(entry.to_dict())
        return
    now = entry.version if entry.version is not None else "(unset)"
    click.echo(
        f"{entry.model} {entry.alias}: {entry.previous or '(unset)'} -> {now} "
        f"(entry {entry.sequence}, by {entry.by})"
    )
