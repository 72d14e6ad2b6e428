"""``hml runs``: list, show and compare tracked runs; write a self-contained HTML report."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .output import echo_json, format_option, iso_utc, limit_option, table, warn


def _store(ctx: click.Context) -> Any:
    from ..storage import open_storage
    from ..tracking.store import RunStore

    return RunStore(open_storage((ctx.obj or {}).get("root", ".hml")))


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else "-"


def runs_group() -> click.Group:
    group = click.Group(
        "runs",
        help="List, show and compare tracked runs; write HTML reports.",
        no_args_is_help=True,
    )

    @group.command("list")
    @click.option("--pipeline", default=None, help="Only op runs of this pipeline.")
    @click.option(
        "--state", default=None, help="Only runs in this state (running, completed, failed, ...)."
    )
    @click.option("--project", default=None, help="Only runs of this project (app).")
    @limit_option
    @format_option
    @click.pass_context
    def list_cmd(
        ctx: click.Context,
        pipeline: str | None,
        state: str | None,
        project: str | None,
        limit: int | None,
        output_format: str,
    ) -> None:
        """Tracked runs, newest first (by start time)."""
        store = _store(ctx)
        as_json = output_format == "json"
        records: list[Any] = []
        for run_id in _newest_first(store, pipeline, project):
            if limit is not None and len(records) >= limit:
                break
            record = store.load(run_id, metrics=as_json)
            if state and record.state != state:
                continue
            records.append(record)
        if as_json:
            echo_json([_summary(r) for r in records])
            return
        if not records:
            click.echo(
                f"no tracked runs under {store.storage.url}"
                + (" matching the filters" if pipeline or state or project else "")
            )
            return
        rows = [
            (
                r.run_id,
                r.state,
                r.label if r.meta.get("task") else "-",
                str(r.meta.get("author", "")),
                _when(r.started),
                f"{r.duration:.2f}s" if r.duration is not None else "-",
            )
            for r in records
        ]
        table(("RUN", "STATE", "PIPELINE/OP", "AUTHOR", "STARTED (UTC)", "DURATION"), rows)

    @group.command("show")
    @click.argument("run")
    @format_option
    @click.pass_context
    def show_cmd(ctx: click.Context, run: str, output_format: str) -> None:
        """Params, last metrics, artifacts and lineage of one run.

        With --format json: the whole run as one object, or a list of them when RUN is a
        pipeline run id naming several op runs."""
        store = _store(ctx)
        run_ids = store.resolve([run])
        if output_format == "json":
            found = [_whole(store.load(run_id)) for run_id in run_ids]
            echo_json(found[0] if len(found) == 1 else found)
            return
        for run_id in run_ids:
            _show(store, store.load(run_id))

    @group.command("compare")
    @click.argument("runs", nargs=-1, required=True)
    @click.pass_context
    def compare_cmd(ctx: click.Context, runs: tuple[str, ...]) -> None:
        """Params and last metrics side by side; rows that differ are marked with '*'."""
        from ..tracking.report import fmt, params_of

        store = _store(ctx)
        records = [store.load(r) for r in store.resolve(list(runs))]
        flats = [params_of(r) for r in records]
        lasts = [r.last_metrics() for r in records]
        header = ("", *(r.run_id for r in records))
        rows = [("state", *(r.state for r in records))]
        for key in sorted({k for f in flats for k in f}):
            rows.append((key, *(fmt(f.get(key)) for f in flats)))
        for key in sorted({k for m in lasts for k in m}):
            rows.append((f"metric {key}", *(fmt(m.get(key)) for m in lasts)))
        marked = [(("* " if len(set(r[1:])) > 1 else "  ") + r[0], *r[1:]) for r in rows]
        _table(header, marked)

    @group.command("report")
    @click.argument("runs", nargs=-1, required=True)
    @click.option(
        "-o",
        "--output",
        "output",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path("report.html"),
        show_default=True,
        help="The HTML file to write.",
    )
    @click.option("--title", default=None, help="Page title.")
    @click.pass_context
    def report_cmd(
        ctx: click.Context, runs: tuple[str, ...], output: Path, title: str | None
    ) -> None:
        """A self-contained HTML page: metric plots, params side by side, artifacts, lineage.

        RUN is a run id, a unique prefix, or a pipeline run id (all its op runs)."""
        from ..tracking.report import render

        store = _store(ctx)
        run_ids = store.resolve(list(runs))
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render(store, run_ids, title), encoding="utf-8")
        click.echo(f"wrote {output} ({len(run_ids)} run(s))")

    return group


def _newest_first(store: Any, pipeline: str | None, project: str | None) -> list[str]:
    """Run ids passing the filters that only need run.json, newest first (by start time)."""
    from ..errors import NotFoundError

    found = []
    for run_id in store.run_ids():
        try:
            meta = store.meta(run_id)
            started = float(meta.get("created") or 0.0)
        except (NotFoundError, ValueError, TypeError, AttributeError) as exc:
            warn(f"run {run_id} skipped: its run.json is unreadable ({exc})")
            continue
        if pipeline and meta.get("pipeline") != pipeline:
            continue
        if project and meta.get("project") != project:
            continue
        found.append((started, run_id))
    found.sort(reverse=True)
    return [run_id for _, run_id in found]


_ENDED = ("completed", "failed", "stopped")


def _summary(r: Any) -> dict[str, Any]:
    """One run in ``hml runs list --format json``."""
    finished = None
    if r.state in _ENDED and r.states:
        t = r.states[-1].get("t")
        finished = float(t) if isinstance(t, (int, float)) else None
    meta = r.meta
    return {
        "id": r.run_id,
        "name": r.label,
        "project": meta.get("project"),
        "pipeline": meta.get("pipeline"),
        "task": meta.get("task"),
        "pipeline_run_id": meta.get("pipeline_run_id"),
        "author": meta.get("author"),
        "state": r.state,
        "error": r.error,
        "started": iso_utc(r.started),
        "finished": iso_utc(finished),
        "duration": r.duration,
        "metrics": r.last_metrics(),
    }


def _whole(r: Any) -> dict[str, Any]:
    """Everything recorded about one run (``hml runs show --format json``)."""
    return {
        **_summary(r),
        "metric_history": {
            key: [{"step": step, "value": value, "time": t} for step, value, t in points]
            for key, points in sorted(r.metrics.items())
        },
        "meta": r.meta,
        "states": r.states,
        "params": r.params,
        "config": r.config,
        "metas": r.metas,
        "tags": r.tags,
        "notes": r.notes,
        "artifacts": r.artifacts,
        "inputs": r.inputs,
        "outputs": r.outputs,
        "output": r.output,
        "git": r.git,
        "packages": r.packages,
        "machine": r.machine,
        "writers": sorted(r.writers),
    }


def _show(store: Any, r: Any) -> None:
    from ..tracking.report import fmt

    echo = click.echo
    echo(f"run       {r.run_id}")
    echo(f"state     {r.state}" + (f"  ({r.error})" if r.error else ""))
    for key in ("project", "pipeline", "task", "pipeline_run_id", "kfp_run_id", "author", "host"):
        if r.meta.get(key):
            echo(f"{key:<9} {r.meta[key]}")
    echo(
        f"started   {_when(r.started)} UTC"
        + (f", {r.duration:.3f}s" if r.duration is not None else "")
    )
    git = r.git.get("app") or r.meta.get("git") or {}
    if git.get("commit"):
        echo(
            f"commit    {git['commit']}"
            + (f" ({git['branch']})" if git.get("branch") else "")
            + (" dirty" if git.get("dirty") else "")
        )
    if r.tags:
        echo("tags      " + ", ".join(str(t.get("name")) for t in r.tags))
    for note in r.notes:
        echo(f"note      {note}")
    # An op's run holds all its attempts: each starts with a "running" state and ends with
    # "completed", "failed" or "stopped", the last word winning (a Ctrl-C'd attempt fails, then
    # is stopped); numbered in order, as a Kubeflow pod is always attempt 1
    attempts: list[dict[str, Any]] = []
    for event in r.states:
        if event.get("state") == "running" and "attempt" in event:
            attempts.append({"started": event.get("t"), "state": "running"})
        elif attempts and "attempt" in event:
            attempts[-1].update(event, started=attempts[-1]["started"])
    if len(attempts) > 1 or any(a["state"] != "completed" for a in attempts):
        echo("\nattempts:")
        for n, a in enumerate(attempts, 1):
            took = f"{float(a['duration']):.2f}s" if a.get("duration") is not None else "-"
            error = str(a.get("error") or "").strip().splitlines()[:1]
            echo(
                f"  {n}  {a['state']:<9}  {took:>8}  {_when(a['started'])}"
                + (f"  {error[0]}" if error else "")
            )
    sections: list[tuple[str, dict[str, Any]]] = [
        ("params", r.params),
        ("config", r.config),
        ("meta", r.metas),
        ("last metrics", r.last_metrics()),
    ]
    for title, values in sections:
        if values:
            echo(f"\n{title}:")
            for key, value in sorted(values.items()):
                echo(f"  {key} = {fmt(value)}")
    if r.artifacts:
        echo("\nartifacts:")
        for label, info in sorted(r.artifacts.items()):
            size = (
                f"{int(info['size']):,} B"
                if info.get("size") is not None
                else str(info.get("kind", ""))
            )
            echo(f"  {label}  {size}  {info.get('key')}")
    if r.inputs or r.outputs:
        echo("\nlineage:")
        for entry in r.inputs:
            echo(f"  <- {_entry(entry)}")
        for entry in r.outputs:
            echo(f"  -> {_entry(entry)}")
    echo("")


def _entry(entry: dict[str, Any]) -> str:
    text = f"{entry.get('kind', 'dataset')} {entry.get('name', '')}"
    if entry.get("version"):
        text += f" v{entry['version']}"
    if entry.get("checksum"):
        text += f" ({str(entry['checksum'])[:12]})"
    return text


def _table(header: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo(
            "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
        )
