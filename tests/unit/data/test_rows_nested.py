"""The msgspec block decoder on classes with nested records (and lists of them, optional or
not) gives exactly what the generated decoder gives, or refuses; classes it cannot adopt (a
nested record with its own from_data, a class that contains itself) have none."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest

from hypermodel.data import BaseData, Dataset
from hypermodel.data.model import batch_decoder_for
from hypermodel.data.rows import row_decoders_for

from .models import Assembly, Handwritten, Part


class Leaf(BaseData):
    name: str
    at: dt.datetime | None = None


class Branch(BaseData):
    leaf: Leaf
    leaves: list[Leaf]
    grid: list[list[Leaf | None]] | None


class Tree(BaseData, id="k"):
    k: int
    root: Branch | None
    branches: list[Branch]
    maybe: list[Leaf | None] | None
    matrix: list[list[float]]
    flag: bool
    anything: Any


class Node(BaseData, id="k"):
    k: int
    children: list[Node]


class Wrapper(BaseData, id="k"):
    k: int
    inner: Handwritten


T0 = dt.datetime(2026, 3, 4, 5, 6, 7)


def leaf(rng: random.Random) -> Leaf:
    return Leaf(
        rng.choice(["a", "é", "\U0001f600", ""]), rng.choice([None, T0, T0.replace(microsecond=5)])
    )


def branch(rng: random.Random) -> Branch:
    return Branch(
        leaf(rng),
        [leaf(rng) for _ in range(rng.randint(0, 3))],
        rng.choice([None, [], [[None, leaf(rng)], []]]),
    )


def trees(rng: random.Random, n: int) -> list[Tree]:
    return [
        Tree(
            k,
            rng.choice([None, branch(rng)]),
            [branch(rng) for _ in range(rng.randint(0, 2))],
            rng.choice([None, [], [None, leaf(rng)]]),
            [[rng.random() for _ in range(4)] for _ in range(2)],
            rng.random() < 0.5,
            rng.choice([None, 1, [1, {"a": None}], {"k": 2.5}]),
        )
        for k in range(n)
    ]


def reference(cls: type[BaseData], lines: list[str]) -> list[Any]:
    return batch_decoder_for(cls)([json.loads(line) for line in lines])


def same(a: Any, b: Any) -> None:
    """Equal, and of the same types all the way down (a dict is not a record)."""
    assert type(a) is type(b)
    if isinstance(a, BaseData):
        assert a.__dict__.keys() == b.__dict__.keys()
        for k in a.__dict__:
            same(a.__dict__[k], b.__dict__[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("seed", range(4))
def test_nested_records_decode_as_the_generated_decoder(seed: int) -> None:
    rng = random.Random(seed)
    fast = row_decoders_for(Tree)
    assert fast is not None
    for _ in range(100):
        objs = trees(rng, 6)
        lines = [json.dumps(o.to_data(), sort_keys=True) for o in objs]
        got = fast.lines("\n".join(lines).encode() + b"\n")
        also = fast.array(("[" + ",".join(lines) + "]").encode())
        expected = reference(Tree, lines)
        assert got is not None and also is not None
        same(got, expected)
        same(also, expected)
        assert got == objs


def test_nested_refusals_fall_back() -> None:
    fast = row_decoders_for(Tree)
    assert fast is not None
    row = trees(random.Random(1), 1)[0].to_data()
    bad_leaf = {**row, "root": {"leaf": {"at": None}, "leaves": [], "grid": None}}  # no name
    assert fast.lines(json.dumps(bad_leaf).encode()) is None
    not_a_record = {**row, "branches": ["x"]}
    assert fast.lines(json.dumps(not_a_record).encode()) is None
    surrogate = {
        **row,
        "root": {"leaf": {"name": "\ud800", "at": None}, "leaves": [], "grid": None},
    }
    assert fast.lines(json.dumps(surrogate).encode()) is None  # msgspec refuses lone surrogates


def test_assembly_reads_the_same() -> None:
    fast = row_decoders_for(Assembly)
    assert fast is not None
    a = Assembly("s", 1, [Part("p", dt.date(2020, 1, 1))], main=None, tags=["é"], extra={"x": [1]})
    line = json.dumps(a.to_data(), sort_keys=True)
    [got] = fast.lines(line.encode())  # type: ignore[misc]
    same(got, reference(Assembly, [line])[0])
    assert got == a


def test_classes_it_cannot_adopt_have_none() -> None:
    assert row_decoders_for(Node) is None  # contains itself
    assert row_decoders_for(Wrapper) is None  # nested record with its own from_data


def test_dataset_of_nested_records_round_trips(tmp_path: Path) -> None:
    ds = Dataset(Tree, str(tmp_path), "p", "main", "trees", chunkCount=16)
    objs = trees(random.Random(5), 500)
    with ds.open("w") as w:
        for o in objs:
            w.append(o)
    back = sorted(ds.open("r"), key=lambda o: o.k)
    same(back, objs)
