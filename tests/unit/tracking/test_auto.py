"""The runner makes every op execution a tracked run, with no wiring in the op."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.store import RunStore

from .ops_fixture import app


@pytest.fixture
def configured(hml_root: Path) -> LocalStorage:
    app.configure(root=str(hml_root))
    return LocalStorage(hml_root)


@pytest.mark.parametrize("workers", [0, 2])
def test_each_op_is_a_tracked_run(configured: LocalStorage, workers: int) -> None:
    result = app.pipelines.run_all("ok_pipe", {"scale": 3.0}, workers=workers)
    assert result.ok
    store = RunStore(configured)
    ids = store.run_ids()
    assert ids == [f"{result.run_id}.make", f"{result.run_id}.total"]
    make, total = (store.load(i) for i in ids)
    for r in (make, total):
        assert r.state == "completed"
        assert [s["state"] for s in r.states] == ["running", "completed"]
        assert r.meta["pipeline"] == "ok_pipe" and r.meta["pipeline_run_id"] == result.run_id
        assert r.meta["pipeline_params"] == {"scale": 3.0}
        assert r.duration is not None and r.duration >= 0
        assert "output.json" in r.artifacts
    assert make.params == {"n": 4}
    assert [p[1] for p in make.metrics["make/value"]] == [
        0.0,
        2.0,
        4.0,
        6.0,
    ]  # via hml.current_run()
    assert total.params == {"values": [0, 1, 2, 3], "scale": 3.0}
    assert total.config == {"scale": 3.0, "nested": {"depth": 2}}
    assert total.last_metrics() == {
        "output/total": 18.0,
        "output/count": 4.0,
    }  # from the output, no wiring
    assert total.output == {"total": 18.0, "count": 4}


def test_failed_op_records_the_exception(configured: LocalStorage) -> None:
    result = app.pipelines.run_all("bad_pipe", workers=0)
    assert not result.ok
    r = RunStore(configured).load(f"{result.run_id}.boom")
    assert r.state == "failed"
    assert r.error == "ValueError: boom on 2 values"
    assert "Traceback" not in (r.error or "")


def test_retries_are_attempts_of_one_run(configured: LocalStorage, tmp_path: Path) -> None:
    result = app.pipelines.run_all("retry_pipe", {"marker": str(tmp_path / "m")}, workers=0)
    assert result.ok
    r = RunStore(configured).load(f"{result.run_id}.flaky_once")
    assert [(s["state"], s["attempt"]) for s in r.states] == [
        ("running", 1),
        ("failed", 1),
        ("running", 2),
        ("completed", 2),
    ]
    assert r.state == "completed"


def test_run_single_is_tracked_too(configured: LocalStorage) -> None:
    result = app.pipelines.run_op("ok_pipe", "make", {"n": 2}, run_id="single-run")
    assert result.status == "succeeded"
    r = RunStore(configured).load("single-run.make")
    assert r.state == "completed" and r.params == {"n": 2}


def test_tracking_adds_little_to_twenty_noop_ops(
    configured: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import statistics

    import hypermodel.tracking.auto as auto

    def median_run() -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            assert app.pipelines.run_all("chain", workers=0).ok
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    app.pipelines.run_all("chain", workers=0)  # warm imports
    tracked = median_run()
    assert len(RunStore(configured).run_ids()) == 4 * 20
    monkeypatch.setattr(auto, "op_scope", contextlib.nullcontext)
    untracked = median_run()
    per_op = (tracked - untracked) / 20
    # two small writes per op; generous bounds for a loaded 2-core CI machine
    assert tracked < 1.0 and per_op < 0.010, f"tracked {tracked:.3f}s, untracked {untracked:.3f}s"


def test_unreachable_bucket_never_fails_an_op(
    configured: LocalStorage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import hypermodel.tracking.auto as auto

    def broken(ctx: object) -> object:
        return ConnectionError("bucket unreachable")

    monkeypatch.setattr(auto, "_storage", broken)
    result = app.pipelines.run_all("ok_pipe", workers=0)
    assert result.ok
    assert any("dry mode" in r.getMessage() for r in caplog.records)


def test_dataset_checksums_from_the_context_are_lineage(configured: LocalStorage) -> None:
    result = app.pipelines.run_all("data_pipe", workers=0)
    r = RunStore(configured).load(f"{result.run_id}.reads_and_writes")
    assert [i["checksum"] for i in r.inputs] == ["a" * 40]
    assert [o["checksum"] for o in r.outputs] == ["b" * 40]


@pytest.mark.parametrize("workers", [0, 2])
def test_chunk_jobs_in_forked_workers_write_to_the_op_run(
    configured: LocalStorage, workers: int
) -> None:
    result = app.pipelines.run_all("fan_pipe", workers=workers)
    assert result.ok, result.failed.error if result.failed else ""
    r = RunStore(configured).load(f"{result.run_id}.fan_out")
    assert {k: len(v) for k, v in r.metrics.items() if k.startswith("chunk/")} == {
        f"chunk/{i}": 50 for i in range(4)
    }
    assert len(r.metrics["parent"]) == 1
    # the op's process and the chunk workers write under their own ids (one worker may take
    # every job when it is quick, so two ids is the least that proves it)
    assert len(r.writers) >= 2
