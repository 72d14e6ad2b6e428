"""Chunk files are standard gzip whichever deflate library wrote or reads them."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from hypermodel.data import Dataset, deflate
from hypermodel.data.errors import DatasetCorruptError
from tests.support import require_isal

from .models import Item, items


def write(root: Path, name: str) -> Dataset:
    ds = Dataset(Item, str(root), "p", "main", name, chunkCount=16)
    with ds.open("w", buffer_bytes=5000) as w:  # spills: multi-member chunks
        for o in items(800):
            w.append(o)
    return ds


def test_isal_is_used_where_installed() -> None:
    require_isal()
    assert deflate.compressor(deflate.FAST_LEVEL).__class__.__module__.startswith("isal")
    assert deflate.compressor(6).__class__.__module__ == "zlib"  # other levels: zlib's own


@pytest.mark.parametrize("writer_has_isal", [True, False])
@pytest.mark.parametrize("reader_has_isal", [True, False])
def test_either_library_reads_the_others_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer_has_isal: bool, reader_has_isal: bool
) -> None:
    if writer_has_isal or reader_has_isal:
        require_isal()
    isal = deflate._isal
    monkeypatch.setattr(deflate, "_isal", isal if writer_has_isal else None)
    ds = write(tmp_path, "d")
    for path in (tmp_path / "p/main/d").glob("*.jsonl.gz"):
        assert gzip.decompress(path.read_bytes())  # the stdlib (Hypergol's reader) reads it
    monkeypatch.setattr(deflate, "_isal", isal if reader_has_isal else None)
    assert sorted(ds.open("r"), key=lambda o: o.itemId) == items(800)
    assert sum(ds.verify().values()) == 800


def test_chunk_checksums_do_not_depend_on_the_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The .chk lists SHA1s of the uncompressed text: equal chunk for chunk."""
    a = write(tmp_path, "a").read_chk()
    monkeypatch.setattr(deflate, "_isal", None)
    b = write(tmp_path, "b").read_chk()
    chunks_a = {k[2:]: v for k, v in a.items() if k.startswith("a_")}
    chunks_b = {k[2:]: v for k, v in b.items() if k.startswith("b_")}
    assert len(chunks_a) == 16 and chunks_a == chunks_b


def test_a_corrupt_member_is_refused_by_either_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = write(tmp_path, "c")
    path = tmp_path / "p/main/c/c_7.jsonl.gz"
    data = bytearray(path.read_bytes())
    data[-6] ^= 0xFF  # the last member's CRC32
    path.write_bytes(bytes(data))
    for lib in {deflate._isal, None}:
        monkeypatch.setattr(deflate, "_isal", lib)
        with pytest.raises(DatasetCorruptError, match=r"c_7\.jsonl\.gz"):
            list(ds.open("r"))
