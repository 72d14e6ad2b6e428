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
