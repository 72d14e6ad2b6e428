"""bench stream: a shuffled full pass over 200,000 records, ours vs YogaDL 0.1.4 (LMDB).

Both sides hold the same records (every shape of ``_shapes.py``, ``--shapes``; the text
shape has 10,000 records for the default 200,000) and yield the same decoded objects: ours from the gzip JSON-lines chunks through the
dataset index, YogaDL from its LMDB file of pickled objects (how its ``submit`` stores them),
each with its own true shuffle (seed 1). Also: the first-ever pass (ours builds and stores the
index), a fresh process's first shuffled pass (ours verifies every chunk against the .chk
first: the process's verdicts are forgotten before each run) and a resume 1,000 records before
the end. Wall clock, medians of ``--runs``.

The format's floor is printed next to them: inflating every chunk and parsing its lines with
msgspec into plain dicts (no objects, no shuffle, no verification, sequential memory), the
least any reader of these gzip JSON lines must do. YogaDL's pass over that floor is the most
any stream of this format could show against YogaDL.

YogaDL imports TensorFlow at import time (type hints). When TensorFlow is not installed, a
dummy ``tensorflow`` module is put into ``sys.modules`` before importing it, and the output
says so; the LMDB streaming path measured here does not use TensorFlow.

    pip install --no-deps yogadl==0.1.4 lmdb numpy filelock
    python bench/stream.py [--objects 200000] [--runs 3] [--shapes record,general,many,text]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import shutil
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import line, ratio
from _shapes import DEFAULT_SHAPES, Shape, shapes_arg

from hypermodel.data import Dataset
from hypermodel.data.deflate import decompressor
from hypermodel.data.index import index_key

try:
    from hypermodel.data.index import forget_verdicts
except ImportError:  # before streams verified chunks: nothing to forget

    def forget_verdicts() -> None:
        return None


BENCH = "stream"
FIRST = "first pass, index deleted (builds it)"
COLD = "shuffled pass, a fresh process's first (verifies every chunk)"
FLOOR = "format floor (inflate + msgspec parse to dicts, in order)"
SEED = 1
REPO = {"commitHash": "0" * 40}


def medians(
    sides: dict[str, dict[str, Callable[[], None]]], runs: int
) -> dict[str, dict[str, float]]:
    """Wall seconds of every measure, medians of ``runs``; the sides alternate run by run, so
    that a noisy moment of the shared machine hits both alike."""
    samples: dict[str, dict[str, list[float]]] = {k: {m: [] for m in v} for k, v in sides.items()}
    for _ in range(runs):
        for side, measures in sides.items():
            for what, fn in measures.items():
                gc.collect()
                t0 = time.perf_counter()
                fn()
                samples[side][what].append(time.perf_counter() - t0)
    return {k: {m: statistics.median(v) for m, v in d.items()} for k, d in samples.items()}


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


def ours(root: Path, objects: list[Any]) -> dict[str, Callable[[], None]]:
    ds = Dataset(
        type(objects[0]), str(root), "bench", "main", "records", chunkCount=16, repoData=REPO
    )
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

    chunks = [ds.storage.read_bytes(ds.chunk_key(c)) for c in ds.chunk_ids()]

    def floor() -> None:
        import msgspec

        parse = msgspec.json.Decoder().decode_lines
        got = 0
        gc.disable()  # as our decoders do: the floor pays for no collections either
        try:
            for data in chunks:
                while data:  # concatenated gzip members
                    d = decompressor()
                    got += len(parse(d.decompress(data)))
                    data = d.unused_data
        finally:
            gc.enable()
        assert got == n

    return {
        FIRST: first,
        "shuffled pass": shuffled,
        COLD: cold,
        "resume 1000 before the end": resume,
        FLOOR: floor,
    }


def peer(yogadl: Any, root: Path, objects: list[Any]) -> dict[str, Callable[[], None]]:
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
        "shuffled pass": shuffled,
        "resume 1000 before the end": resume,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shapes", default=DEFAULT_SHAPES)
    args, _ = parser.parse_known_args()
    yogadl = load_yogadl()
    for shape in shapes_arg(args.shapes):
        bench_shape(shape, args.objects, args.runs, yogadl)
    return 0


def bench_shape(shape: Shape, asked: int, runs: int, yogadl: Any) -> None:
    n = shape.count(asked)
    objects = shape.make(n)
    tag = f"{BENCH} [{shape.name}: {shape.what}]"
    root = Path(tempfile.mkdtemp(prefix="hml-bench-stream-"))
    try:
        sides = {"ours": ours(root, objects)}
        if yogadl is not None:
            sides["yogadl"] = peer(yogadl, root, objects)
        got = medians(sides, runs)
        for side, measures in got.items():
            for what, t in measures.items():
                line(tag, f"{side} {what}, {n} records", t, runs=runs)
        if yogadl is None:
            return
        mine, theirs = got["ours"], got["yogadl"]
        shuffled = theirs["shuffled pass"] / mine["shuffled pass"]
        ratio(tag, "ours shuffled pass", "yogadl shuffled pass", shuffled, ">= 2x")
        cold = theirs["shuffled pass"] / mine[COLD]
        ratio(tag, "ours fresh process's shuffled pass", "yogadl shuffled pass", cold, ">= 2x")
        first = theirs["shuffled pass"] / mine[FIRST]
        ratio(tag, "ours first pass (index build)", "yogadl shuffled pass", first, "none")
        ceiling = theirs["shuffled pass"] / mine[FLOOR]
        ratio(tag, "format floor", "yogadl shuffled pass", ceiling, "the most this format allows")
        resumed = theirs["resume 1000 before the end"] / mine["resume 1000 before the end"]
        ratio(tag, "ours resume", "yogadl resume", resumed, "none")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
