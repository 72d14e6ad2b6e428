"""Streams and random access verify exactly what ``open("r")`` verifies, with the same errors:
every chunk against the .chk (tampered, re-gzipped, truncated, trailing garbage, a directory),
the .def against the .chk (missing, edited, not JSON, wrong types) and the class against the
.def; a stale or forged index is never trusted; a record the class cannot be made from is one
line naming its file."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hypermodel.data import format as fmt
from hypermodel.data.dataset import Dataset
from hypermodel.data.errors import DatasetCorruptError, DatasetError, DatasetUsageError
from hypermodel.data.index import forget_verdicts, index_key
from hypermodel.data.model import BaseData
from hypermodel.data.stream import records_at

N = 300


class Rec(BaseData, id="recId"):
    recId: int
    text: str


def write(root: Path, name: str = "recs", flush: int = 3000) -> Dataset:
    ds = Dataset(Rec, root, name=name, repoData={"commitHash": "test"})
    with ds.open("w", buffer_bytes=flush) as writer:  # several gzip members per chunk
        for i in range(N):
            writer.append(Rec(recId=i, text=f"record {i}"))
    return ds


def folder(ds: Dataset) -> Path:
    path = ds.storage.local_path(ds.def_key)
    assert path is not None
    return Path(path).parent


# every way of reading a published dataset, each reading all of it
READS: dict[str, Callable[[Dataset], Any]] = {
    "open": lambda ds: list(ds.open("r")),
    "stream": lambda ds: list(ds.stream(epochs=1)),
    "shuffled": lambda ds: list(ds.stream(shuffle=True, shuffle_seed=3, epochs=1)),
    "records_at": lambda ds: records_at(ds, list(range(N))[::-1]),
    "verify": lambda ds: ds.verify(),
}


@pytest.fixture(params=["writer", "fresh"])
def process(request: pytest.FixtureRequest) -> str:
    """'writer': read in the process that wrote the dataset (which knows its chunks);
    'fresh': as another process, which has verified nothing yet."""
    return str(request.param)


def as_process(process: str) -> None:
    if process == "fresh":
        forget_verdicts()


def regzip_with_index(ds: Dataset, chunk_id: str, edit: Callable[[bytes], bytes]) -> None:
    """Edit a chunk's text and gzip it again, and make the stored index describe the new file:
    what an attacker who can write the bucket (but does not touch the .chk) does."""
    path = folder(ds) / fmt.chunk_file_name(ds.name, chunk_id)
    text = edit(gzip.decompress(path.read_bytes()))
    data = gzip.compress(text)
    path.write_bytes(data)
    index = json.loads(ds.storage.read_text(index_key(ds)))
    for chunk in index["chunks"]:
        if chunk["id"] == chunk_id:
            count = text.count(b"\n")
            chunk["count"], chunk["members"] = count, [[0, len(data), 0, count]]
    ds.storage.write_text(index_key(ds), json.dumps(index))


@pytest.mark.parametrize("read", sorted(READS))
def test_an_edited_and_regzipped_chunk_fails_every_read(
    tmp_path: Path, read: str, process: str
) -> None:
    ds = write(tmp_path)
    if read != "open":
        list(ds.stream(epochs=1))  # verified once in this process: later reads still check
    regzip_with_index(ds, "3", lambda t: t.replace(b'"record ', b'"RECORD ', 1))
    as_process(process)
    with pytest.raises(DatasetCorruptError, match=r"recs_3.jsonl.gz does not match its checksum"):
        READS[read](ds)


def test_the_first_read_of_an_unindexed_tampered_chunk_fails_too(tmp_path: Path) -> None:
    ds = write(tmp_path)
    regzip_with_index(ds, "a", lambda t: t.replace(b"record", b"RECORD"))
    ds.storage.delete(index_key(ds))
    forget_verdicts()
    with pytest.raises(DatasetCorruptError, match=r"recs_a.jsonl.gz does not match"):
        records_at(ds, [0])


def edit_def(ds: Dataset, how: str) -> None:
    path = folder(ds) / fmt.def_file_name(ds.name)
    if how == "missing":
        path.unlink()
    elif how == "edited":
        path.write_text(path.read_text().replace('"main"', '"other"', 1))
    elif how == "not JSON":
        path.write_text("{not json")
    elif how == "a list":
        path.write_text("[1, 2]")
    elif how == "a directory":
        path.unlink()
        path.mkdir()
    else:  # consistent: the .chk rewritten to match a .def with a wrong type
        definition = json.loads(path.read_text())
        definition["chunkCount"] = "16"
        text = fmt.dump_def(definition)
        path.write_text(text)
        chk_path = folder(ds) / fmt.chk_file_name(ds.name)
        chk = json.loads(chk_path.read_text())
        chk[fmt.def_file_name(ds.name)] = fmt.sha1_text(text)
        chk_path.write_text(fmt.dump_chk(chk))


DEF_PROBLEMS = {
    "missing": r"recs.def is missing",
    "edited": r"recs.def does not match its checksum",
    "not JSON": r"recs.def is not valid JSON .* and does not match its checksum",
    "a list": r"recs.def is a list, not a JSON object, and does not match",
    "a directory": r"recs.def is a directory, not a file",
    "wrong type, .chk to match": r"recs.def has chunkCount '16', not one of 16, 256 or 4096",
}


@pytest.mark.parametrize("read", sorted(READS))
@pytest.mark.parametrize("how", sorted(DEF_PROBLEMS))
def test_a_bad_def_fails_every_read_with_the_same_error(
    tmp_path: Path, read: str, how: str
) -> None:
    ds = write(tmp_path)
    list(ds.stream(epochs=1))
    edit_def(ds, how)
    with pytest.raises(DatasetCorruptError, match=DEF_PROBLEMS[how]):
        READS[read](ds)


class Other(BaseData, id="recId"):
    recId: int
    text: str


@pytest.mark.parametrize("read", sorted(READS))
def test_a_stream_refuses_another_class_or_chunk_count_as_open_does(
    tmp_path: Path, read: str
) -> None:
    write(tmp_path)
    other = Dataset(Other, tmp_path, name="recs")
    with pytest.raises(DatasetUsageError, match="dataType is 'Rec' there, not 'Other'"):
        READS[read](other)
    wider = Dataset(Rec, tmp_path, name="recs", chunkCount=256)
    with pytest.raises(DatasetUsageError, match="chunkCount is 16 there, not 256"):
        READS[read](wider)


def test_a_stream_sees_a_def_altered_between_two_passes(tmp_path: Path) -> None:
    ds = write(tmp_path)
    stream = ds.stream(epochs=1)
    assert len(list(stream)) == N
    edit_def(ds, "edited")
    with pytest.raises(DatasetCorruptError, match=r"recs\.def does not match"):
        list(stream)


def test_an_index_that_does_not_describe_a_verified_chunk_is_refused_and_removed(
    tmp_path: Path, process: str
) -> None:
    ds = write(tmp_path)
    key = index_key(ds)
    index = json.loads(ds.storage.read_text(key))
    chunk = index["chunks"][2]
    assert len(chunk["members"]) > 1
    # a forged plan that still tiles the chunk: its first two members' records swapped
    (o1, l1, f1, c1), (o2, l2, _, c2) = chunk["members"][:2]
    chunk["members"][:2] = [[o1, l1, f1, c2], [o2, l2, f1 + c2, c1]]
    if c1 == c2:
        chunk["members"][:2] = [[o1, l1 + l2, f1, c1 + c2]]
    ds.storage.write_text(key, json.dumps(index))
    as_process(process)
    with pytest.raises(DatasetCorruptError, match=r"recs.idx.json does not describe chunk"):
        list(ds.stream(epochs=1, prefetch=0))
    assert not ds.storage.exists(key)  # removed: the next stream rebuilds it
    assert sorted(r.recId for r in ds.stream(epochs=1)) == list(range(N))


@pytest.mark.parametrize("garbage", [b"garbage!!", b"\x00" * 4, b"trailing " * 40, b"\x1f"])
@pytest.mark.parametrize("read", sorted(READS))
def test_trailing_garbage_is_reported_as_such(
    tmp_path: Path, read: str, garbage: bytes, process: str
) -> None:
    ds = write(tmp_path)
    path = folder(ds) / fmt.chunk_file_name(ds.name, "7")
    path.write_bytes(path.read_bytes() + garbage)
    as_process(process)
    with pytest.raises(DatasetCorruptError, match=r"recs_7.jsonl.gz has trailing garbage"):
        READS[read](ds)


@pytest.mark.parametrize("read", sorted(READS))
def test_a_cut_chunk_is_still_truncated(tmp_path: Path, read: str) -> None:
    ds = write(tmp_path)
    path = folder(ds) / fmt.chunk_file_name(ds.name, "7")
    path.write_bytes(path.read_bytes()[:-5])
    forget_verdicts()
    with pytest.raises(DatasetCorruptError, match=r"recs_7.jsonl.gz is truncated"):
        READS[read](ds)


# -- one-line errors instead of raw exceptions (item 13) ------------------------------------------
@pytest.mark.parametrize("read", sorted(READS))
def test_a_chk_that_is_a_json_list_is_one_line_naming_it(tmp_path: Path, read: str) -> None:
    ds = write(tmp_path)
    (folder(ds) / "recs.chk").write_text("[1, 2]")
    with pytest.raises(DatasetCorruptError, match=r"recs.chk is a list, not a JSON object") as e:
        READS[read](ds)
    assert "\n" not in str(e.value) and "delete the dataset's directory and write it again" in str(
        e.value
    )


@pytest.mark.parametrize("read", sorted(READS))
def test_a_chunk_that_is_a_directory_is_one_line_naming_it(
    tmp_path: Path, read: str, process: str
) -> None:
    ds = write(tmp_path)
    path = folder(ds) / fmt.chunk_file_name(ds.name, "3")
    path.unlink()
    path.mkdir()
    as_process(process)
    with pytest.raises(DatasetCorruptError, match=r"recs_3.jsonl.gz is a directory, not a file"):
        READS[read](ds)


class WithExtra(BaseData, id="recId"):
    recId: int
    text: str
    extra: str


WithExtra.__name__ = "Rec"  # the same class name, one field more than what was stored


@pytest.mark.parametrize("read", ["open", "stream", "shuffled", "records_at"])
def test_a_record_missing_a_field_is_one_line_naming_its_file(tmp_path: Path, read: str) -> None:
    write(tmp_path)
    ds = Dataset(WithExtra, tmp_path, name="recs")
    with pytest.raises(DatasetError, match=r"recs_[0-9a-f].jsonl.gz.* has no field 'extra'") as e:
        READS[read](ds)
    assert "\n" not in str(e.value) and "give the new field a default" in str(e.value)
