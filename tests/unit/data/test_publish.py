"""Publishing: two writers of one dataset truly interleaved, crashed and failed publishers, and
the random-access index that every publish path writes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hypermodel.data import publish as publish_mod
from hypermodel.data.cacheable import cacheable
from hypermodel.data.dataset import Dataset
from hypermodel.data.errors import (
    DatasetBusyError,
    DatasetExistsError,
    DatasetNotClosedError,
)
from hypermodel.data.index import DatasetIndex, build_index, index_key
from hypermodel.data.model import BaseData
from hypermodel.data.tasks import OneToMany, OneToOne, Source
from hypermodel.storage import Storage
from hypermodel.storage.local import LocalStorage
from tests.unit.data.helpers import (
    CountingStorage,
    PublishGate,
    hold,
    kill_when,
    write_by_chunk_jobs,
)

REPO = {"commitHash": "test"}
CLAIMS = "proj/main/recs/.hml-publish"


class Rec(BaseData, id="recId"):
    recId: int
    text: str


def recs(n: int, start: int = 0, tag: str = "a") -> list[Rec]:
    return [Rec(recId=i, text=f"{tag} record {i}") for i in range(start, start + n)]


def make(root: Any, name: str = "recs", storage: Storage | None = None) -> Dataset:
    if storage is not None:
        return Dataset(Rec, storage=storage, project="proj", name=name, repoData=REPO)
    return Dataset(Rec, str(root), "proj", name=name, repoData=REPO)


def write(ds: Dataset, objs: list[Rec], **options: Any) -> str:
    with ds.open("w", **options) as writer:
        for obj in objs:
            writer.append(obj)
    return ds.checksum


def contents(ds: Dataset) -> list[tuple[int, str]]:
    return sorted((r.recId, r.text) for r in ds)


@pytest.fixture(autouse=True)
def quick_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    """A live publisher's heartbeat moves every 50 ms: a loser knows it is alive at once."""
    monkeypatch.setattr(publish_mod, "HEARTBEAT", 0.05)


def final_chunks(root: Path, name: str = "recs") -> dict[str, bytes]:
    folder = root / "proj/main" / name
    return {p.name: p.read_bytes() for p in sorted(folder.glob(f"{name}_*.jsonl.gz"))}


def test_two_writers_interleaved_the_loser_touches_nothing(tmp_path: Path) -> None:
    gate = PublishGate(LocalStorage(tmp_path), held="writer-a")
    first, second = recs(300, tag="a"), recs(40, start=1000, tag="b")
    thread, outcome = hold(gate, lambda: write(make(tmp_path, storage=gate), first))
    try:
        # A holds the claim, its chunks promoted, its .def and .chk not yet written
        before = final_chunks(tmp_path)
        assert len(before) == 16 and not make(tmp_path).exists()
        started = time.monotonic()
        with pytest.raises(DatasetBusyError, match="being published by another writer"):
            write(make(tmp_path), second)
        assert time.monotonic() - started < 10
        assert final_chunks(tmp_path) == before  # B renamed nothing onto A's chunks
        assert not (tmp_path / "proj/main/recs/recs.def").exists()  # nor wrote a .def
    finally:
        gate.release.set()
        thread.join(30)
    assert "error" not in outcome, outcome
    ds = make(tmp_path)
    assert outcome["result"] == ds.checksum
    assert sum(ds.verify().values()) == 300  # every chunk and the .def match the .chk
    assert contents(ds) == sorted((r.recId, r.text) for r in first)
    assert not (tmp_path / CLAIMS).exists()
    assert not [p for p in (tmp_path / "proj/main/recs").iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(DatasetExistsError, match="already exists"):  # and after: exists
        write(make(tmp_path), second)


def _chunk_jobs(ds: Dataset, objs: list[Rec], token: str) -> dict[str, str]:
    return write_by_chunk_jobs(ds, objs, token, flush_bytes=512)


def test_two_chunk_job_publishers_interleaved(tmp_path: Path) -> None:
    gate = PublishGate(LocalStorage(tmp_path), held="publisher-a")
    first, second = recs(300, tag="a"), recs(300, tag="b")
    sums_a = _chunk_jobs(make(tmp_path), first, "tokena")
    sums_b = _chunk_jobs(make(tmp_path), second, "tokenb")
    a = make(tmp_path, storage=gate)
    thread, outcome = hold(gate, lambda: a.publish(sums_a, token="tokena"))
    try:
        before = final_chunks(tmp_path)
        with pytest.raises(DatasetBusyError, match="being published by another writer"):
            make(tmp_path).publish(sums_b, token="tokenb")
        assert final_chunks(tmp_path) == before
    finally:
        gate.release.set()
        thread.join(30)
    assert "error" not in outcome, outcome
    ds = make(tmp_path)
    assert sum(ds.verify().values()) == 300
    assert contents(ds) == sorted((r.recId, r.text) for r in first)
    stored = DatasetIndex.from_json(ds.storage.read_text(index_key(ds)))
    assert stored.to_json() == build_index(ds).to_json()


KILLED_IN_THE_WINDOW = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from hypermodel.storage.local import LocalStorage
    from tests.unit.data.test_publish import make, recs

    class Stuck(LocalStorage):
        def write_bytes(self, key, data):
            if key.endswith(".def"):
                print("inside", flush=True)
                time.sleep(60)
            super().write_bytes(key, data)

    ds = make(None, storage=Stuck({root!r}))
    with ds.open("w") as writer:
        for obj in recs(500, tag="dead"):
            writer.append(obj)
    """
)


def test_a_publisher_killed_in_the_window_blocks_nobody(tmp_path: Path) -> None:
    repo = str(Path(__file__).resolve().parents[3])
    script = KILLED_IN_THE_WINDOW.format(repo=repo, root=str(tmp_path))
    kill_when(script, b"inside")
    assert (tmp_path / CLAIMS / "0.json").exists()  # its claim and promoted chunks are left
    assert len(final_chunks(tmp_path)) == 16
    ds = make(tmp_path)
    with pytest.raises(DatasetNotClosedError, match="never closed"):
        ds.open("r")
    started = time.monotonic()
    write(ds, recs(120, tag="rerun"))  # no manual cleanup: the dead pid's claim is taken over
    assert time.monotonic() - started < 10
    assert sum(ds.verify().values()) == 120
    assert contents(ds) == sorted((r.recId, r.text) for r in recs(120, tag="rerun"))
    assert not (tmp_path / CLAIMS).exists()


def test_a_silent_claim_from_another_host_is_taken_over_when_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish_mod, "STALE_AFTER", 0.5)
    storage = LocalStorage(tmp_path)
    claim = {"host": "elsewhere", "pid": 1, "token": "x"}
    storage.put_if_absent(f"{CLAIMS}/0.json", json.dumps(claim).encode())
    storage.write_text(f"{CLAIMS}/0.beat", "7")
    started = time.monotonic()
    write(make(tmp_path), recs(10))
    assert time.monotonic() - started >= 0.5
    assert sum(make(tmp_path).verify().values()) == 10


def test_a_claim_on_this_host_whose_process_is_gone_is_taken_over_at_once(
    tmp_path: Path,
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    storage = LocalStorage(tmp_path)
    claim = {"host": socket.gethostname(), "pid": gone.pid, "token": "x"}
    storage.put_if_absent(f"{CLAIMS}/0.json", json.dumps(claim).encode())
    storage.write_text(f"{CLAIMS}/0.beat", "1")
    started = time.monotonic()
    write(make(tmp_path), recs(10))
    assert time.monotonic() - started < 5
    assert sum(make(tmp_path).verify().values()) == 10


class FailingDef(LocalStorage):
    def write_bytes(self, key: str, data: bytes) -> None:
        if key.endswith(".def"):
            raise OSError("disk full")
        super().write_bytes(key, data)


def test_a_failed_publish_leaves_nothing_valid_and_the_rerun_succeeds(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="disk full"):
        write(make(tmp_path, storage=FailingDef(tmp_path)), recs(50))
    ds = make(tmp_path)
    assert not ds.exists()
    assert (tmp_path / CLAIMS / "0.failed").exists()  # given up: nobody waits on it
    started = time.monotonic()
    write(ds, recs(60))
    assert time.monotonic() - started < 5
    assert sum(ds.verify().values()) == 60 and not (tmp_path / CLAIMS).exists()


# -- the index, written by every publish path --------------------------------------------------
class Double(OneToOne):
    def run(self, rec: Rec) -> Rec:
        return Rec(recId=rec.recId, text=rec.text * 2)


class Split(OneToMany):
    def run(self, rec: Rec) -> None:
        self.output.append(Rec(recId=rec.recId * 2, text=rec.text))
        self.output.append(Rec(recId=rec.recId * 2 + 1, text=rec.text))


class Load(Source):
    def source_iterator(self) -> Iterator[Rec]:
        yield from recs(1000)


def _source_input(root: Path) -> Dataset:
    ds = make(root, "input")
    write(ds, recs(1000), buffer_bytes=3000)
    return ds


def _by_writer(root: Path) -> Dataset:
    ds = make(root, "out")
    write(ds, recs(1000), buffer_bytes=3000)  # several members per chunk
    return ds


def _by_chunk_jobs(root: Path) -> Dataset:
    ds = make(root, "out")
    ds.publish(_chunk_jobs(ds, recs(1000), "jobs"), token="jobs")
    return ds


def _by_one_to_one(root: Path) -> Dataset:
    out = make(root, "out")
    Double([_source_input(root)], out, workers=1, progress=False)()
    return out


def _by_one_to_many(root: Path) -> Dataset:
    out = make(root, "out")
    Split([_source_input(root)], out, workers=1, progress=False)()
    return out


def _by_source(root: Path) -> Dataset:
    out = make(root, "out")
    Load(outputDataset=out, progress=False)()
    return out


def _by_cacheable(root: Path) -> Dataset:
    @cacheable("recs", "1", root=str(root))
    def built() -> Iterator[Rec]:
        yield from recs(1000)

    return built()


PATHS = {
    "writer": _by_writer,
    "chunk-jobs": _by_chunk_jobs,
    "one-to-one": _by_one_to_one,
    "one-to-many": _by_one_to_many,
    "source": _by_source,
    "cacheable": _by_cacheable,
}


@pytest.mark.parametrize("path", list(PATHS))
def test_every_publish_path_writes_the_index(tmp_path: Path, path: str) -> None:
    ds = PATHS[path](tmp_path)
    # right after publishing, before anything read it
    key = index_key(ds)
    assert ds.storage.exists(key), f"{path} published no index"
    stored = DatasetIndex.from_json(ds.storage.read_text(key))
    assert stored.checksum == ds.checksum
    # the first stream of a fresh reader uses it: it reads only the members it needs
    counting = CountingStorage(tmp_path)
    fresh = Dataset(
        Rec, storage=counting, project=ds.project, branch=ds.branch, name=ds.name,
        chunkCount=ds.chunkCount,
    )  # fmt: skip
    tail = [r.recId for r in fresh.stream(start_offset=stored.total - 3, epochs=1)]
    total = sum(ds.storage.size(ds.chunk_key(c)) for c in ds.chunk_ids())
    assert len(tail) == 3
    assert 0 < counting.read <= total / 4, (counting.read, total)
    # and it is exactly what a full verified pass over the chunks finds
    assert stored.to_json() == build_index(ds).to_json()
    assert [r.recId for r in ds][-3:] == tail
