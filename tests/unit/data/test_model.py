from __future__ import annotations

import datetime as dt
import json
import math
import pickle
import random

import pytest

from hypermodel.data import BaseData
from hypermodel.data.errors import DataModelError, NoIdError
from hypermodel.data.model import batch_decoder_for, decoder_for, encoder_for

from .models import T0, Assembly, Handwritten, Item, Part


def test_declared_fields_get_an_init_and_round_trip() -> None:
    a = Assembly(
        "lyon",
        7,
        [Part("p1", dt.date(2020, 1, 2))],
        main=Part("m", dt.date(2021, 3, 4)),
        at=dt.time(5, 6, 7),
        tags=["x"],
        extra={"k": [1, 2.5, None]},
    )
    data = a.to_data()
    assert data == {
        "site": "lyon",
        "number": 7,
        "parts": [{"partId": "p1", "made": "2020-01-02"}],
        "main": {"partId": "m", "made": "2021-03-04"},
        "at": "05:06:07",
        "tags": ["x"],
        "extra": {"k": [1, 2.5, None]},
    }
    back = Assembly.from_data(json.loads(json.dumps(data)))
    assert back == a
    assert isinstance(back.parts[0], Part) and back.parts[0].made == dt.date(2020, 1, 2)
    assert back.at == dt.time(5, 6, 7)
    assert a.get_id() == ("lyon", 7)
    assert a.get_hash_id() == ("lyon", 7)


def test_defaults_are_not_shared_between_objects() -> None:
    a, b = Assembly("s", 1, []), Assembly("s", 2, [])
    a.tags.append("only a")
    assert b.tags == []


def test_equality_is_by_value_not_by_type() -> None:
    assert Item(1, "a", 0.5, T0) == Item(1, "a", 0.5, T0)
    assert Item(1, "a", 0.5, T0) != Item(1, "b", 0.5, T0)  # Hypergol says these are equal
    assert Item(1, "a", 0.5, T0) != Part("1", dt.date(2020, 1, 1))
    assert "Item(itemId=1" in repr(Item(1, "a", 0.5, T0))


def test_float_id_is_refused_at_class_declaration() -> None:
    with pytest.raises(DataModelError, match="'price' has type float"):

        class Bad(BaseData, id="price"):
            price: float


def test_unknown_id_field_is_refused() -> None:
    with pytest.raises(DataModelError, match="not a declared field"):

        class Bad(BaseData, id="nope"):
            value: int


def test_no_id_raises_a_clear_error() -> None:
    class NoId(BaseData):
        value: int

    with pytest.raises(NoIdError, match="declares no id"):
        NoId(1).get_id()


def test_handwritten_style_still_works() -> None:
    h = Handwritten(3, "x", T0)
    assert Handwritten.from_data(h.to_data()) == h
    assert encoder_for(Handwritten) is None  # its own to_data is used
    assert decoder_for(Handwritten) == Handwritten.from_data


def test_default_to_data_of_a_class_without_declared_fields() -> None:
    """A ported class that keeps the default to_data(): plain scalars as they are, everything
    else converted (records, dates, lists and dicts of them, tuples as lists), attributes in
    their order, fresh containers (changing the data leaves the object alone), and the line
    is json.dumps(sort_keys=True) of it."""
    import enum

    class Colour(enum.IntEnum):
        RED = 1

    class Loose(BaseData):
        def __init__(self, **kw: object) -> None:
            self.__dict__.update(kw)

    part = Part("p", dt.date(2020, 1, 2))
    values = {
        "z": 1,
        "s": "é",
        "f": 0.5,
        "b": True,
        "n": None,
        "big": 2**70,
        "colour": Colour.RED,
        "when": dt.datetime(2020, 1, 2, 3, 4, 5, 6),
        "day": dt.date(2020, 1, 2),
        "at": dt.time(1, 2),
        "part": part,
        "parts": [part, None, [part]],
        "pair": (1, dt.date(2020, 1, 3)),
        "nums": [1, 2.5],
        "map": {"k": part, "d": dt.date(2020, 1, 4)},
    }
    obj = Loose(**values)
    data = obj.to_data()
    assert list(data) == list(values)
    assert data == {
        **values,
        "when": "2020-01-02T03:04:05.000006",
        "day": "2020-01-02",
        "at": "01:02:00",
        "part": part.to_data(),
        "parts": [part.to_data(), None, [part.to_data()]],
        "pair": [1, "2020-01-03"],
        "map": {"k": part.to_data(), "d": "2020-01-04"},
    }
    assert data["colour"] is Colour.RED and data["big"] == 2**70
    data["nums"].append(3)
    data["map"]["k"] = None
    assert obj.nums == [1, 2.5] and obj.map["k"] is part  # type: ignore[attr-defined]
    from hypermodel.data.format import line_encoder

    assert line_encoder(Loose)(obj) == json.dumps(obj.to_data(), sort_keys=True) + "\n"


def test_objects_pickle() -> None:
    a = Assembly("s", 1, [Part("p", dt.date(2020, 1, 1))])
    assert pickle.loads(pickle.dumps(a)) == a


STRINGS = [
    "",
    "plain",
    "é ü 中文 🎉",
    'quote " back \\ slash',
    "\n\t\r\b\f",
    "\x00\x1f\x7f",
    "/",
    "'",
]
FLOATS = [
    0.0,
    -0.0,
    1.0,
    0.1,
    1e16,
    1e-7,
    123456789.123,
    2.5e-300,
    1.7976931348623157e308,
    math.nan,
    math.inf,
    -math.inf,
    1e-4,
    -1e-4,
    9.999999999999999e-05,
    0.00010000000000000002,
    9999999999999998.0,
    -9999999999999998.0,
    1e15,
    5e-324,
    1 / 3,
    2.0**52 + 0.5,
]


@pytest.mark.parametrize("seed", range(8))
def test_encoder_is_byte_identical_to_json_dumps(seed: int) -> None:
    rng = random.Random(seed)
    enc = encoder_for(Item)
    assert enc is not None
    for _ in range(3000):
        obj = Item(
            rng.choice([0, -1, 2**70, rng.randint(-(10**9), 10**9)]),
            rng.choice(STRINGS) + rng.choice(STRINGS),
            rng.choice(
                [
                    *FLOATS,
                    rng.random() * 10 ** rng.randint(-20, 20),
                    -rng.random() * 10 ** rng.randint(-6, 17),
                ]
            ),
            T0 + dt.timedelta(microseconds=rng.randint(0, 10**12)),
        )
        assert enc(obj) == json.dumps(obj.to_data(), sort_keys=True)


def test_encoder_falls_back_for_values_of_the_wrong_type() -> None:
    enc = encoder_for(Item)
    assert enc is not None
    odd = Item(True, None, 3, None)  # type: ignore[arg-type]
    assert enc(odd) == json.dumps(odd.to_data(), sort_keys=True)
    nested = encoder_for(Assembly)
    assert nested is not None
    a = Assembly(
        "s",
        1,
        [Part("p", dt.date(2020, 1, 1))],
        main=Part("m", dt.date(2020, 1, 1)),
        extra={"é": 1},
    )
    assert nested(a) == json.dumps(a.to_data(), sort_keys=True)


def test_batch_decoder_takes_the_slow_path_for_unexpected_keys() -> None:
    decode = batch_decoder_for(Item)
    rows = [
        Item(1, "a", 0.5, T0).to_data(),
        {"itemId": 2, "name": "b", "score": 1.0, "created": T0.isoformat(), "x": 1},
    ]
    out = decode(rows)
    assert out[0] == Item(1, "a", 0.5, T0)
    assert out[1].itemId == 2 and not hasattr(out[1], "x")


class Moments(BaseData, id="k"):
    k: int
    at: dt.datetime
    day: dt.date
    clock: dt.time


def test_temporal_encoding_is_byte_identical_to_isoformat() -> None:
    rng = random.Random(7)
    enc = encoder_for(Moments)
    assert enc is not None
    zones = [
        None,
        dt.timezone.utc,
        dt.timezone(dt.timedelta(hours=5, minutes=30)),
        dt.timezone(dt.timedelta(hours=-3)),
    ]
    for i in range(3000):
        micro = rng.choice([0, 1, 10, 99, 999999, 100000, rng.randint(0, 999999)])
        at = dt.datetime(
            rng.randint(1, 9999),
            rng.randint(1, 12),
            rng.randint(1, 28),
            rng.randint(0, 23),
            rng.randint(0, 59),
            rng.randint(0, 59),
            micro,
            tzinfo=rng.choice(zones),
        )
        obj = Moments(i, at, at.date(), at.time())
        assert enc(obj) == json.dumps(obj.to_data(), sort_keys=True)
        assert Moments.from_data(json.loads(enc(obj))) == obj
