"""bench datasets: 200,000 objects into 16 chunks and back, for two record shapes.

- ``record``: int id, short str, float, datetime (the fast paths only);
- ``general``: int id, a 40-80 character str with some non-ASCII, a 2x4 nested list of
  floats, a bool, a datetime and an optional nested record (set on every other object).

Ours vs Hypergol 0.2.1 on the same objects, same machine, one run each (``--runs N`` for
medians; ``--shapes record`` or ``--shapes general`` for one). Also checks that Hypergol reads what we wrote. Hypergol is optional: without it only
our lines are printed. Install it with ``pip install --no-deps hypergol==0.2.1`` plus
``Jinja2 fire tqdm pydantic GitPython 'setuptools<81'``.

    python bench/datasets.py [--objects 200000] [--runs 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import line, ratio

from hypermodel.data import BaseData, Dataset

BENCH = "datasets"
START = dt.datetime(2026, 1, 1, 12, 0, 0)


class Record(BaseData, id="recordId"):
    recordId: int
    name: str
    score: float
    created: dt.datetime


def make_objects(n: int) -> list[Record]:
    return [
        Record(
            i,
            f"record number {i}",
            i * 0.731,
            START + dt.timedelta(seconds=i, microseconds=i % 997),
        )
        for i in range(n)
    ]


class Note(BaseData):
    author: str
    rating: float


class Entry(BaseData, id="entryId"):
    entryId: int
    text: str
    matrix: list[list[float]]
    active: bool
    created: dt.datetime
    note: Note | None = None


def make_entries(n: int) -> list[Entry]:
    out = []
    for i in range(n):
        text = f"entrée {i}: naïve café, ñandú über straße " + "x" * (i % 37)
        matrix = [[(i * 0.37 + j * 1.1 + k * 0.013) % 97.5 for k in range(4)] for j in range(2)]
        note = Note(f"auteur {i % 113}", (i % 50) / 7) if i % 2 else None
        created = START + dt.timedelta(seconds=i, microseconds=i % 997)
        out.append(Entry(i, text, matrix, i % 3 == 0, created, note))
    return out


def timed(fn: Any) -> tuple[float, Any]:
    """Wall seconds (the headline: our writer compresses and hashes on a second thread, which
    CPU time would count twice; run it on a quiet machine). CPU seconds of the process go to
    CPU, printed beside for a shared machine, where the wall clock also measures neighbours."""
    gc.collect()  # both sides start without the collections owed for the objects made before
    t0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    CPU.append(time.process_time() - t0)
    return time.perf_counter() - w0, out


CPU: list[float] = []


def ours(root: Path, objects: list[Any], name: str) -> tuple[float, float, Dataset]:
    ds = Dataset(
        type(objects[0]),
        str(root),
        "bench",
        "main",
        name,
        chunkCount=16,
        repoData={
            "branchName": "bench",
            "commitHash": "0" * 40,
            "commitMessage": "bench",
            "comitterName": "bench",
            "comitterEmail": "bench@example.com",
        },
    )

    def write() -> None:
        with ds.open("w") as writer:
            for obj in objects:
                writer.append(obj)

    t_write, _ = timed(write)
    t_read, back = timed(lambda: list(ds.open("r")))
    assert len(back) == len(objects), "we lost objects"
    return t_write, t_read, ds


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


def hypergol_types(hypergol: Any) -> tuple[type, Any]:
    class HRecord(hypergol.BaseData):  # the shape `create_data_model` generates
        def __init__(self, recordId: int, name: str, score: float, created: dt.datetime):
            self.recordId = recordId
            self.name = name
            self.score = score
            self.created = created

        def get_id(self) -> tuple[int]:
            return (self.recordId,)

        def to_data(self) -> dict[str, Any]:
            data = self.__dict__.copy()
            data["created"] = data["created"].isoformat()
            return data

        @classmethod
        def from_data(cls, data: dict[str, Any]) -> HRecord:
            data["created"] = dt.datetime.fromisoformat(data["created"])
            return cls(**data)

    HRecord.__name__ = HRecord.__qualname__ = "Record"  # same dataType in the .def files
    repo = hypergol.RepoData(
        branchName="bench",
        commitHash="0" * 40,
        commitMessage="bench",
        comitterName="bench",
        comitterEmail="bench@example.com",
    )
    return HRecord, repo


def general_types(hypergol: Any) -> tuple[type, Any]:
    """The general shape as a Hypergol user writes it (``create_data_model``'s style)."""

    class HNote(hypergol.BaseData):
        def __init__(self, author: str, rating: float):
            self.author = author
            self.rating = rating

    class HEntry(hypergol.BaseData):
        def __init__(self, entryId, text, matrix, active, created, note=None):  # type: ignore[no-untyped-def]
            self.entryId = entryId
            self.text = text
            self.matrix = matrix
            self.active = active
            self.created = created
            self.note = note

        def get_id(self) -> tuple[int]:
            return (self.entryId,)

        def to_data(self) -> dict[str, Any]:
            data = self.__dict__.copy()
            data["created"] = data["created"].isoformat()
            data["note"] = None if data["note"] is None else data["note"].to_data()
            return data

        @classmethod
        def from_data(cls, data: dict[str, Any]) -> HEntry:
            data["created"] = dt.datetime.fromisoformat(data["created"])
            data["note"] = None if data["note"] is None else HNote.from_data(data["note"])
            return cls(**data)

    HNote.__name__ = HNote.__qualname__ = "Note"
    HEntry.__name__ = HEntry.__qualname__ = "Entry"
    HEntry.note_type = HNote  # type: ignore[attr-defined]
    _record, repo = hypergol_types(hypergol)
    return HEntry, repo


def theirs_of(hypergol: Any, objects: list[Any]) -> tuple[type, Any, list[Any]]:
    if isinstance(objects[0], Record):
        HRecord, repo = hypergol_types(hypergol)
        return HRecord, repo, [HRecord(o.recordId, o.name, o.score, o.created) for o in objects]
    HEntry, repo = general_types(hypergol)
    HNote = HEntry.note_type  # type: ignore[attr-defined]
    made = [
        HEntry(
            o.entryId,
            o.text,
            [list(row) for row in o.matrix],
            o.active,
            o.created,
            None if o.note is None else HNote(o.note.author, o.note.rating),
        )
        for o in objects
    ]
    return HEntry, repo, made


def peer(hypergol: Any, root: Path, objects: list[Any], name: str) -> tuple[float, float]:
    HRecord, repo, theirs = theirs_of(hypergol, objects)
    ds = hypergol.Dataset(
        dataType=HRecord,
        location=str(root),
        project="bench",
        branch="main",
        name=name,
        repoData=repo,
        chunkCount=16,
    )

    def write() -> None:
        with ds.open("w") as writer:
            for obj in theirs:
                writer.append(obj)

    t_write, _ = timed(write)
    t_read, back = timed(lambda: list(ds.open("r")))
    assert len(back) == len(objects)
    return t_write, t_read


def hypergol_reads_ours(hypergol: Any, root: Path, ds: Dataset, n: int) -> bool:
    HRecord, _repo = (general_types if ds.dataType is Entry else hypergol_types)(hypergol)
    theirs = hypergol.Dataset(
        dataType=HRecord,
        location=str(root),
        project="bench",
        branch="main",
        name=ds.name,
        chunkCount=16,
        repoData=_repo,
    )
    read = list(theirs.open("r"))
    return len(read) == n and theirs.chkFile.check_chk_file() is True


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.jsonl.gz"))


SHAPES = {
    "record": ("int, str, float, datetime", make_objects),
    "general": ("int, text, 2x4 floats, bool, datetime, optional record", make_entries),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--shapes", default="record,general")
    args, _ = parser.parse_known_args()
    hypergol = load_hypergol()
    ok = True
    for shape in args.shapes.split(","):
        ok = bench_shape(shape, args.objects, args.runs, hypergol) and ok
    return 0 if ok else 1


def bench_shape(shape: str, n: int, runs: int, hypergol: Any) -> bool:
    what, make = SHAPES[shape]
    objects = make(n)
    tag = f"{BENCH} [{shape}: {what}]"
    root = Path(tempfile.mkdtemp(prefix="hml-bench-datasets-"))
    del CPU[:]
    try:
        w_ours, r_ours, w_peer, r_peer = [], [], [], []
        for run in range(runs):
            w, r, ds = ours(root, objects, f"ours{run}")
            w_ours.append(w)
            r_ours.append(r)
            if hypergol is not None:
                w, r = peer(hypergol, root, objects, f"peer{run}")
                w_peer.append(w)
                r_peer.append(r)
        med = sorted(w_ours)[len(w_ours) // 2], sorted(r_ours)[len(r_ours) // 2]
        line(tag, f"hypermodel write {n} objects, 16 chunks (wall)", med[0], runs=runs)
        line(tag, f"hypermodel read {n} objects into objects (wall)", med[1], runs=runs)
        print(
            f"{tag}: hypermodel {n / med[0]:,.0f} objects/s write, {n / med[1]:,.0f} objects/s read, "
            f"{size_of(root / 'bench/main/ours0') / 1e6:.1f} MB gz",
            flush=True,
        )
        if hypergol is None:
            return True
        peer_med = sorted(w_peer)[len(w_peer) // 2], sorted(r_peer)[len(r_peer) // 2]
        line(tag, f"hypergol 0.2.1 write {n} objects, 16 chunks (wall)", peer_med[0], runs=runs)
        line(tag, f"hypergol 0.2.1 read {n} objects into objects (wall)", peer_med[1], runs=runs)
        print(
            f"{tag}: hypergol {n / peer_med[0]:,.0f} objects/s write, {n / peer_med[1]:,.0f} objects/s read, "
            f"{size_of(root / 'bench/main/peer0') / 1e6:.1f} MB gz",
            flush=True,
        )
        ratio(tag, "hypermodel write", "hypergol write", peer_med[0] / med[0], ">= 10x")
        ratio(tag, "hypermodel read", "hypergol read", peer_med[1] / med[1], ">= 4x")
        if runs == 1:
            cpu = dict(
                zip(["ours write", "ours read", "peer write", "peer read"], CPU, strict=False)
            )
            print(
                f"{tag}: CPU time (both threads): ours write {cpu['ours write']:.3f}s, "
                f"read {cpu['ours read']:.3f}s; hypergol write {cpu['peer write']:.3f}s, "
                f"read {cpu['peer read']:.3f}s; CPU ratios write "
                f"{cpu['peer write'] / cpu['ours write']:.2f}x, "
                f"read {cpu['peer read'] / cpu['ours read']:.2f}x",
                flush=True,
            )
        compatible = hypergol_reads_ours(hypergol, root, ds, n)
        print(
            f"{tag}: hypergol 0.2.1 reads and verifies our files: {'yes' if compatible else 'NO'}",
            flush=True,
        )
        return compatible
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
