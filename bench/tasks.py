"""bench tasks: a trivial one-to-one task over 200,000 objects in 16 chunks, 1 and 2 workers.

Ours (``OneToOne``, one job per chunk on a fork pool, outputs written straight into their
chunks) vs Hypergol 0.2.1's ``Pipeline`` running the equivalent ``Task`` (its one-to-one kind
appends one object per input) with ``threads`` 1 and 2, on the same input files. Wall clock,
medians of ``--runs``. Targets: >= 10x Hypergol, >= 1.7x from 1 to 2 workers.

    python bench/tasks.py [--objects 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import line, ratio
from datasets import Record, load_hypergol, make_objects

from hypermodel.data import BaseData, Dataset
from hypermodel.data.tasks import OneToOne

BENCH = "tasks"
REPO = {
    "branchName": "bench",
    "commitHash": "0" * 40,
    "commitMessage": "bench",
    "comitterName": "bench",
    "comitterEmail": "bench@example.com",
}


def clock(fn: Any) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its finished children)."""
    gc.collect()  # each run starts without collections owed for objects made before it
    before, t0 = os.times(), time.perf_counter()
    fn()
    wall, after = time.perf_counter() - t0, os.times()
    cpu = sum(after[:4]) - sum(before[:4])  # user + system, self + children
    return wall, cpu


def medians(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(median wall, median cpu, best wall): on a shared machine the best run is the one the
    neighbours disturbed least, so scaling is also shown on best times."""
    walls = [s[0] for s in samples]
    return statistics.median(walls), statistics.median(s[1] for s in samples), min(walls)


class Scored(BaseData, id="recordId"):
    recordId: int
    score: float


class Rescore(OneToOne):
    def run(self, record: Record) -> Scored:
        return Scored(recordId=record.recordId, score=record.score * 2)


def dataset(root: Path, data_type: type, name: str) -> Dataset:
    return Dataset(data_type, str(root), "bench", "main", name, chunkCount=16, repoData=REPO)  # type: ignore[arg-type]


def ours(root: Path, workers: int, runs: int) -> tuple[float, float, float]:
    source = dataset(root, Record, "records")
    samples = []
    for k in range(runs):
        out = dataset(root, Scored, f"ours{workers}_{k}")
        task = Rescore([source], out, workers=workers, progress=False)
        samples.append(clock(task))
        assert out.exists()
    return medians(samples)


def _publish(cls: type, qualname: str, name: str) -> type:
    """Hypergol's pool pickles tasks and data types by reference: make them module attributes.
    ``__name__`` stays what Hypergol writes as dataType; ``__qualname__`` is what pickle finds."""
    cls.__name__, cls.__qualname__, cls.__module__ = name, qualname, __name__
    globals()[qualname] = cls
    return cls


def peer(hypergol: Any, root: Path, n: int, threads: int, runs: int) -> tuple[float, float, float]:
    from datasets import hypergol_types

    HRecord, repo = hypergol_types(hypergol)
    _publish(HRecord, "HRecord", "Record")

    class HScored(hypergol.BaseData):
        def __init__(self, recordId: int, score: float):
            self.recordId = recordId
            self.score = score

        def get_id(self) -> tuple[int]:
            return (self.recordId,)

    _publish(HScored, "HScored", "Scored")

    class HRescore(hypergol.Task):
        def run(self, record: Any) -> None:
            self.output.append(HScored(recordId=record.recordId, score=record.score * 2))

    _publish(HRescore, "HRescore", "HRescore")

    def hds(data_type: type, name: str) -> Any:
        return hypergol.Dataset(
            dataType=data_type,
            location=str(root),
            project="bench",
            branch="main",
            name=name,
            repoData=repo,
            chunkCount=16,
        )

    quiet = hypergol.Logger(level=logging.ERROR)
    samples = []
    for k in range(runs):
        source, out = hds(HRecord, "records"), hds(HScored, f"theirs{threads}_{k}")
        task = HRescore(outputDataset=out, inputDatasets=[source], logger=quiet)
        pipeline = hypergol.Pipeline(tasks=[task], logger=quiet)
        samples.append(clock(lambda p=pipeline: p.run(threads=threads)))
        assert sum(1 for _ in out.open("r")) == n
    return medians(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args, _ = parser.parse_known_args()
    root = Path(tempfile.mkdtemp(prefix="hml-bench-tasks-"))
    try:
        with dataset(root, Record, "records").open("w") as writer:
            for obj in make_objects(args.objects):
                writer.append(obj)
        n, runs = args.objects, args.runs
        mine = {w: ours(root, w, runs) for w in (1, 2)}
        for w, (wall, cpu, best) in mine.items():
            line(BENCH, f"ours one-to-one {n} objects, {w} worker(s), best wall", best, runs=runs)
            line(BENCH, f"ours one-to-one {n} objects, {w} worker(s), wall", wall, runs=runs)
            line(BENCH, f"ours one-to-one {n} objects, {w} worker(s), cpu", cpu, runs=runs)
            line(BENCH, f"ours {w} worker(s) wall throughput", n / wall / 1000, "k objects/s")
        ratio(BENCH, "ours 2 workers (wall)", "ours 1 worker", mine[1][0] / mine[2][0], ">= 1.7x")
        ratio(
            BENCH, "ours 2 workers (best wall)", "ours 1 worker", mine[1][2] / mine[2][2], ">= 1.7x"
        )
        hypergol = load_hypergol()
        if hypergol is None:
            return 0
        theirs = {t: peer(hypergol, root, n, t, runs) for t in (1, 2)}
        for t, (wall, cpu, _best) in theirs.items():
            line(BENCH, f"hypergol Pipeline {n} objects, {t} thread(s), wall", wall, runs=runs)
            line(BENCH, f"hypergol Pipeline {n} objects, {t} thread(s), cpu", cpu, runs=runs)
        ratio(
            BENCH,
            "hypergol 2 threads (wall)",
            "hypergol 1 thread",
            theirs[1][0] / theirs[2][0],
            "none",
        )
        for w in (1, 2):
            ratio(
                BENCH,
                f"ours {w} worker(s) wall",
                f"hypergol {w} thread(s)",
                theirs[w][0] / mine[w][0],
                ">= 10x",
            )
            ratio(
                BENCH,
                f"ours {w} worker(s) cpu",
                f"hypergol {w} thread(s)",
                theirs[w][1] / mine[w][1],
                ">= 10x",
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
