"""Metrics are buffered, flushed by size, by time and at exit, and never block the caller."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import orjson

from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.run import Run
from hypermodel.tracking.store import RunStore
from hypermodel.tracking.writer import WriterSettings


def _metric_objects(storage: LocalStorage, run: str) -> list[str]:
    return list(storage.list(f"tracking/runs/{run}/metrics"))


def _wait_for(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_nothing_written_until_a_flush(storage: LocalStorage) -> None:
    run = Run("buffered", storage=storage, settings=WriterSettings(flush_size=1000, interval=60))
    for i in range(10):
        run.add_metrics("loss", 1.0 / (i + 1), i)
    assert _metric_objects(storage, "buffered") == []
    run.flush()
    assert len(_metric_objects(storage, "buffered")) == 1
    run.close()
    assert RunStore(storage).load("buffered").metrics["loss"][-1][1] == 0.1


def test_flush_by_size_happens_in_the_background(storage: LocalStorage) -> None:
    run = Run("by-size", storage=storage, settings=WriterSettings(flush_size=100, interval=60))
    for i in range(250):
        run.add_metrics("acc", i, i)
    assert _wait_for(
        lambda: len(_metric_objects(storage, "by-size")) >= 1
    )  # long before the 60 s interval
    run.close()
    assert len(RunStore(storage).load("by-size").metrics["acc"]) == 250


def test_flush_by_time(storage: LocalStorage) -> None:
    run = Run("by-time", storage=storage, settings=WriterSettings(flush_size=10_000, interval=0.1))
    run.add_metrics("x", 1.0, 0)
    assert _wait_for(lambda: len(_metric_objects(storage, "by-time")) == 1, timeout=5)
    run.close()


def test_each_flush_is_a_new_object_never_a_rewrite(storage: LocalStorage) -> None:
    run = Run(
        "append-only", storage=storage, settings=WriterSettings(flush_size=10**9, interval=60)
    )
    for seq in range(3):
        run.add_metrics("m", seq, seq)
        run.flush()
    keys = _metric_objects(storage, "append-only")
    assert len(keys) == 3
    docs = [orjson.loads(storage.read_bytes(k)) for k in keys]
    assert [d["seq"] for d in docs] == [0, 1, 2]
    assert len({d["writer"] for d in docs}) == 1
    run.close()


def test_bad_values_are_skipped_not_raised(storage: LocalStorage) -> None:
    run = Run("bad-values", storage=storage)
    run.add_metrics("ok", 1, 0)
    run.add_metrics("bad", "not a number", 1)  # type: ignore[arg-type]
    run.add_metrics("flag", True, 2)
    report = run.close()
    assert report.invalid == 1
    metrics = RunStore(storage).load("bad-values").metrics
    assert set(metrics) == {"ok", "flag"}


class SlowRecordingStorage(LocalStorage):
    """A slow bucket (every write takes 20 ms) that records which threads wrote to it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writers: set[str] = set()

    def write_bytes(self, key: str, data: bytes) -> None:
        self.writers.add(threading.current_thread().name)
        time.sleep(0.02)
        super().write_bytes(key, data)


def test_the_caller_never_writes_even_to_a_slow_bucket(tmp_path: Path) -> None:
    # what "never blocks the caller" means, checked without a clock: every flush the 100,000
    # calls set off (one per 1,000 metrics) is written by the background thread; the cost of a
    # call is measured by the benchmark (bench/metrics.py), not here
    storage = SlowRecordingStorage(tmp_path)
    run = Run("fast", storage=storage, settings=WriterSettings(flush_size=1000, interval=60))
    caller = threading.current_thread().name
    for i in range(100_000):
        run.add_metrics("loss", 0.5, i)
    during = set(storage.writers)
    run.close()
    assert caller not in during, during
    assert len(RunStore(storage).load("fast").metrics["loss"]) == 100_000


SCRIPT = """
import sys
from hypermodel.tracking.run import Run
from hypermodel.tracking.writer import WriterSettings
run = Run("at-exit", root=sys.argv[1], settings=WriterSettings(flush_size=10**9, interval=3600))
for i in range(1000):
    run.add_metrics("loss", i, i)
run.set_note("written at exit")
# no close(), no flush(): the atexit hook writes the buffer
"""

POOL_SCRIPT = """
import sys
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from hypermodel.tracking.run import Run
from hypermodel.tracking.writer import WriterSettings

def work(i):
    run = Run("pool-exit", root=sys.argv[1], settings=WriterSettings(flush_size=10**9, interval=3600))
    for s in range(100):
        run.add_metrics(f"w{i}", s, s)
    return i

if __name__ == "__main__":
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        print(sorted(pool.map(work, range(2))))
"""


def test_atexit_flushes_the_buffer(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    root = tmp_path / "bucket"
    subprocess.run([sys.executable, str(script), str(root)], check=True, timeout=60)
    record = RunStore(LocalStorage(root)).load("at-exit")
    assert len(record.metrics["loss"]) == 1000
    assert record.notes == ["written at exit"]


def test_pool_workers_flush_when_they_exit(tmp_path: Path) -> None:
    script = tmp_path / "pool.py"
    script.write_text(textwrap.dedent(POOL_SCRIPT))
    root = tmp_path / "bucket"
    subprocess.run([sys.executable, str(script), str(root)], check=True, timeout=60)
    record = RunStore(LocalStorage(root)).load("pool-exit")
    assert {k: len(v) for k, v in record.metrics.items()} == {"w0": 100, "w1": 100}
