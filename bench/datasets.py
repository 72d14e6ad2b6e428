"""bench datasets: 200,000 objects into 16 chunks and back, for every record shape.

The shapes (``_shapes.py``): ``record`` (int, str, float, datetime: the fast paths only),
``general`` (text with non-ASCII, a nested list of floats, a bool, a datetime, an optional
nested record), ``many`` (20 small fields, some optional) and ``text`` (a 2-8 KB unicode body;
10,000 objects for the default 200,000).

Per shape, on the same objects, same machine: ours with the declared class; ours with the
class ported from Hypergol unchanged (hand-written ``__init__``, ``get_id``, ``to_data`` /
``from_data`` on hypermodel's ``BaseData``); Hypergol 0.2.1 with that class on its own
``BaseData``. The runs alternate; ``--runs N`` gives medians. Also checks that Hypergol reads
and verifies what we wrote, and prints the floor: the same lines made by C code alone
(``orjson.dumps`` of the objects' data) and deflated (zlib level 1, one call per chunk).

Hypergol is optional: without it only our lines are printed. Install it with
``pip install --no-deps hypergol==0.2.1`` plus ``Jinja2 fire tqdm pydantic GitPython
'setuptools<81'``.

    python bench/datasets.py [--objects 200000] [--runs 1] [--shapes record,general,many,text]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import line, ratio
from _shapes import (  # noqa: F401  (Record, make_objects: what tasks.py and stream.py import)
    DEFAULT_SHAPES,
    Record,
    Shape,
    make_objects,
    shapes_arg,
    to_hand,
)

from hypermodel.data import BaseData, Dataset

BENCH = "datasets"
REPO = {
    "branchName": "bench",
    "commitHash": "0" * 40,
    "commitMessage": "bench",
    "comitterName": "bench",
    "comitterEmail": "bench@example.com",
}


def timed(fn: Any) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds, result). Wall is the headline (our writer compresses and
    hashes on a second thread, which CPU time counts twice); CPU is printed beside it for a
    shared machine, where the wall clock also measures the neighbours."""
    gc.collect()  # both sides start without the collections owed for the objects made before
    t0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - t0, out


def ours(root: Path, objects: list[Any], name: str) -> tuple[float, float, float, float, Dataset]:
    """(write wall, read wall, write CPU, read CPU, dataset) with our Dataset."""
    ds = Dataset(type(objects[0]), str(root), "bench", "main", name, chunkCount=16, repoData=REPO)

    def write() -> None:
        with ds.open("w") as writer:
            for obj in objects:
                writer.append(obj)

    t_write, c_write, _ = timed(write)
    t_read, c_read, back = timed(lambda: list(ds.open("r")))
    assert len(back) == len(objects), "we lost objects"
    return t_write, t_read, c_write, c_read, ds


def load_hypergol() -> Any:
    if "-m" not in sys.argv:
        sys.argv.append("-m")  # hypergol imports TensorFlow and torch unless '-m' is in argv
    _pkg_resources_shim()
    try:
        import hypergol
    except Exception as exc:  # not installed, or a dependency missing
        print(f"{BENCH}: hypergol not available ({type(exc).__name__}: {exc}); peer lines skipped")
        return None
    return hypergol


def _pkg_resources_shim() -> None:
    """hypergol's __init__ reads its version with pkg_resources, gone from setuptools >= 81."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        import importlib.metadata
        import types

        shim = types.ModuleType("pkg_resources")

        class DistributionNotFound(Exception):
            pass

        def get_distribution(name: str) -> Any:
            return types.SimpleNamespace(version=importlib.metadata.version(name))

        shim.DistributionNotFound = DistributionNotFound  # type: ignore[attr-defined]
        shim.get_distribution = get_distribution  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim


def hypergol_repo(hypergol: Any) -> Any:
    return hypergol.RepoData(**REPO)


def hypergol_types(hypergol: Any) -> tuple[type, Any]:
    """The record shape's class as Hypergol's ``create_data_model`` writes it, and a repo."""
    from _shapes import hand_record

    return hand_record(hypergol.BaseData), hypergol_repo(hypergol)


def peer(
    hypergol: Any, root: Path, theirs: list[Any], name: str
) -> tuple[float, float, float, float]:
    ds = hypergol.Dataset(
        dataType=type(theirs[0]),
        location=str(root),
        project="bench",
        branch="main",
        name=name,
        repoData=hypergol_repo(hypergol),
        chunkCount=16,
    )

    def write() -> None:
        with ds.open("w") as writer:
            for obj in theirs:
                writer.append(obj)

    t_write, c_write, _ = timed(write)
    t_read, c_read, back = timed(lambda: list(ds.open("r")))
    assert len(back) == len(theirs)
    return t_write, t_read, c_write, c_read


def hypergol_reads_ours(hypergol: Any, root: Path, ds: Dataset, hand: type, n: int) -> bool:
    theirs = hypergol.Dataset(
        dataType=hand,
        location=str(root),
        project="bench",
        branch="main",
        name=ds.name,
        chunkCount=16,
        repoData=hypergol_repo(hypergol),
    )
    read = list(theirs.open("r"))
    return len(read) == n and theirs.chkFile.check_chk_file() is True


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.jsonl.gz"))


def floor(objects: list[Any], runs: int) -> tuple[float, float, float, float, int]:
    """The same work done by C code alone, CPU seconds, medians of ``runs`` after one warm-up
    (the first run pays the process's memory growth): (encode, deflate, inflate, parse,
    compressed bytes). Lines are ``orjson.dumps`` of each object's data (``OPT_SORT_KEYS``;
    compact UTF-8, a few percent fewer bytes than the format's lines), deflated with zlib level
    1 in 16 chunks; reading inflates them and parses each line with ``orjson.loads`` (dicts, no
    objects), with the cyclic collector paused. The data dicts are made before the clock starts."""
    import orjson

    datas = [o.to_data() for o in objects]
    dumps, loads, opt = orjson.dumps, orjson.loads, orjson.OPT_SORT_KEYS
    clock = time.process_time
    samples: list[tuple[float, float, float, float, int]] = []
    for _ in range(runs + 1):
        gc.collect()
        gc.disable()  # as our reader and stream do while they parse: nothing here has cycles
        t0 = clock()
        lines = [dumps(d, option=opt) for d in datas]
        t1 = clock()
        step = -(-len(lines) // 16)
        chunks = [b"\n".join(lines[k : k + step]) + b"\n" for k in range(0, len(lines), step)]
        t2 = clock()
        packed = [zlib.compress(c, 1) for c in chunks]
        t3 = clock()
        texts = [zlib.decompress(c) for c in packed]
        t4 = clock()
        parsed = [loads(x) for t in texts for x in t.splitlines()]
        t5 = clock()
        gc.enable()
        assert len(parsed) == len(objects)
        del parsed, lines, chunks, texts
        samples.append((t1 - t0, t3 - t2, t4 - t3, t5 - t4, sum(map(len, packed))))
    samples = samples[1:]
    enc, dfl, inf, parse = (med([s[i] for s in samples]) for i in range(4))
    return enc, dfl, inf, parse, samples[0][4]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--shapes", default=DEFAULT_SHAPES)
    args, _ = parser.parse_known_args()
    hypergol = load_hypergol()
    ok = True
    for shape in shapes_arg(args.shapes):
        ok = bench_shape(shape, args.objects, args.runs, hypergol) and ok
    return 0 if ok else 1


def med(samples: list[float]) -> float:
    return statistics.median(samples)


def bench_shape(shape: Shape, asked: int, runs: int, hypergol: Any) -> bool:
    n = shape.count(asked)
    objects = shape.make(n)
    tag = f"{BENCH} [{shape.name}: {shape.what}]"
    ported = to_hand(shape.hand(BaseData), objects)
    theirs = to_hand(shape.hand(hypergol.BaseData), objects) if hypergol else None
    root = Path(tempfile.mkdtemp(prefix="hml-bench-datasets-"))
    sides: dict[str, list[tuple[float, ...]]] = {"ours": [], "ported": [], "hypergol": []}
    try:
        ds = None
        for run in range(runs):  # alternate, so that a noisy moment hits every side alike
            *times, ds = ours(root, objects, f"ours{run}")
            sides["ours"].append(tuple(times))
            *times, _ds = ours(root, ported, f"ported{run}")
            sides["ported"].append(tuple(times))
            if theirs is not None:
                sides["hypergol"].append(peer(hypergol, root, theirs, f"peer{run}"))
        got = {k: [med([s[i] for s in v]) for i in range(4)] for k, v in sides.items() if v}
        names = {
            "ours": "hypermodel",
            "ported": "hypermodel, class ported from Hypergol",
            "hypergol": "hypergol 0.2.1",
        }
        for side, (w, r, cw, cr) in got.items():
            size = size_of(root / f"bench/main/{ {'hypergol': 'peer'}.get(side, side) }0")
            line(tag, f"{names[side]} write {n} objects, 16 chunks (wall)", w, runs=runs)
            line(tag, f"{names[side]} read {n} objects into objects (wall)", r, runs=runs)
            print(
                f"{tag}: {names[side]} {n / w:,.0f} objects/s write, {n / r:,.0f} objects/s "
                f"read, CPU write {cw:.3f}s read {cr:.3f}s, {size / 1e6:.1f} MB gz",
                flush=True,
            )
        enc, dfl, inf, parse, size = floor(objects, runs)
        print(  # CPU seconds
            f"{tag}: C floor (CPU): write {(enc + dfl) * 1000:.1f}ms (orjson lines {enc * 1000:.1f}ms + "
            f"zlib-1 {dfl * 1000:.1f}ms, {size / 1e6:.1f} MB gz), read {(inf + parse) * 1000:.1f}ms "
            f"(inflate {inf * 1000:.1f}ms + orjson.loads {parse * 1000:.1f}ms, dicts only)",
            flush=True,
        )
        w, r, cw, cr = got["ours"]
        ratio(tag, "hypermodel write (CPU)", "C floor", cw / (enc + dfl), "none")
        ratio(tag, "hypermodel read (CPU)", "C floor", cr / (inf + parse), "none")
        ratio(tag, "ported class write", "declared class", got["ported"][0] / w, "none")
        ratio(tag, "ported class read", "declared class", got["ported"][1] / r, "none")
        if theirs is None:
            return True
        pw, pr, pcw, pcr = got["hypergol"]
        ratio(tag, "hypermodel write", "hypergol write", pw / w, ">= 10x")
        ratio(tag, "hypermodel read", "hypergol read", pr / r, ">= 4x")
        ratio(tag, "hypermodel write (CPU)", "hypergol write (CPU)", pcw / cw, ">= 10x")
        ratio(tag, "hypermodel read (CPU)", "hypergol read (CPU)", pcr / cr, ">= 4x")
        ratio(tag, "ported class write", "hypergol write", pw / got["ported"][0], "none")
        ratio(tag, "ported class read", "hypergol read", pr / got["ported"][1], "none")
        assert ds is not None
        compatible = hypergol_reads_ours(hypergol, root, ds, type(theirs[0]), n)
        print(
            f"{tag}: hypergol 0.2.1 reads and verifies our files: {'yes' if compatible else 'NO'}",
            flush=True,
        )
        return compatible
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
