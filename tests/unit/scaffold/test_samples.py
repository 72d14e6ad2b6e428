"""sample(): example objects built from a data model's annotations."""

from __future__ import annotations

import datetime as dt

import pytest

from hypermodel import hml
from hypermodel.errors import UsageError
from hypermodel.scaffold.samples import sample


class Leaf(hml.BaseData, id="leafId"):
    leafId: int
    when: dt.datetime
    tags: list[str]


class Tree(hml.BaseData, id="treeId"):
    treeId: str
    leaves: list[Leaf]
    first: Leaf
    children: list[Tree]
    note: str | None = None


class Loop(hml.BaseData):
    again: Loop


def test_sample_fills_every_field_and_round_trips() -> None:
    tree = sample(Tree)
    assert tree.treeId == "text"
    assert tree.leaves == [Leaf(leafId=1, when=dt.datetime(2024, 1, 2, 3, 4, 5), tags=["text"])]
    assert tree.first == tree.leaves[0]
    assert tree.children == []  # a list of an enclosing class ends the recursion
    assert tree.note == "text"
    assert Tree.from_data(tree.to_data()) == tree


def test_sample_refuses_direct_cycles_and_undeclared_classes() -> None:
    with pytest.raises(UsageError, match="contains itself"):
        sample(Loop)

    class HandWritten(hml.BaseData):
        def __init__(self, x: int) -> None:
            self.x = x

    with pytest.raises(UsageError, match="build this one by hand"):
        sample(HandWritten)
