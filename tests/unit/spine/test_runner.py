from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from hypermodel import hml
from hypermodel.errors import UsageError

from . import apps


@pytest.fixture
def app(hml_root: Path) -> hml.HmlApp:
    return apps.make_app().configure(root=str(hml_root))


@pytest.mark.parametrize("workers", [0, 2])
def test_run_all_flows_params_literals_and_outputs(app: hml.HmlApp, workers: int) -> None:
    result = app.pipelines.run_all("basic", {"depth": 5}, workers=workers)
    assert result.ok, result.failed
    assert result.outputs["load"] == "data-500"
    assert result.outputs["train"]["depth"] == 5 and result.outputs["train-2"]["depth"] == 7
    assert result.outputs["combine"] == pytest.approx(0.5 * 5 + 0.5 * 7)
    stored = app.storage().read_bytes(f"runs/{result.run_id}/outputs/combine.json")
    assert orjson.loads(stored)["output"] == result.outputs["combine"]


def test_independent_ops_run_in_parallel(app: hml.HmlApp) -> None:
    result = app.pipelines.run_all("parallel", {"seconds": 0.6}, workers=2)
    starts = sorted(result.outputs.values())
    assert result.ok and len(starts) == 2
    # both started before either could have finished
    assert starts[1] - starts[0] < 0.5
    assert result.duration < 1.1


def test_retries_until_success(app: hml.HmlApp, tmp_path: Path) -> None:
    @hml.pipeline(app.pipelines)
    def retrying(counter: str = str(tmp_path / "count")):
        apps.flaky(counter=counter, fail_times=2)

    result = app.pipelines.run_all("retrying", workers=1)
    task = result.tasks["flaky"]
    assert (task.status, task.attempts, task.output) == ("succeeded", 3, 3)


def test_failure_after_last_retry_skips_downstream_and_records_nothing(app: hml.HmlApp) -> None:
    result = app.pipelines.run_all("failing", workers=2)
    tasks = result.tasks
    assert not result.ok
    assert tasks["broken"].status == "failed" and tasks["broken"].attempts == 2
    assert "ValueError: broken on purpose" in tasks["broken"].error
    assert tasks["after_broken"].status == "skipped"
    storage = app.storage()
    assert not storage.exists(f"runs/{result.run_id}/outputs/broken.json")
    assert not storage.exists("pipelines/failing/latest/broken.json")
    run = orjson.loads(storage.read_bytes(f"runs/{result.run_id}/run.json"))
    assert run["status"] == "failed"


def test_cache_hits_and_invalidation(app: hml.HmlApp) -> None:
    first = app.pipelines.run_all("basic", {"depth": 4}, workers=0)
    assert first.tasks["train"].status == "succeeded"
    second = app.pipelines.run_all("basic", {"depth": 4}, workers=0)
    assert second.tasks["train"].status == "cached" and second.tasks["train"].cache_hit
    assert second.outputs["train"] == first.outputs["train"]
    assert second.tasks["load"].status == "succeeded"  # not a cached op
    changed = app.pipelines.run_all("basic", {"depth": 6}, workers=0)
    assert changed.tasks["train"].status == "succeeded"
    assert changed.tasks["train-2"].status == "cached"  # its arguments did not change
    forced = app.pipelines.run_all("basic", {"depth": 4}, workers=0, cache=False)
    assert forced.tasks["train"].status == "succeeded"


def test_cache_key_depends_on_upstream_output(app: hml.HmlApp) -> None:
    app2 = hml.HmlApp(name="up").configure(root=app.settings.root)

    @hml.pipeline(app2.pipelines)
    def p(rows: int = 1):
        apps.train(dataset=apps.load(rows=rows))

    assert app2.pipelines.run_all("p", {"rows": 1}, workers=0).tasks["train"].status == "succeeded"
    assert app2.pipelines.run_all("p", {"rows": 1}, workers=0).tasks["train"].status == "cached"
    assert app2.pipelines.run_all("p", {"rows": 2}, workers=0).tasks["train"].status == "succeeded"


def test_context_inside_op(app: hml.HmlApp, monkeypatch: pytest.MonkeyPatch) -> None:
    app2 = (
        hml.HmlApp(name="ctx").configure(root=app.settings.root).with_env("SPINE_ENV", "from-app")
    )
    monkeypatch.delenv("SPINE_ENV", raising=False)

    @hml.pipeline(app2.pipelines)
    def p():
        apps.show_context()

    result = app2.pipelines.run_all("p", workers=1)
    out = result.outputs["show_context"]
    assert (
        out["run_id"] == result.run_id and out["pipeline"] == "p" and out["task"] == "show_context"
    )
    assert out["attempt"] == 1 and out["env"] == "from-app"
    assert out["workdir"].startswith(app.settings.root)
    with pytest.raises(hml.HypermodelError, match="outside a running op"):
        hml.context()


def test_non_json_output_fails_the_op_with_a_clear_message(app: hml.HmlApp) -> None:
    app2 = hml.HmlApp(name="nj").configure(root=app.settings.root)

    @hml.pipeline(app2.pipelines)
    def p():
        apps.not_json()

    result = app2.pipelines.run_all("p", workers=0)
    assert result.tasks["not_json"].status == "failed"
    assert "cannot be stored as JSON" in result.tasks["not_json"].error


def test_cluster_only_settings_are_reported_not_dropped(app: hml.HmlApp) -> None:
    single = app.pipelines.run_op("failing", "heavy")
    assert {"cpu=2", "memory=4Gi"} <= set(single.notes)
    assert "image=registry.example/spine:1" not in single.notes  # the app image is not noise


def test_single_op_uses_stored_upstream_output(app: hml.HmlApp) -> None:
    with pytest.raises(UsageError, match="comes from op 'load', which has no stored output"):
        app.pipelines.run_op("basic", "train")
    app.pipelines.run_op("basic", "load", {"rows": 10})
    result = app.pipelines.run_op("basic", "train", {"depth": 9})
    assert result.output["dataset"] == "data-10" and result.output["depth"] == 9


def test_pipeline_parameter_errors(app: hml.HmlApp) -> None:
    with pytest.raises(UsageError, match="unknown parameter 'dpth'"):
        app.pipelines.run_all("basic", {"dpth": 1})
    with pytest.raises(UsageError, match="parameter 'depth'"):
        app.pipelines.run_all("basic", {"depth": "deep"})


def test_an_ops_traceback_drops_the_runners_frames_and_the_library_frames_below_a_deliberate_error() -> (
    None
):
    from hypermodel.data import BaseData, Dataset
    from hypermodel.local.execute import user_traceback

    class Thing(BaseData, id="thingId"):
        thingId: int

    def users_code() -> None:
        Dataset(Thing, "/tmp", "p", "main", "bad/name")  # refused: the name leaves its root

    try:
        users_code()
    except Exception as exc:
        text = user_traceback(exc)
    assert "in users_code" in text and "DatasetUsageError: dataset name 'bad/name'" in text
    assert "direct cause" not in text  # the message already says what its cause said
    assert "/hypermodel/" not in text  # the frames inside the library say nothing to fix
    try:
        {}["missing"]
    except KeyError as exc:  # not ours: the whole stack is kept
        assert "in test_an_ops_traceback" in user_traceback(exc)
