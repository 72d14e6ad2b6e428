"""Several processes writing to one run never lose each other's records."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.run import Run
from hypermodel.tracking.store import RunStore
from hypermodel.tracking.writer import WriterSettings

WRITER = """
import sys
from hypermodel.tracking.run import Run
from hypermodel.tracking.writer import WriterSettings
root, worker = sys.argv[1], sys.argv[2]
run = Run("shared", root=root, settings=WriterSettings(flush_size=500, interval=0.05))
for step in range(3000):
    run.add_metrics("loss", float(step), step)
    run.add_metrics(f"worker/{worker}", 1.0, step)
run.add_tag(f"worker-{worker}")
run.add_config({"workers": {worker: True}})
report = run.close()
assert report.lost == 0, report
"""


def test_processes_writing_one_run_lose_nothing(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER))
    root = tmp_path / "bucket"
    env = {**os.environ, "HML_AUTHOR": "alice@example.org"}
    procs = [
        subprocess.Popen([sys.executable, str(script), str(root), str(i)], env=env)
        for i in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    record = RunStore(LocalStorage(root)).load("shared")
    assert len(record.metrics["loss"]) == 4 * 3000
    for i in range(4):
        assert len(record.metrics[f"worker/{i}"]) == 3000
    assert sorted(t["name"] for t in record.tags) == [f"worker-{i}" for i in range(4)]
    assert record.config == {"workers": {str(i): True for i in range(4)}}
    assert len(record.writers) == 4


def test_a_forked_child_does_not_rewrite_the_parents_buffer(storage: LocalStorage) -> None:
    run = Run("forked", storage=storage, settings=WriterSettings(flush_size=10**9, interval=3600))
    run.add_metrics("parent", 1.0, 0)  # buffered, not yet written, when the child is forked
    pid = os.fork()
    if pid == 0:  # the child writes its own records under its own writer id
        try:
            run.add_metrics("child", 2.0, 0)
            run.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    run.close()
    record = RunStore(storage).load("forked")
    assert {k: len(v) for k, v in record.metrics.items()} == {"parent": 1, "child": 1}
    assert len(record.writers) == 2
