"""Reading tracked runs back from the bucket (the CLI and the report use this; no writes).

Layout under the app's root:
  tracking/runs/<run_id>/run.json                        created once, by the run's author
  tracking/runs/<run_id>/events/<writer>-<seq>.jsonl     states, params, config, tags, notes, ...
  tracking/runs/<run_id>/metrics/<writer>-<seq>.json     {"writer", "seq", "rows": [[key, value, step, time]]}
  tracking/runs/<run_id>/logs/<writer>-<seq>.log         captured log lines
  tracking/runs/<run_id>/artifacts[/step-<n>]/<name>     artifact files
  tracking/projects/<project>/artifacts/<name>           shared artifacts
  tracking/projects/<project>/{models,datasets}/<name>/<version>.json
  tracking/blobs/<sha256>                                content-addressed model/dataset files
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import NotFoundError, UsageError
from ..names import check_name
from ..redact import redact
from ..storage import Storage

RUNS = "tracking/runs"
RUN_ID_LENGTH = 255

STATES = ("pending", "running", "training", "completed", "failed", "stopped")


def check_run_id(value: str) -> str:
    return check_name(value, "run", max_length=RUN_ID_LENGTH)


def run_prefix(run_id: str) -> str:
    return f"{RUNS}/{check_run_id(run_id)}"


@dataclass
class RunRecord:
    """Everything recorded about one run, merged from all its writers."""

    run_id: str
    meta: dict[str, Any]
    state: str = "unknown"
    error: str | None = None
    states: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    metas: dict[str, Any] = field(default_factory=dict)
    tags: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, list[tuple[int | None, float, float]]] = field(default_factory=dict)
    git: dict[str, dict[str, Any]] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    output: Any = None
    duration: float | None = None
    writers: set[str] = field(default_factory=set)

    @property
    def started(self) -> float | None:
        value = self.meta.get("created")
        return float(value) if value is not None else None

    def last_metrics(self) -> dict[str, float]:
        out = {}
        for key, points in self.metrics.items():
            if points:
                out[key] = max(points, key=lambda p: ((p[0] if p[0] is not None else -1), p[2]))[1]
        return out

    @property
    def label(self) -> str:
        task = self.meta.get("task")
        return f"{self.meta.get('pipeline')}/{task}" if task else self.run_id


class RunStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._models: list[dict[str, Any]] | None = None

    def published_models(self) -> list[dict[str, Any]]:
        """Model references published by ``hypermodel.serving`` (``models/<name>/<version>/
        reference.json``): each names the run and task that produced it, so an op run's
        lineage shows the models it published without any wiring. Read once per store."""
        if self._models is None:
            found = []
            for key in self.storage.list("models"):
                if key.count("/") == 3 and key.endswith("/reference.json"):
                    try:
                        ref = orjson.loads(self.storage.read_bytes(key))
                    except (orjson.JSONDecodeError, NotFoundError):
                        continue
                    if isinstance(ref, dict):
                        found.append(ref)
            self._models = found
        return self._models

    # -- listing --------------------------------------------------------------------------------
    def run_ids(self) -> list[str]:
        ids = set()
        for key in self.storage.list(RUNS):
            parts = key.split("/")
            if len(parts) >= 4 and parts[3] == "run.json":
                ids.add(parts[2])
        return sorted(ids)

    def meta(self, run_id: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = orjson.loads(
                self.storage.read_bytes(f"{run_prefix(run_id)}/run.json")
            )
        except NotFoundError:
            raise NotFoundError(
                f"no tracked run '{run_id}' under {self.storage.url} (see `hml runs list`)"
            ) from None
        return data

    def resolve(self, names: list[str]) -> list[str]:
        """Run ids from exact ids, pipeline run ids (all their op runs) or unique prefixes.

        A prefix must name one run, or the op runs of one pipeline run; a prefix matching
        several is an error listing them, never a pick."""
        known = self.run_ids()
        out: list[str] = []
        for name in names:
            if not name or not name.strip():
                raise UsageError(
                    "a run id (or a unique prefix of one) is required, got an empty name "
                    "(see `hml runs list`)"
                )
            if name in known:
                found = [name]
            else:
                found = [r for r in known if r.startswith(name + ".")] or [
                    r for r in known if r.startswith(name)
                ]
            if not found:
                raise UsageError(
                    f"no tracked run matches '{name}' under {self.storage.url} (see `hml runs list`)"
                )
            groups = sorted({self._group(r) for r in found}) if len(found) > 1 else found
            if len(groups) > 1:  # several runs, not the op runs of one pipeline run
                shown = ", ".join(groups[:10]) + (
                    f" and {len(groups) - 10} more" if len(groups) > 10 else ""
                )
                raise UsageError(
                    f"'{name}' is ambiguous: it is the start of {len(groups)} runs ({shown}); "
                    "give more of the run id"
                )
            out.extend(r for r in found if r not in out)
        return out

    def _group(self, run_id: str) -> str:
        """The pipeline run an op run belongs to (from its run.json), else the run itself."""
        try:
            group = self.meta(run_id).get("pipeline_run_id")
        except (NotFoundError, ValueError, AttributeError):
            return run_id
        return str(group) if group and run_id.startswith(f"{group}.") else run_id

    # -- loading --------------------------------------------------------------------------------
    def load(self, run_id: str, *, metrics: bool = True) -> RunRecord:
        # Redacted again on the way out: runs recorded before redaction existed, or by other
        # writers, never show a secret-looking value in `hml runs` or the report.
        record = RunRecord(run_id, redact(self.meta(run_id)))
        prefix = run_prefix(run_id)
        # the creator may embed its first events in run.json (one write to start an op run)
        events: list[dict[str, Any]] = list(record.meta.pop("events", None) or [])
        for key in self.storage.list(f"{prefix}/events"):
            events.extend(_jsonl(self.storage.read_bytes(key)))
            record.writers.add(_writer_of(key))
        for event in sorted(events, key=lambda e: e.get("t", 0.0)):
            _apply(record, event)
        task, pipeline_run = record.meta.get("task"), record.meta.get("pipeline_run_id")
        if task and pipeline_run:
            for ref in self.published_models():
                if ref.get("run_id") == pipeline_run and ref.get("task") == task:
                    entry = {
                        "kind": "model",
                        "name": ref.get("name"),
                        "version": ref.get("version"),
                        "checksum": ref.get("model_sha256"),
                        "commit": ref.get("commit"),
                    }
                    if entry not in record.outputs:
                        record.outputs.append(entry)
                    for checksum in ref.get("datasets") or []:
                        ds = {"kind": "dataset", "checksum": checksum, "name": str(checksum)[:12]}
                        if all(i.get("checksum") != checksum for i in record.inputs):
                            record.inputs.append(ds)
        if metrics:
            for key in self.storage.list(f"{prefix}/metrics"):
                record.writers.add(_writer_of(key))
                for key_, value, step, t in _metric_rows(self.storage.read_bytes(key)):
                    record.metrics.setdefault(key_, []).append((step, value, t))
            for points in record.metrics.values():
                points.sort(key=lambda p: (p[0] if p[0] is not None else -1, p[2]))
        return record

    def logs(self, run_id: str) -> str:
        chunks = []
        for key in self.storage.list(f"{run_prefix(run_id)}/logs"):
            chunks.append(self.storage.read_bytes(key).decode("utf-8", "replace"))
        return "".join(chunks)

    def artifact_bytes(self, record: RunRecord, name: str) -> bytes:
        info = record.artifacts.get(name)
        if info is None:
            raise NotFoundError(f"run '{record.run_id}' has no artifact '{name}'")
        return self.storage.read_bytes(info["key"])


def _writer_of(key: str) -> str:
    return key.rsplit("/", 1)[-1].rsplit("-", 1)[0]


def _jsonl(data: bytes) -> list[dict[str, Any]]:
    out = []
    for line in data.splitlines():
        if line.strip():
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue  # a torn line from a crashed writer is skipped, not fatal
    return out


def _metric_rows(data: bytes) -> list[tuple[str, Any, Any, float]]:
    try:
        rows = orjson.loads(data).get("rows") or []
    except (orjson.JSONDecodeError, AttributeError):
        return []  # a torn object from a crashed writer is skipped, not fatal
    out = []
    for row in rows:
        if (
            isinstance(row, list)
            and len(row) == 4
            and isinstance(row[1], (int, float))
            and not isinstance(row[1], bool)
        ):
            out.append((str(row[0]), float(row[1]), row[2], float(row[3] or 0.0)))
    return out


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _apply(record: RunRecord, event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "state":
        record.states.append(event)
        record.state = str(event.get("state"))
        record.error = event.get("error")
        if event.get("duration") is not None:
            record.duration = float(event["duration"])
    elif kind == "params":
        record.params.update(redact(event.get("params") or {}))
    elif kind == "config":
        record.config = _merge(record.config, redact(event.get("config") or {}))
    elif kind == "meta":
        key = str(event.get("key"))
        record.metas[key] = redact({key: event.get("value")})[key]
    elif kind == "tag":
        if all(t.get("name") != event.get("name") for t in record.tags):
            record.tags.append({k: event.get(k) for k in ("name", "description", "color")})
    elif kind == "note":
        record.notes.append(str(event.get("text")))
    elif kind == "artifact":
        name = str(event.get("name"))
        step = event.get("step")
        record.artifacts[name if step is None else f"{name}@{step}"] = event
    elif kind == "git":
        record.git[str(event.get("name"))] = event.get("state") or {}
    elif kind == "packages":
        record.packages.update(event.get("packages") or {})
        record.machine.update(event.get("machine") or {})
    elif kind == "lineage":
        for entry in event.get("inputs") or []:
            if entry not in record.inputs:
                record.inputs.append(entry)
        for entry in event.get("outputs") or []:
            if entry not in record.outputs:
                record.outputs.append(entry)
    elif kind == "output":
        record.output = value = event.get("value")
        if isinstance(value, dict):  # an op's top-level numbers are its metrics, with no wiring
            for key, item in value.items():
                if isinstance(item, (int, float)) and not isinstance(item, bool):
                    record.metrics.setdefault(f"output/{key}", []).append(
                        (None, float(item), event.get("t", 0.0))
                    )
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            record.metrics.setdefault("output", []).append(
                (None, float(value), event.get("t", 0.0))
            )
