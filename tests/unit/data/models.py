"""Data models shared by the data tests (importable, so subprocesses and pickling find them)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypermodel.data import BaseData


class Item(BaseData, id="itemId"):
    itemId: int
    name: str
    score: float
    created: dt.datetime


class Part(BaseData, id="partId"):
    partId: str
    made: dt.date


class Assembly(BaseData, id=("site", "number")):
    site: str
    number: int
    parts: list[Part]
    main: Part | None = None
    at: dt.time | None = None
    tags: list[str] = []
    extra: dict[str, Any] = {}


class Handwritten(BaseData):
    """The seed's hand-written style: own __init__, get_id, to_data, from_data."""

    def __init__(self, classId: int, name: str, creation: dt.datetime):
        self.classId = classId
        self.name = name
        self.creation = creation

    def get_id(self) -> tuple[int]:
        return (self.classId,)

    def to_data(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        data["creation"] = data["creation"].isoformat()
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Handwritten:
        data["creation"] = dt.datetime.fromisoformat(data["creation"])
        return cls(**data)


T0 = dt.datetime(2026, 1, 2, 3, 4, 5)


def items(n: int, start: int = 0) -> list[Item]:
    return [
        Item(i, f"item {i}", i / 7, T0 + dt.timedelta(seconds=i)) for i in range(start, start + n)
    ]
