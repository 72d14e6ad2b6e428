"""Datasets on every backend (local disk, GCS, S3 servers): write, read, verify, integrity."""

from __future__ import annotations

import gzip

import pytest

from hypermodel.data import (
    Dataset,
    DatasetCorruptError,
    DatasetExistsError,
    DatasetNotClosedError,
    DatasetNotFoundError,
    Project,
)
from hypermodel.storage import open_storage
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
    assert len(keys) == 18 and not [k for k in keys if k.endswith(".tmp")]


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
