"""The record shapes the datasets, tasks and stream benchmarks run on (``--shapes``).

- ``record``: int id, short str, float, datetime (the fast paths only);
- ``general``: int id, a 40-80 character str with some non-ASCII, a 2x4 nested list of floats,
  a bool, a datetime and an optional nested record (set on every other object);
- ``many``: 20 small fields (ints, bools, short strs, floats, and four optional ones that are
  None on part of the objects);
- ``text``: int id, a title, a 2-8 KB body of mixed unicode text (accents, Cyrillic, CJK,
  emoji, quotes, tabs and newlines), a datetime; ``SCALE`` objects of it per 20 of the others
  (10,000 for the default 200,000: 50 MB of text).

Each shape is a class with declared fields (hypermodel's way) and the same class written by
hand as a Hypergol user writes it (``create_data_model``'s style: its own ``__init__``,
``get_id``, ``to_data`` / ``from_data``), made on a given base class: Hypergol's ``BaseData``
for the peer, hypermodel's for a class ported from Hypergol unchanged.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypermodel.data import BaseData

START = dt.datetime(2026, 1, 1, 12, 0, 0)


# -- record ---------------------------------------------------------------------------------------
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


def hand_record(base: type) -> type:
    class HRecord(base):  # type: ignore[valid-type,misc]
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
        def from_data(cls, data: dict[str, Any]) -> Any:
            data["created"] = dt.datetime.fromisoformat(data["created"])
            return cls(**data)

    return named(HRecord, "Record")


# -- general --------------------------------------------------------------------------------------
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


def hand_general(base: type) -> type:
    class HNote(base):  # type: ignore[valid-type,misc]
        def __init__(self, author: str, rating: float):
            self.author = author
            self.rating = rating

    class HEntry(base):  # type: ignore[valid-type,misc]
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
        def from_data(cls, data: dict[str, Any]) -> Any:
            data["created"] = dt.datetime.fromisoformat(data["created"])
            data["note"] = None if data["note"] is None else HNote.from_data(data["note"])
            return cls(**data)

    named(HNote, "Note")
    HEntry.nested = {Note: HNote}  # type: ignore[attr-defined]  # for converting objects
    return named(HEntry, "Entry")


# -- many small fields ----------------------------------------------------------------------------
class Wide(BaseData, id="wideId"):
    wideId: int
    count: int
    rank: int
    year: int
    visible: bool
    archived: bool
    verified: bool
    code: str
    label: str
    lang: str
    city: str
    price: float
    weight: float
    ratio: float
    lat: float
    lon: float
    parentId: int | None
    comment: str | None
    bonus: float | None
    flagged: bool | None


WIDE_FIELDS = list(Wide._hml_fields)
CITIES = ["Lyon", "Zürich", "Kraków", "Oslo", "São Paulo", "Osaka", "Leeds", "Quito"]


def make_wide(n: int) -> list[Wide]:
    out = []
    for i in range(n):
        out.append(
            Wide(
                i,
                i % 1000,
                (i * 7) % 50,
                1990 + i % 35,
                i % 2 == 0,
                i % 7 == 0,
                i % 3 != 0,
                f"C{i % 4096:04X}",
                f"item {i % 977}",
                ("en", "fr", "de", "ja")[i % 4],
                CITIES[i % len(CITIES)],
                (i % 10_000) / 100,
                0.25 + (i % 400) * 0.125,
                (i % 997) / 997,
                45.0 + (i % 10_007) * 1e-3,
                5.0 + (i % 9_973) * 1.7e-3,
                None if i % 3 == 0 else i // 3,
                None if i % 4 else f"checked by {i % 31}",
                None if i % 2 else (i % 300) * 0.5,
                None if i % 5 == 0 else i % 5 == 1,
            )
        )
    return out


def hand_wide(base: type) -> type:
    # create_data_model writes an __init__ naming every field, a get_id and, with nothing to
    # convert, Hypergol's default to_data / from_data
    args = ", ".join(WIDE_FIELDS)
    body = "".join(f"    self.{f} = {f}\n" for f in WIDE_FIELDS)
    env: dict[str, Any] = {}
    exec(f"def __init__(self, {args}):\n{body}", env)

    def get_id(self: Any) -> tuple[int]:
        return (self.wideId,)

    cls = type("HWide", (base,), {"__init__": env["__init__"], "get_id": get_id})
    return named(cls, "Wide")


# -- large text -----------------------------------------------------------------------------------
class Doc(BaseData, id="docId"):
    docId: int
    title: str
    body: str
    created: dt.datetime


WORDS = (
    "the of and data model stream chunk über naïve café façade résumé straße ñandú "
    "Привет мир данные текст 東京 データ 模型 数据 😀 🚀 «guillemets» “quotes” "
    'say "hi" back\\slash tab\there new\nline \u03b1 \u03b2 \u03b3 \u03b4 \u03b5'
).split(" ")


def make_docs(n: int) -> list[Doc]:
    rng = random.Random(18)
    out = []
    for i in range(n):
        size = rng.randrange(2048, 8192)
        words: list[str] = []
        length = 0
        while length < size:
            word = rng.choice(WORDS)
            words.append(word)
            length += len(word.encode()) + 1
        title = " ".join(rng.choices(WORDS, k=6))
        created = START + dt.timedelta(seconds=i, microseconds=i % 997)
        out.append(Doc(i, title, " ".join(words), created))
    return out


def hand_doc(base: type) -> type:
    class HDoc(base):  # type: ignore[valid-type,misc]
        def __init__(self, docId: int, title: str, body: str, created: dt.datetime):
            self.docId = docId
            self.title = title
            self.body = body
            self.created = created

        def get_id(self) -> tuple[int]:
            return (self.docId,)

        def to_data(self) -> dict[str, Any]:
            data = self.__dict__.copy()
            data["created"] = data["created"].isoformat()
            return data

        @classmethod
        def from_data(cls, data: dict[str, Any]) -> Any:
            data["created"] = dt.datetime.fromisoformat(data["created"])
            return cls(**data)

    return named(HDoc, "Doc")


# -- the registry ---------------------------------------------------------------------------------
def named(cls: type, name: str) -> type:
    """The .def's dataType is the class name: the same on both sides."""
    cls.__name__ = cls.__qualname__ = name
    return cls


@dataclass(frozen=True)
class Shape:
    name: str
    what: str
    declared: type
    make: Callable[[int], list[Any]]
    hand: Callable[[type], type]
    scale: int = 1  # objects made per ``scale`` asked (the text shape's are 100x larger)

    def count(self, n: int) -> int:
        return max(1, n // self.scale)

    def id_of(self, obj: Any) -> int:
        return obj.__dict__[self.declared._hml_id[0]]  # type: ignore[attr-defined,no-any-return]


SHAPES = {
    s.name: s
    for s in (
        Shape("record", "int, str, float, datetime", Record, make_objects, hand_record),
        Shape(
            "general",
            "int, text, 2x4 floats, bool, datetime, optional record",
            Entry,
            make_entries,
            hand_general,
        ),
        Shape(
            "many", "20 fields: int, bool, short str, float, optional", Wide, make_wide, hand_wide
        ),
        Shape("text", "int, title, 2-8 KB unicode body, datetime", Doc, make_docs, hand_doc, 20),
    )
}
DEFAULT_SHAPES = ",".join(SHAPES)


def to_hand(hand: type, objects: list[Any]) -> list[Any]:
    """The same values as objects of the hand-written class (nested records converted)."""
    nested: dict[type, type] = getattr(hand, "nested", {})

    def value(v: Any) -> Any:
        sub = nested.get(type(v))
        if sub is not None:
            return sub(**v.__dict__)
        if isinstance(v, list):
            return [value(x) for x in v]
        return v

    if not nested:
        return [hand(**o.__dict__) for o in objects]
    return [hand(**{k: value(v) for k, v in o.__dict__.items()}) for o in objects]


def shapes_arg(text: str) -> list[Shape]:
    unknown = [s for s in text.split(",") if s not in SHAPES]
    if unknown:
        raise SystemExit(f"unknown shape(s) {', '.join(unknown)}; known: {DEFAULT_SHAPES}")
    return [SHAPES[s] for s in text.split(",")]
