"""Dry mode: an unreachable bucket never breaks training; later failures are bounded and reported."""

from __future__ import annotations

import logging
import time

import pytest

from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.run import Run
from hypermodel.tracking.store import RunStore
from hypermodel.tracking.writer import WriterSettings
from tests.support import free_port, require_module

from .conftest import FlakyStorage


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "hypermodel.tracking" and r.levelno >= logging.WARNING
    ]


def test_unreachable_at_start_goes_dry_and_warns_once(
    flaky: FlakyStorage, caplog: pytest.LogCaptureFixture
) -> None:
    flaky.failing = True
    run = Run("dry", storage=flaky)
    assert run.dry
    for i in range(1000):
        run.add_metrics("loss", i, i)
    run.add_config({"a": 1})
    run.add_tag("t")
    run.set_note("n")
    run.completed()
    run.add_artifact(__file__)
    assert run.add_mlmodel(__file__, "m", "1") is None
    run.start_recording_logs("dry-test").info("not recorded")
    run.close()
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "dry mode" in warnings[0] and "s3://flaky-bucket" in warnings[0]
    assert flaky.failed_calls == 1  # only the start probe touched the bucket


def test_a_hanging_bucket_goes_dry_after_the_start_timeout(flaky: FlakyStorage) -> None:
    flaky.hang = 5.0
    t0 = time.perf_counter()
    run = Run("hangs", storage=flaky, start_timeout=0.3)
    assert run.dry
    assert time.perf_counter() - t0 < 2.0
    run.add_metrics("x", 1.0)


def test_s3_url_on_a_closed_port_goes_dry(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    t0 = time.perf_counter()
    run = Run("s3-closed", root="s3://hml-test-bucket/prefix", start_timeout=5)
    assert run.dry
    assert time.perf_counter() - t0 < 10
    for i in range(100):
        run.add_metrics("loss", i, i)
    run.close()
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "s3://hml-test-bucket/prefix" in warnings[0]
    # without the s3 extra the URL cannot even be opened (dry for that reason): the check of
    # why it went dry needs s3fs, which `make test` installs
    require_module("s3fs")
    assert "Connect" in warnings[0] or "Timeout" in warnings[0], warnings[0]


def test_failing_mid_run_buffers_with_a_bound_and_reports_drops(
    flaky: FlakyStorage, storage: LocalStorage, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run(
        "mid",
        storage=flaky,
        settings=WriterSettings(flush_size=10**9, interval=3600, max_pending=1000, close_timeout=5),
    )
    assert run.mode == "write"
    flaky.failing = True
    for batch in range(5):  # five flushes of 400 records each fail; only 1000 records are kept
        for i in range(400):
            run.add_metrics("loss", float(i), batch * 400 + i)
        run.flush()
    report = run.close()
    assert report.dropped["metrics"] == 2000
    messages = _warnings(caplog)
    assert any("cannot write to s3://flaky-bucket" in m for m in messages)
    assert any("2000 metrics record(s) could not be written" in m for m in messages)


def test_recovers_and_writes_what_it_kept(flaky: FlakyStorage, storage: LocalStorage) -> None:
    run = Run(
        "recovers",
        storage=flaky,
        settings=WriterSettings(flush_size=10**9, interval=3600, max_pending=1000),
    )
    flaky.failing = True
    for batch in range(3):
        for i in range(400):
            run.add_metrics("loss", float(i), batch * 400 + i)
        run.flush()
    flaky.failing = False  # the bucket is back: the kept records (the newest 800) are written
    report = run.close()
    assert report.dropped == {"metrics": 400}
    steps = [p[0] for p in RunStore(storage).load("recovers").metrics["loss"]]
    assert steps == list(range(400, 1200))
