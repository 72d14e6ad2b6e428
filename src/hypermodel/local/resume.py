"""``run-all --resume RUN_ID``: run again only what did not succeed in an earlier run.

Ops that succeeded there (or were cached or resumed there) take that run's stored outputs
(``runs/<run_id>/outputs/<task>.json``) as a cache hit would; the rest run. The new run has a
new id, records ``resumed_from`` and keeps the parameters of the run it resumes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..errors import NotFoundError, UsageError
from ..names import is_safe_name
from ..redact import holds_redaction, is_secret_name, redact
from ..tracking.store import RUN_ID_LENGTH
from .results import DONE, RESUMED, RUNNING
from .runner import resolve_params
from .store import dumps

if TYPE_CHECKING:
    from ..dsl.pipeline import Pipeline
    from .runner import RunState
    from .spec import LocalApp


def load_previous(app: LocalApp, pipeline: Pipeline, run_id: str) -> dict[str, Any]:
    """The record of the run to resume; a UsageError naming it when there is none."""
    root = app.settings.root
    missing = (
        f"no run '{run_id}' to resume under {root}/runs/: pass the id of an earlier run-all "
        f"(`hml runs list` shows it before each op's name; the folders in {root}/runs/ are the ids)"
    )
    if not is_safe_name(run_id, RUN_ID_LENGTH):
        raise UsageError(missing)
    try:
        record: dict[str, Any] = orjson.loads(app.storage().read_bytes(f"runs/{run_id}/run.json"))
    except NotFoundError:
        raise UsageError(missing) from None
    recorded = record.get("pipeline")
    if recorded != pipeline.name:
        raise UsageError(
            f"run '{run_id}' is a run of pipeline '{recorded}', not '{pipeline.name}': resume it "
            f"with `{app.package_entrypoint} pipelines {recorded} run-all --resume {run_id}`"
        )
    record["run_id"] = run_id
    return record


def resume_params(
    pipeline: Pipeline, previous: dict[str, Any], given: dict[str, Any]
) -> dict[str, Any]:
    """The resumed run's parameters: those it ran with. A given one must be the same value;
    a secret-looking one (recorded redacted) must be given again."""
    run_id, recorded = previous["run_id"], previous.get("params") or {}
    merged: dict[str, Any] = {}
    for p in pipeline.params:
        if p.name in given or p.name not in recorded:
            continue  # given, or added to the pipeline since: its default
        if is_secret_name(p.name) and recorded[p.name] is not None:
            raise UsageError(
                f"run '{run_id}': parameter '{p.name}' was not recorded (its name looks secret); "
                f"pass {p.option} again to resume the run"
            )
        if holds_redaction(recorded[p.name]):
            raise UsageError(
                f"run '{run_id}': parameter '{p.name}' was recorded with a credential masked "
                f"({recorded[p.name]!r}); pass {p.option} again to resume the run"
            )
        merged[p.name] = recorded[p.name]
    values = resolve_params(pipeline, {**merged, **given})
    for name in given:
        if name in recorded and not is_secret_name(name):
            if dumps(redact(values[name])) != dumps(recorded[name]):  # as it was recorded
                option = "--" + name.replace("_", "-")
                raise UsageError(
                    f"run '{run_id}' ran with {option} {recorded[name]!r}, not "
                    f"{redact(values[name])!r}: "
                    f"--resume keeps the parameters of the run it resumes; leave out {option}, "
                    "or start a new run without --resume"
                )
    return values


def take_outputs(state: RunState, previous: dict[str, Any]) -> None:
    """Ops done in the earlier run take its stored outputs (and their upstream ops too).

    A run recorded as still running ended without its last record (killed): an op's output is
    stored only when it succeeded, so there the stored outputs say what was done."""
    run_id = previous["run_id"]
    crashed = previous.get("status") == RUNNING
    done = {t.get("name") for t in previous.get("tasks") or [] if t.get("status") in DONE}
    state.resumed_from = run_id
    for task in state.pipeline:  # dependency order: upstream ops are decided first
        if task.name not in done and not crashed:
            continue
        if any(state.results[d].status != RESUMED for d in task.dependencies()):
            continue  # an upstream op runs again: so does this one
        try:
            key = f"runs/{run_id}/outputs/{task.name}.json"
            stored = orjson.loads(state.store.storage.read_bytes(key))
        except NotFoundError:
            continue  # its output is gone: run it again
        _take(state, task.name, stored, run_id)


def _take(state: RunState, name: str, stored: dict[str, Any], run_id: str) -> None:
    result = state.results[name]
    result.status, result.output = RESUMED, stored.get("output")
    result.cache_key = str(stored.get("cache_key") or "")
    result.resumed_from = run_id
    state.outputs[name] = result.output
    state.keys[name] = result.cache_key
    meta = {"cache_key": result.cache_key, "resumed_from": run_id}
    state.store.save(state.run_id, state.pipeline.name, name, result.output, meta)
