"""Datasets on every backend (local disk, GCS, S3 servers): write, read, verify, integrity."""

from __future__ import annotations

import gzip
import time
from typing import Any

import pytest

from hypermodel.data import (
    Dataset,
    DatasetBusyError,
    DatasetCorruptError,
    DatasetExistsError,
    DatasetNotClosedError,
    DatasetNotFoundError,
    Project,
)
from hypermodel.data import publish as publish_mod
from hypermodel.data.index import DatasetIndex, build_index, index_key
from hypermodel.storage import open_storage
from tests.unit.data.helpers import PublishGate, hold, write_by_chunk_jobs
from tests.unit.data.models import Item, items

REPO = {
    "branchName": "main",
    "commitHash": "d" * 40,
    "commitMessage": "m",
    "comitterName": "Ada",
    "comitterEmail": "ada@example.com",
}


def make(url: str, name: str = "items", chunks: int = 16) -> Dataset:
    return Dataset(Item, url, "proj", "main", name, repoData=REPO, chunkCount=chunks)


def write(ds: Dataset, n: int) -> str:
    with ds.open("w") as writer:
        for obj in items(n):
            writer.append(obj)
    return ds.checksum


def test_write_read_verify(storage_url: str) -> None:
    ds = make(storage_url)
    checksum = write(ds, 1000)
    assert sorted(ds.open("r"), key=lambda o: o.itemId) == items(1000)
    assert sum(ds.verify().values()) == 1000
    assert Project(storage_url, "proj", "main").datasets.list()[0].checksum == checksum
    keys = list(open_storage(storage_url).list("proj/main/items"))
    # .def, .chk, 16 chunks and the index; no staged files, no publish claims
    assert len(keys) == 19 and not [k for k in keys if k.endswith(".tmp")]
    assert index_key(ds) in keys


def test_spilled_writes_on_each_backend(storage_url: str) -> None:
    ds = make(storage_url)
    with ds.open("w", buffer_bytes=4096) as writer:
        for obj in items(3000):
            writer.append(obj)
    assert sum(1 for _ in ds.open("r")) == 3000


def test_an_exception_publishes_nothing(storage_url: str) -> None:
    ds = make(storage_url)
    with pytest.raises(ValueError), ds.open("w") as writer:
        for obj in items(100):
            writer.append(obj)
        raise ValueError("stop")
    with pytest.raises(DatasetNotFoundError):
        ds.open("r")
    write(ds, 10)
    assert sum(1 for _ in ds.open("r")) == 10


def test_missing_chk_means_never_closed(storage_url: str) -> None:
    ds = make(storage_url)
    write(ds, 10)
    ds.storage.delete(ds.chk_key)
    with pytest.raises(DatasetNotClosedError, match="never closed"):
        ds.open("r")


def test_corruption_is_detected(storage_url: str) -> None:
    ds = make(storage_url)
    write(ds, 300)
    key = ds.chunk_key("5")
    text = gzip.decompress(ds.storage.read_bytes(key))
    ds.storage.write_bytes(key, gzip.compress(text.replace(b"item", b"itex", 1)))
    with pytest.raises(DatasetCorruptError, match=r"items_5.jsonl.gz does not match"):
        list(ds.open("r"))
    ds.storage.write_bytes(key, gzip.compress(text)[:-10])
    with pytest.raises(DatasetCorruptError, match=r"items_5.jsonl.gz is truncated"):
        list(ds.open("r"))
    ds.storage.delete(key)
    with pytest.raises(DatasetCorruptError, match=r"items_5.jsonl.gz is missing"):
        ds.verify()


def test_two_writers_one_publisher(storage_url: str) -> None:
    first, second = make(storage_url).open("w"), make(storage_url).open("w")
    for obj in items(10):
        first.append(obj)
        second.append(obj)
    first.close()
    with pytest.raises(DatasetExistsError, match="already exists"):
        second.close()
    assert sum(1 for _ in make(storage_url).open("r")) == 10


def _chunks(ds: Dataset) -> dict[str, bytes]:
    return {cid: ds.storage.read_bytes(ds.chunk_key(cid)) for cid in ds.chunk_ids()}


def _chunk_jobs(ds: Dataset, objs: list[Any], token: str) -> dict[str, str]:
    return write_by_chunk_jobs(ds, objs, token, flush_bytes=2048)


@pytest.mark.parametrize("path", ["writer", "chunk-jobs"])
def test_two_publishers_interleaved(
    storage_url: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish_mod, "HEARTBEAT", 0.1)
    gate = PublishGate(open_storage(storage_url), held="writer-a")
    a = Dataset(Item, storage=gate, project="proj", name="items", repoData=REPO)
    first, second = items(400), items(50, start=10_000)
    if path == "writer":
        run_a = lambda: write(a, 400)  # noqa: E731
        run_b = lambda: write(make(storage_url), 50)  # noqa: E731
    else:
        sums_a = _chunk_jobs(make(storage_url), first, "tokena")
        sums_b = _chunk_jobs(make(storage_url), second, "tokenb")
        run_a = lambda: a.publish(sums_a, token="tokena")  # noqa: E731
        run_b = lambda: make(storage_url).publish(sums_b, token="tokenb")  # noqa: E731
    thread, outcome = hold(gate, run_a)
    try:
        before = _chunks(make(storage_url))
        started = time.monotonic()
        with pytest.raises(DatasetBusyError, match="being published by another writer"):
            run_b()
        assert time.monotonic() - started < 20
        assert _chunks(make(storage_url)) == before  # the loser wrote no final chunk
        assert not make(storage_url).storage.exists(make(storage_url).def_key)
    finally:
        gate.release.set()
        thread.join(60)
    assert "error" not in outcome, outcome
    ds = make(storage_url)
    assert sum(ds.verify().values()) == 400
    assert sorted(ds.open("r"), key=lambda o: o.itemId) == first
    stored = DatasetIndex.from_json(ds.storage.read_text(index_key(ds)))
    assert stored.to_json() == build_index(ds).to_json()
    leftovers = [k for k in ds.storage.list(ds.directory) if "/.hml-" in k or k.endswith(".tmp")]
    assert leftovers == []  # claims and staged chunks are gone


def test_a_stream_verifies_what_open_verifies(storage_url: str) -> None:
    """A chunk edited and gzipped again, with an index rewritten to match: every read fails,
    in the writing process and in a fresh one (which verifies each chunk on first touch)."""
    import json

    from hypermodel.data.index import forget_verdicts
    from hypermodel.data.stream import records_at

    ds = make(storage_url)
    write(ds, 400)
    assert sorted(o.itemId for o in ds.stream(shuffle=True, shuffle_seed=1, epochs=1)) == list(
        range(400)
    )
    storage = open_storage(storage_url)
    key = ds.chunk_key("3")
    text = gzip.decompress(storage.read_bytes(key)).replace(b'"item ', b'"ITEM ', 1)
    data = gzip.compress(text)
    storage.write_bytes(key, data)
    index = json.loads(storage.read_text(index_key(ds)))
    for chunk in index["chunks"]:
        if chunk["id"] == "3":
            count = text.count(b"\n")
            chunk["count"], chunk["members"] = count, [[0, len(data), 0, count]]
    storage.write_text(index_key(ds), json.dumps(index))
    for fresh in (False, True):
        if fresh:
            forget_verdicts()
        with pytest.raises(DatasetCorruptError, match=r"items_3.jsonl.gz does not match"):
            list(ds.stream(epochs=1))
        with pytest.raises(DatasetCorruptError, match=r"items_3.jsonl.gz does not match"):
            records_at(ds, list(range(400)))


def test_leftovers_of_a_published_dataset_are_removed_by_the_next_write(
    storage_url: str,
) -> None:
    """A dead writer's claim (another host's, on a published dataset) and staged chunks: the
    next write, which finds the dataset published, removes them."""
    import json

    ds = make(storage_url)
    write(ds, 20)
    storage = open_storage(storage_url)
    claims = f"{ds.directory}/.hml-publish"
    storage.write_text(f"{claims}/0.json", json.dumps({"host": "gone", "pid": 1, "token": "t"}))
    storage.write_text(f"{claims}/0.beat", "4")
    storage.write_text(f"{ds.directory}/.hml-stage/tok/items_0.jsonl.gz", "staged")
    with pytest.raises(DatasetExistsError):
        write(make(storage_url), 3)
    left = list(storage.list(ds.directory))
    assert not [k for k in left if "/.hml-publish/" in k]
    if storage.local_path(ds.def_key) is None:  # buckets stage chunks; local disk never does
        assert not [k for k in left if "/.hml-stage/" in k]
    assert sum(ds.verify().values()) == 20
