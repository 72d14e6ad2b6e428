"""Runs tracked in real buckets (fake-gcs-server, moto S3): concurrent writers, op runs, report."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hypermodel.storage import open_storage
from hypermodel.tracking.report import render
from hypermodel.tracking.store import RunStore
from tests.unit.tracking.ops_fixture import app

pytestmark = pytest.mark.integration

WRITER = """
import sys
from hypermodel.tracking.run import Run
from hypermodel.tracking.writer import WriterSettings
run = Run("bucket-shared", root=sys.argv[1], settings=WriterSettings(flush_size=300, interval=0.2))
for step in range(1000):
    run.add_metrics("loss", 1.0 / (step + 1), step)
run.add_tag("writer-" + sys.argv[2])
report = run.close()
assert run.mode == "write" and report.lost == 0, (run.mode, report)
"""


@pytest.fixture(params=["gcs", "s3"])
def bucket_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def test_concurrent_processes_write_one_run_in_a_bucket(bucket_url: str, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER))
    env = {**os.environ, "HML_AUTHOR": "alice@example.org"}
    procs = [
        subprocess.Popen([sys.executable, str(script), bucket_url, str(i)], env=env)
        for i in range(3)
    ]
    assert [p.wait(timeout=180) for p in procs] == [0, 0, 0]
    store = RunStore(open_storage(bucket_url))
    record = store.load("bucket-shared")
    assert len(record.metrics["loss"]) == 3 * 1000
    assert sorted(t["name"] for t in record.tags) == ["writer-0", "writer-1", "writer-2"]
    assert len(record.writers) == 3
    page = render(store, ["bucket-shared"])
    assert page.count("<polyline") == 1


def test_op_runs_are_tracked_in_the_bucket(
    bucket_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.configure(root=bucket_url)
    result = app.pipelines.run_all("ok_pipe", {"scale": 2.0}, workers=0)
    assert result.ok
    store = RunStore(open_storage(bucket_url))
    total = store.load(f"{result.run_id}.total")
    assert total.state == "completed" and total.params == {"values": [0, 1, 2, 3], "scale": 2.0}
    assert total.last_metrics()["output/total"] == 12.0
    make = store.load(f"{result.run_id}.make")
    assert [p[1] for p in make.metrics["make/value"]] == [0.0, 2.0, 4.0, 6.0]


def test_bucket_dying_mid_run_never_breaks_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A private moto server is killed while a run writes to it: the training loop goes on,
    records are kept up to the bound, and what was lost is reported at close."""
    import logging
    import time

    from hypermodel.tracking.run import Run
    from hypermodel.tracking.writer import WriterSettings
    from tests.support import free_port, unavailable, wait_for_port

    binary = Path(sys.executable).parent / "moto_server"
    if not binary.exists():
        unavailable("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc, timeout=30)
        for name, value in (
            ("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}"),
            ("HML_S3_ENDPOINT", f"http://127.0.0.1:{port}"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_MAX_ATTEMPTS", "1"),
        ):
            monkeypatch.setenv(name, value)
        storage = open_storage("s3://dying-bucket")
        storage.fs.mkdir("dying-bucket")  # type: ignore[attr-defined]
        run = Run(
            "dies",
            root="s3://dying-bucket/hml",
            settings=WriterSettings(
                flush_size=10**9, interval=3600, max_pending=500, close_timeout=60
            ),
        )
        assert run.mode == "write"
        run.add_metrics("loss", 1.0, 0)
        run.flush()  # written while the bucket is alive
    finally:
        proc.kill()
        proc.wait(timeout=10)
    t0 = time.perf_counter()
    for step in range(1, 2001):
        run.add_metrics("loss", 1.0 / step, step)
    assert time.perf_counter() - t0 < 1.0  # the caller never waits for the dead bucket
    run.flush()
    report = run.close()
    assert report.records.get("metrics") == 1
    assert report.dropped == {"metrics": 2000}
    messages = [
        r.getMessage()
        for r in caplog.records
        if r.name == "hypermodel.tracking" and r.levelno >= logging.WARNING
    ]
    assert any("cannot write to s3://dying-bucket/hml" in m for m in messages)
    assert any("2000 metrics record(s) could not be written" in m for m in messages)
