"""The msgspec block decoder must give exactly what the generated decoder gives, or refuse."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest

from hypermodel.data import BaseData, Dataset
from hypermodel.data import reader as reader_module
from hypermodel.data.model import batch_decoder_for
from hypermodel.data.rows import row_decoders_for

from .models import T0, Assembly, Handwritten, Item, items


class Moments(BaseData, id="k"):
    k: int
    at: dt.datetime
    day: dt.date
    clock: dt.time
    maybe: dt.datetime | None = None
    anything: Any = None


ZONES = [
    None,
    dt.timezone.utc,
    dt.timezone(dt.timedelta(hours=5, minutes=30)),
    dt.timezone(dt.timedelta(hours=-8)),
    dt.timezone(dt.timedelta(hours=-4, seconds=-30)),  # an offset RFC 3339 cannot write
]


def moments(rng: random.Random, n: int) -> list[Moments]:
    out = []
    for k in range(n):
        tz = rng.choice(ZONES)
        micro = rng.choice([0, 1, 999999, rng.randint(0, 999999)])
        at = dt.datetime(
            rng.randint(1, 9999),
            rng.randint(1, 12),
            rng.randint(1, 28),
            rng.randint(0, 23),
            rng.randint(0, 59),
            rng.randint(0, 59),
            micro,
            tzinfo=tz,
        )
        out.append(
            Moments(
                k,
                at,
                at.date(),
                at.timetz(),
                rng.choice([None, at]),
                rng.choice([None, 1, 2.5, "x", [1, {"a": None}], 2**70]),
            )
        )
    return out


def reference(cls: type[BaseData], lines: list[str]) -> list[Any]:
    return batch_decoder_for(cls)([json.loads(line) for line in lines])


@pytest.mark.parametrize("seed", range(6))
def test_same_objects_as_the_generated_decoder_or_refused(seed: int) -> None:
    rng = random.Random(seed)
    fast = row_decoders_for(Moments)
    assert fast is not None
    accepted = refused = 0
    for _ in range(200):
        lines = [json.dumps(m.to_data(), sort_keys=True) for m in moments(rng, 5)]
        got = fast.lines("\n".join(lines).encode() + b"\n")
        also = fast.array(("[" + ",".join(lines) + "]").encode())
        if got is None:
            refused += 1
            assert also is None
            continue
        accepted += 1
        expected = reference(Moments, lines)
        assert got == expected and also == expected
        for a, b in zip(got, expected, strict=True):
            assert type(a) is Moments and a.__dict__ == b.__dict__
            assert [type(v) for v in a.__dict__.values()] == [type(v) for v in b.__dict__.values()]
            assert repr(a.at.tzinfo) == repr(b.at.tzinfo)
    assert accepted and refused  # both paths are exercised by these values


def test_missing_fields_refuse_and_extra_keys_are_dropped() -> None:
    fast = row_decoders_for(Item)
    assert fast is not None
    row = Item(1, "a", 0.5, T0).to_data()
    assert fast.lines(json.dumps({k: v for k, v in row.items() if k != "name"}).encode()) is None
    [obj] = fast.lines(json.dumps({**row, "extra": 1}).encode())  # type: ignore[misc]
    assert obj == Item(1, "a", 0.5, T0) and not hasattr(obj, "extra")
    assert fast.lines(b'{"itemId": 1, "name": "a", "score": NaN, "created": null}') is None


def test_classes_that_need_their_own_decoding_have_none() -> None:
    assert row_decoders_for(Handwritten) is None  # own from_data / __init__
    assert row_decoders_for(Assembly) is not None  # nested records too: test_rows_nested.py


def test_reads_use_it_and_fall_back_per_block(tmp_path: Path) -> None:
    """A dataset whose blocks msgspec refuses (NaN) reads the same through the fallback."""
    ds = Dataset(Item, str(tmp_path), "p", "main", "odd", chunkCount=16)
    objs = items(300)
    objs[7].score = float("nan")
    with ds.open("w") as w:
        for o in objs:
            w.append(o)
    back = sorted(ds.open("r"), key=lambda o: o.itemId)
    assert [o.itemId for o in back] == list(range(300))
    assert back[7].score != back[7].score and back[8] == objs[8]


@pytest.mark.parametrize(("read_block", "inflate_block"), [(64, 100), (1000, 7), (1 << 20, 333)])
def test_reading_in_small_pieces_gives_every_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_block: int, inflate_block: int
) -> None:
    """Inflating a multi-member chunk a few bytes at a time (pending output, member ends
    inside a read) loses nothing and still verifies."""
    ds = Dataset(Item, str(tmp_path), "p", "main", "pieces", chunkCount=16)
    with ds.open("w", buffer_bytes=3000) as w:  # spills: several gzip members per chunk
        for o in items(1500):
            w.append(o)
    monkeypatch.setattr(reader_module, "_READ_BLOCK", read_block)
    monkeypatch.setattr(reader_module, "_INFLATE_BLOCK", inflate_block)
    assert sorted(ds.open("r"), key=lambda o: o.itemId) == items(1500)
    assert sum(ds.verify().values()) == 1500


class Page(BaseData, id="pageId"):
    pageId: int
    body: str
    seen: dt.datetime


@pytest.mark.parametrize("size", [40, 5000])
def test_blocks_of_long_lines_skip_msgspec_and_read_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """Lines longer than rows.LONG_LINE_BYTES on average (large text) are read with orjson and
    the generated decoder, faster there; short ones with msgspec. Both give the same objects."""
    from hypermodel.data import rows

    pages = [Page(i, 'é"x\\ 東京 😀' * (size // 10) + str(i), T0) for i in range(300)]
    ds = Dataset(Page, tmp_path, name="pages", repoData={"commitHash": "test"})
    with ds.open("w") as writer:
        for page in pages:
            writer.append(page)
    fast = row_decoders_for(Page)
    assert fast is not None
    calls = []

    def counted(block: bytes) -> Any:
        calls.append(len(block))
        return fast.lines(block)

    monkeypatch.setattr(Page, "_hml_row_decoders", rows.RowDecoders(counted, fast.array))
    back = sorted(ds.open("r"), key=lambda p: p.pageId)
    assert back == pages
    long_lines = size * 6 > rows.LONG_LINE_BYTES  # escapes make a line ~6 bytes a character
    assert (calls == []) is long_lines
