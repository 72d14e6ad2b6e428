"""bench stream: a shuffled full pass over 200,000 records, ours vs YogaDL 0.1.4 (LMDB).

Both sides hold the same records (the datasets bench's ``Record``: int id, str, float,
datetime) and yield the same decoded objects: ours from the gzip JSON-lines chunks through the
dataset index, YogaDL from its LMDB file of pickled objects (how its ``submit`` stores them),
each with its own true shuffle (seed 1). Also: the first-ever pass (ours builds and stores the
index), a fresh process's first shuffled pass (ours verifies every chunk against the .chk
first: the process's verdicts are forgotten before each run) and a resume 1,000 records before
the end. Wall clock, medians of ``--runs``.

YogaDL imports TensorFlow at import time (type hints). When TensorFlow is not installed, a
dummy ``tensorflow`` module is put into ``sys.modules`` before importing it, and the output
says so; the LMDB streaming path measured here does not use TensorFlow.

    pip install --no-deps yogadl==0.1.4 lmdb numpy filelock
    python bench/stream.py [--objects 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import line, ratio
from datasets import Record, make_objects

from hypermodel.data import Dataset
from hypermodel.data.index import index_key

try:
    from hypermodel.data.index import forget_verdicts
except ImportError:  # before streams verified chunks: nothing to forget

    def forget_verdicts() -> None:
        return None


BENCH = "stream"
SEED = 1
REPO = {"commitHash": "0" * 40}


def median(fn: Any, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return sorted(samples)[len(samples) // 2]


def load_yogadl() -> Any:
    if importlib.util.find_spec("yogadl") is None:
        print(f"{BENCH}: yogadl not installed; peer lines skipped")
        return None
    if importlib.util.find_spec("tensorflow") is None:
        tf = types.ModuleType("tensorflow")
        tf.data = types.SimpleNamespace(Dataset=type("Dataset", (), {}))  # type: ignore[attr-defined]
        tf.compat = types.SimpleNamespace(v1=types.SimpleNamespace(ConfigProto=object))  # type: ignore[attr-defined]
        sys.modules["tensorflow"] = tf
        print(
            f"{BENCH}: tensorflow absent: a dummy 'tensorflow' module stands in for yogadl's type hints"
        )
    import yogadl
    import yogadl.dataref

    return yogadl


def ours(root: Path, objects: list[Record], runs: int) -> dict[str, float]:
    ds = Dataset(Record, str(root), "bench", "main", "records", chunkCount=16, repoData=REPO)
    with ds.open("w") as writer:
        for obj in objects:
            writer.append(obj)
    n = len(objects)

    def first() -> None:
        ds.storage.delete(index_key(ds))
        assert sum(1 for _ in ds.stream(shuffle=True, shuffle_seed=SEED, epochs=1)) == n

    def shuffled() -> None:
        assert sum(1 for _ in ds.stream(shuffle=True, shuffle_seed=SEED, epochs=1)) == n

    def cold() -> None:
        forget_verdicts()
        shuffled()

    def resume() -> None:
        s = ds.stream(shuffle=True, shuffle_seed=SEED, epochs=1, start_offset=n - 1000)
        assert sum(1 for _ in s) == 1000

    return {
        "first pass (builds the index)": median(first, runs),
        "shuffled pass": median(shuffled, runs),
        "shuffled pass, a fresh process's first (verifies every chunk)": median(cold, runs),
        "resume 1000 before the end": median(resume, runs),
    }


def peer(yogadl: Any, root: Path, objects: list[Record], runs: int) -> dict[str, float]:
    path = root / "records.mdb"
    yogadl.serialize_generator_to_lmdb(iter(objects), None, None, path)
    n = len(objects)

    def shuffled() -> None:
        stream = yogadl.dataref.LMDBDataRef(path).stream(shuffle=True, shuffle_seed=SEED)
        assert sum(1 for _ in stream.iterator_fn()) == n

    def resume() -> None:
        ref = yogadl.dataref.LMDBDataRef(path)
        stream = ref.stream(shuffle=True, shuffle_seed=SEED, start_offset=n - 1000)
        assert sum(1 for _ in stream.iterator_fn()) == 1000

    return {
        "shuffled pass": median(shuffled, runs),
        "resume 1000 before the end": median(resume, runs),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args, _ = parser.parse_known_args()
    objects = make_objects(args.objects)
    root = Path(tempfile.mkdtemp(prefix="hml-bench-stream-"))
    try:
        mine = ours(root, objects, args.runs)
        for what, t in mine.items():
            line(BENCH, f"ours {what}, {args.objects} records", t, runs=args.runs)
        yogadl = load_yogadl()
        if yogadl is None:
            return 0
        theirs = peer(yogadl, root, objects, args.runs)
        for what, t in theirs.items():
            line(BENCH, f"yogadl {what}, {args.objects} records", t, runs=args.runs)
        shuffled = theirs["shuffled pass"] / mine["shuffled pass"]
        ratio(BENCH, "ours shuffled pass", "yogadl shuffled pass", shuffled, ">= 2x")
        cold = (
            theirs["shuffled pass"]
            / mine["shuffled pass, a fresh process's first (verifies every chunk)"]
        )
        ratio(BENCH, "ours fresh process's shuffled pass", "yogadl shuffled pass", cold, "none")
        first = theirs["shuffled pass"] / mine["first pass (builds the index)"]
        ratio(BENCH, "ours first pass (index build)", "yogadl shuffled pass", first, "none")
        resumed = theirs["resume 1000 before the end"] / mine["resume 1000 before the end"]
        ratio(BENCH, "ours resume", "yogadl resume", resumed, "none")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
