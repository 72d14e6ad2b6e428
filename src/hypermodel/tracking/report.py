"""``hml runs report RUN... -o report.html``: one self-contained HTML page.

No external URL anywhere: plots are SVG drawn here, images are data URIs, the little script
is inline. The page opens from a file, an email attachment or an air-gapped cluster alike.
"""

from __future__ import annotations

import base64
import html
import math
import time
from typing import Any

from .store import RunRecord, RunStore

COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
)
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
}
MAX_INLINE_IMAGE = 5 * 1024 * 1024
KIND_COLORS = {"dataset": "#e8f1fb", "op": "#fff4e0", "model": "#e9f7ec", "commit": "#f1eefa"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f6f6f6}td.diff{background:#fff6d6}
.plots{display:flex;flex-wrap:wrap;gap:16px}.plot{border:1px solid #eee;padding:4px}
.plot text{font-size:11px;fill:#444}.legend span{display:inline-block;margin-right:12px;cursor:pointer;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}.off{opacity:.3}
.state-completed{color:#2a7}.state-failed{color:#c22}.state-running{color:#27c}
img.artifact{max-width:420px;max-height:320px;border:1px solid #ddd;display:block;margin:4px 0}
pre{background:#f7f7f7;padding:8px;max-height:240px;overflow:auto;font-size:12px}
#hml-errors:empty{display:none}#hml-errors{color:#c22}
"""

# Inline script: records JS errors into the page (tests read them back) and lets the legend
# toggle series.
_JS = """
(function(){
  var box=document.getElementById('hml-errors');
  window.addEventListener('error',function(e){box.textContent+='JS error: '+e.message+'\\n';});
  document.querySelectorAll('.legend span').forEach(function(el){
    el.addEventListener('click',function(){
      var run=el.getAttribute('data-run');
      el.classList.toggle('off');
      document.querySelectorAll('[data-series="'+run+'"]').forEach(function(p){
        p.style.display=(p.style.display==='none')?'':'none';});
    });
  });
  document.body.setAttribute('data-ready','1');
})();
"""


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        import orjson

        text = orjson.dumps(value, default=str).decode()
        return text if len(text) < 300 else text[:297] + "..."
    return "" if value is None else str(value)


def render(store: RunStore, run_ids: list[str], title: str | None = None) -> str:
    records = sorted((store.load(r) for r in run_ids), key=lambda r: (r.started or 0.0, r.run_id))
    colors = {r.run_id: COLORS[i % len(COLORS)] for i, r in enumerate(records)}
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title or 'hypermodel runs report')}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title or 'hypermodel runs report')}</h1><div id='hml-errors'></div>",
        f"<p>{len(records)} run(s) from {e(store.storage.url)}, generated {e(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()))}.</p>",
        _summary(records, colors),
        _metrics_section(records, colors),
        _params_section(records),
        _artifacts_section(store, records),
        _lineage_section(records),
        _notes_section(store, records),
        f"<script>{_JS}</script></body></html>",
    ]
    return "\n".join(parts)


# -- summary --------------------------------------------------------------------------------------
def _summary(records: list[RunRecord], colors: dict[str, str]) -> str:
    rows = []
    for r in records:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.started)) if r.started else ""
        commit = (r.git.get("app") or r.meta.get("git") or {}).get("commit", "")
        duration = f"{r.duration:.3f}s" if r.duration is not None else ""
        tags = ", ".join(str(t.get("name")) for t in r.tags)
        error = f"<br><small>{e(r.error)}</small>" if r.error else ""
        rows.append(
            f"<tr><td><i style='color:{colors[r.run_id]}'>&#9632;</i> {e(r.run_id)}</td>"
            f"<td class='state-{e(r.state)}'>{e(r.state)}{error}</td><td>{e(r.label)}</td><td>{e(r.meta.get('author', ''))}</td>"
            f"<td>{e(started)}</td><td>{e(duration)}</td><td>{e(commit[:10])}</td><td>{e(tags)}</td></tr>"
        )
    return (
        "<h2>Runs</h2><table><tr><th>run</th><th>state</th><th>pipeline/op</th><th>author</th>"
        "<th>started (UTC)</th><th>duration</th><th>commit</th><th>tags</th></tr>"
        + "".join(rows)
        + "</table>"
    )


# -- metric plots ---------------------------------------------------------------------------------
def _metrics_section(records: list[RunRecord], colors: dict[str, str]) -> str:
    keys = sorted({k for r in records for k in r.metrics})
    if not keys:
        return "<h2>Metrics</h2><p>No metrics recorded.</p>"
    legend = "".join(
        f"<span data-run='{e(r.run_id)}'><i style='background:{colors[r.run_id]}'></i>{e(r.run_id)}</span>"
        for r in records
        if r.metrics
    )
    # a plot per metric recorded over steps; single values (final scores) are in the table only
    curves = [k for k in keys if any(len(r.metrics.get(k, [])) > 1 for r in records)]
    plots = [
        plot_svg(key, {r.run_id: r.metrics.get(key, []) for r in records}, colors) for key in curves
    ]
    last = _side_by_side([(k, [r.last_metrics().get(k) for r in records]) for k in keys], records)
    legend = f"<div class='legend'>{legend}</div>" if plots else ""
    return (
        f"<h2>Metrics</h2>{legend}<div class='plots'>{''.join(plots)}</div>"
        f"<h3>Last values</h3>{last}"
    )


def plot_svg(
    title: str,
    series: dict[str, list[tuple[Any, float, float]]],
    colors: dict[str, str],
    width: int = 420,
    height: int = 240,
) -> str:
    """A line plot of value over step (or over record order when steps are missing)."""
    left, right, top, bottom = 56, 12, 22, 30
    pts: dict[str, list[tuple[float, float]]] = {}
    for run_id, points in series.items():
        xy = [
            (float(s) if s is not None else float(i), float(v))
            for i, (s, v, _t) in enumerate(points)
            if v is not None and math.isfinite(v)
        ]
        if xy:
            pts[run_id] = xy
    all_x = [x for xy in pts.values() for x, _ in xy] or [0.0]
    all_y = [y for xy in pts.values() for _, y in xy] or [0.0]
    x0, x1 = min(all_x), max(all_x)
    y0, y1 = min(all_y), max(all_y)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - (abs(y0) or 1) * 0.1, y1 + (abs(y1) or 1) * 0.1
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    out = [
        f"<svg class='plot' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' aria-label='{e(title)}'>",
        f"<text x='{left}' y='14' font-weight='bold'>{e(title)}</text>",
        f"<rect x='{left}' y='{top}' width='{pw}' height='{ph}' fill='none' stroke='#ccc'/>",
    ]
    for i in range(5):
        fy = y0 + (y1 - y0) * i / 4
        fx = x0 + (x1 - x0) * i / 4
        out.append(
            f"<line x1='{left}' x2='{left + pw}' y1='{sy(fy):.1f}' y2='{sy(fy):.1f}' stroke='#eee'/>"
        )
        out.append(
            f"<text x='{left - 4}' y='{sy(fy) + 4:.1f}' text-anchor='end'>{e(fmt(fy))}</text>"
        )
        out.append(
            f"<text x='{sx(fx):.1f}' y='{height - 12}' text-anchor='middle'>{e(fmt(fx))}</text>"
        )
    out.append(f"<text x='{left + pw / 2:.0f}' y='{height - 1}' text-anchor='middle'>step</text>")
    for run_id, xy in pts.items():
        color = colors.get(run_id, "#333")
        xy = _thin(xy, 2000)
        if len(xy) > 1:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in xy)
            out.append(
                f"<polyline data-series='{e(run_id)}' fill='none' stroke='{color}' stroke-width='1.5' points='{path}'/>"
            )
        else:
            x, y = xy[0]
            out.append(
                f"<circle data-series='{e(run_id)}' cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='3.5' fill='{color}'>"
                f"<title>{e(run_id)}: {e(fmt(y))}</title></circle>"
            )
    out.append("</svg>")
    return "".join(out)


def _thin(xy: list[tuple[float, float]], limit: int) -> list[tuple[float, float]]:
    if len(xy) <= limit:
        return xy
    stride = math.ceil(len(xy) / limit)
    return [*xy[::stride], xy[-1]]


# -- params ---------------------------------------------------------------------------------------
def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
        if not value and prefix:
            out[prefix] = value
    else:
        out[prefix] = value


def params_of(r: RunRecord) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    _flatten("", r.params, flat)
    for key, value in (r.meta.get("pipeline_params") or {}).items():
        flat[f"pipeline.{key}"] = value
    config: dict[str, Any] = {}
    _flatten("", r.config, config)
    flat.update({f"config.{k}": v for k, v in config.items()})
    flat.update({f"meta.{k}": v for k, v in r.metas.items()})
    return flat


def _side_by_side(rows: list[tuple[str, list[Any]]], records: list[RunRecord]) -> str:
    if not rows:
        return "<p>None recorded.</p>"
    head = "".join(f"<th>{e(r.run_id)}</th>" for r in records)
    body = []
    for key, values in rows:
        shown = [fmt(v) for v in values]
        present = {v for v in shown if v != ""}
        cls = " class='diff'" if len(present) > 1 else ""  # differing values, not just missing ones
        body.append(
            f"<tr><th>{e(key)}</th>" + "".join(f"<td{cls}>{e(v)}</td>" for v in shown) + "</tr>"
        )
    return f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def _params_section(records: list[RunRecord]) -> str:
    flats = [params_of(r) for r in records]
    keys = sorted({k for f in flats for k in f})
    return "<h2>Parameters</h2>" + _side_by_side(
        [(k, [f.get(k) for f in flats]) for k in keys], records
    )


# -- artifacts ------------------------------------------------------------------------------------
def _artifacts_section(store: RunStore, records: list[RunRecord]) -> str:
    parts = ["<h2>Artifacts</h2>"]
    for r in records:
        if not r.artifacts:
            continue
        parts.append(
            f"<h3>{e(r.run_id)}</h3><table><tr><th>artifact</th><th>step</th><th>size</th><th></th></tr>"
        )
        for label, info in sorted(r.artifacts.items()):
            name = str(info.get("name", label))
            ext = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
            cell = ""
            size = int(info.get("size") or 0)
            shown_size = f"{size:,} B" if info.get("size") is not None else info.get("kind", "")
            if ext in IMAGE_TYPES and size <= MAX_INLINE_IMAGE:
                try:
                    data = base64.b64encode(store.storage.read_bytes(info["key"])).decode()
                    cell = f"<img class='artifact' alt='{e(name)}' src='data:{IMAGE_TYPES[ext]};base64,{data}'>"
                except Exception as exc:  # a missing file is shown, not fatal
                    cell = f"<small>not readable: {e(type(exc).__name__)}</small>"
            parts.append(
                f"<tr><td>{e(name)}</td><td>{e(fmt(info.get('step')))}</td><td>{e(shown_size)}</td><td>{cell}</td></tr>"
            )
        parts.append("</table>")
    return "".join(parts) if len(parts) > 1 else "<h2>Artifacts</h2><p>No artifacts recorded.</p>"


# -- lineage --------------------------------------------------------------------------------------
def lineage_graph(
    records: list[RunRecord],
) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str]]]:
    """Nodes (id -> (kind, label)) and edges: datasets -> ops -> datasets/models, ops -> commits."""
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str]] = []

    def node_for(entry: dict[str, Any]) -> str:
        kind = str(entry.get("kind") or "dataset")
        ident = entry.get("checksum") or f"{entry.get('name')}:{entry.get('version', '')}"
        nid = f"{kind}:{ident}"
        label = str(entry.get("name") or ident)
        if entry.get("version"):
            label += f" v{entry['version']}"
        elif entry.get("checksum") and label != str(entry["checksum"])[:12]:
            label += f" {str(entry['checksum'])[:8]}"
        nodes.setdefault(nid, ("model" if kind == "model" else "dataset", label))
        return nid

    for r in records:
        rid = f"op:{r.run_id}"
        pipeline_run = str(r.meta.get("pipeline_run_id") or "")
        nodes[rid] = ("op", f"{r.label} @{pipeline_run[-6:]}" if pipeline_run else r.label)
        for entry in r.inputs:
            edges.append((node_for(entry), rid))
        for entry in r.outputs:
            out = node_for(entry)
            edges.append((rid, out))
            made_at = entry.get("commit")
            if made_at and made_at != "unknown":  # a model names the commit it was trained at
                nodes.setdefault(f"commit:{made_at}", ("commit", f"commit {str(made_at)[:10]}"))
                edges.append((out, f"commit:{made_at}"))
        commit = (r.git.get("app") or r.meta.get("git") or {}).get("commit")
        if commit:
            cid = f"commit:{commit}"
            nodes.setdefault(cid, ("commit", f"commit {commit[:10]}"))
            edges.append((rid, cid))
    return nodes, list(dict.fromkeys(edges))


def _layers(nodes: dict[str, tuple[str, str]], edges: list[tuple[str, str]]) -> dict[str, int]:
    layer = {n: 0 for n in nodes}
    flow = [(a, b) for a, b in edges if nodes[b][0] != "commit"]
    for _ in range(len(nodes)):  # longest path; bounded so a cycle cannot loop forever
        changed = False
        for a, b in flow:
            if layer[b] < layer[a] + 1:
                layer[b] = layer[a] + 1
                changed = True
        if not changed:
            break
    last = max([v for n, v in layer.items() if nodes[n][0] != "commit"], default=0) + 1
    for n, (kind, _label) in nodes.items():
        if kind == "commit":
            layer[n] = last
    return layer


def lineage_svg(records: list[RunRecord]) -> str:
    nodes, edges = lineage_graph(records)
    if not nodes:
        return "<p>No lineage recorded.</p>"
    layer = _layers(nodes, edges)
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(layer[n], []).append(n)
    box_w, box_h, gap_x, gap_y = 190, 30, 70, 14
    pos: dict[str, tuple[float, float]] = {}
    for col, members in sorted(columns.items()):
        for i, n in enumerate(sorted(members, key=lambda m: nodes[m][1])):
            pos[n] = (16 + col * (box_w + gap_x), 16 + i * (box_h + gap_y))
    width = int(max(x for x, _ in pos.values()) + box_w + 16)
    height = int(max(y for _, y in pos.values()) + box_h + 16)
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
        "role='img' aria-label='lineage'><defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' "
        "markerWidth='7' markerHeight='7' orient='auto-start-reverse'><path d='M 0 0 L 10 5 L 0 10 z' fill='#888'/>"
        "</marker></defs>"
    ]
    for a, b in edges:
        (ax, ay), (bx, by) = pos[a], pos[b]
        x1, y1, x2, y2 = ax + box_w, ay + box_h / 2, bx, by + box_h / 2
        if x2 <= x1:  # same column or backwards: route around
            x1, x2 = ax + box_w / 2, bx + box_w / 2
        mid = (x1 + x2) / 2
        out.append(
            f"<path d='M {x1:.1f} {y1:.1f} C {mid:.1f} {y1:.1f}, {mid:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}' "
            "fill='none' stroke='#888' marker-end='url(#arrow)'/>"
        )
    for n, (kind, label) in nodes.items():
        x, y = pos[n]
        shown = label if len(label) <= 28 else label[:27] + "…"
        out.append(
            f"<g><title>{e(kind)}: {e(label)}</title><rect x='{x}' y='{y}' width='{box_w}' height='{box_h}' rx='6' "
            f"fill='{KIND_COLORS.get(kind, '#eee')}' stroke='#999'/><text x='{x + 8}' y='{y + 19}' font-size='12'>"
            f"{e(shown)}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)


def _lineage_section(records: list[RunRecord]) -> str:
    legend = " ".join(
        f"<span style='background:{c};border:1px solid #999;padding:1px 6px;font-size:12px'>{k}</span>"
        for k, c in KIND_COLORS.items()
    )
    return f"<h2>Lineage</h2><p>{legend}</p>{lineage_svg(records)}"


# -- notes and logs -------------------------------------------------------------------------------
def _notes_section(store: RunStore, records: list[RunRecord]) -> str:
    parts = []
    for r in records:
        bits = []
        if r.notes:
            bits.append("".join(f"<p>{e(n)}</p>" for n in r.notes))
        logs = store.logs(r.run_id)
        if logs:
            tail = logs[-20000:]
            bits.append(
                f"<details><summary>logs ({len(logs):,} characters)</summary><pre>{e(tail)}</pre></details>"
            )
        if r.output is not None:
            bits.append(
                f"<details><summary>output</summary><pre>{e(fmt(r.output))}</pre></details>"
            )
        if bits:
            parts.append(f"<h3>{e(r.run_id)}</h3>{''.join(bits)}")
    return "<h2>Notes and logs</h2>" + "".join(parts) if parts else ""
