"""The generated encoder must write, for every field type, exactly the bytes of Hypergol's line
``json.dumps(obj.to_data(), sort_keys=True)``, or refuse what json.dumps refuses, the same way.

A seeded random generator (hypothesis is not a dependency) draws values at the edges: floats
of every exponent and the repr/orjson boundaries, nan and inf, unicode escapes, surrogates and
control characters, empty and nested lists, None inside lists, values of the wrong type (ints
in float lists, bools in int lists, tuples for lists, enum members, subclasses, huge ints)."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import random
import struct
from typing import Any

import pytest

from hypermodel.data import BaseData
from hypermodel.data.codegen import appender_for
from hypermodel.data.model import encoder_for, placer_for


class Tag(BaseData):
    label: str
    weight: float | None = None


class Shapes(BaseData, id="k"):
    k: int
    flag: bool
    maybe_flag: bool | None
    n: int | None
    x: float | None
    s: str | None
    strs: list[str]
    ints: list[int]
    floats: list[float]
    grid: list[list[float]]
    int_grid: list[list[int]]
    bools: list[bool]
    holes: list[float | None]
    tags: list[Tag]
    maybe_tags: list[Tag | None]
    tag: Tag | None
    days: list[dt.date]
    words: list[list[str]]
    weights: dict[str, float]
    anything: Any
    mixed: list[Any]
    records: list[dict[str, float]] | None
    été: str  # a non-ASCII key, sorted and escaped as json does
    Zed: int  # upper case sorts before lower case


class SpillNever:
    """The writer an appender is made for in these tests: a budget never reached."""

    buffer_bytes = 1 << 30

    def spill_all(self) -> None:  # pragma: no cover - the budget is never reached
        raise AssertionError("no spill expected")


class Colour(enum.Enum):
    RED = 1.5


class Level(enum.IntEnum):
    HIGH = 3


class MyFloat(float):
    pass


class MyInt(int):
    pass


class MyStr(str):
    pass


EDGE_FLOATS = [
    0.0,
    -0.0,
    1.0,
    0.1,
    0.1 + 0.2,
    1e16,
    -1e16,
    1e15,
    9999999999999998.0,
    1.5e16,
    1e17,
    1e22,
    1e23,
    float(2**53),
    float(2**60),
    float(10**18),
    1e-4,
    -1e-4,
    9.999999999999999e-05,
    0.00010000000000000002,
    1e-5,
    5e-5,
    1.7956642639792698e-05,
    1e-7,
    -1e-7,
    5e-324,
    2.5e-300,
    1.7976931348623157e308,
    1.00001,
    10.00001,
    -100.000001,
    123456789.123,
    1 / 3,
    2.0**52 + 0.5,
    math.nan,
    math.inf,
    -math.inf,
]
EDGE_STRINGS = [
    "",
    "plain",
    "é",
    "naïve café ñ ü",
    "日本語",
    "\U0001f600",
    "\ud800",  # a lone surrogate
    "\udfff\ud800",
    '"quoted"',
    "back\\slash",
    "\n\r\t\b\f",
    "\x00\x01\x1f\x7f",
    "\u2028\u2029",
    "</script>",
    "{}[],:",
    "'",
    "a" * 80,
]


def random_float(rng: random.Random) -> float:
    pick = rng.randrange(5)
    if pick == 0:
        return rng.choice(EDGE_FLOATS)
    if pick == 1:
        return struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]  # type: ignore[no-any-return]
    if pick == 2:
        return rng.random() * 10.0 ** rng.randint(-9, 24) * rng.choice([1, -1])
    if pick == 3:
        return round(rng.uniform(-1e5, 1e5), rng.randint(0, 8))
    return float(rng.randint(-(2**62), 2**62))


def random_str(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(EDGE_STRINGS) + rng.choice(EDGE_STRINGS)
    return "".join(
        chr(rng.choice([rng.randint(0, 0x7F), rng.randint(0, 0x10FFFF)]))
        for _ in range(rng.randint(0, 12))
    )


def odd(rng: random.Random) -> Any:
    """A value of some other type than declared."""
    return rng.choice(
        [
            None,
            True,
            False,
            1,
            0,
            -7,
            2**70,
            -(2**64),
            2**63,
            1.5,
            math.nan,
            "s",
            MyStr("sub"),
            MyInt(5),
            MyFloat(2.5),
            MyFloat(math.inf),
            Level.HIGH,
            [1, 2],
            (1.5, 2.5),
            {"b": 1, "a": [None]},
        ]
    )


def maybe_odd(rng: random.Random, value: Any, rate: float = 0.08) -> Any:
    return odd(rng) if rng.random() < rate else value


def random_list(rng: random.Random, make: Any, rate: float = 0.05) -> Any:
    items = [maybe_odd(rng, make(rng), rate) for _ in range(rng.choice([0, 1, 2, 4, 8]))]
    roll = rng.random()
    if roll < 0.03:
        return tuple(items)
    if roll < 0.05:
        return None
    return items


def random_tag(rng: random.Random) -> Any:
    return Tag(random_str(rng), rng.choice([None, random_float(rng)]))


def random_shapes(rng: random.Random, k: int) -> Shapes:
    return Shapes(
        k=k,
        flag=maybe_odd(rng, rng.random() < 0.5),
        maybe_flag=maybe_odd(rng, rng.choice([None, True, False])),
        n=maybe_odd(rng, rng.choice([None, rng.randint(-(10**12), 10**12), 2**65])),
        x=maybe_odd(rng, rng.choice([None, random_float(rng)])),
        s=maybe_odd(rng, rng.choice([None, random_str(rng)])),
        strs=random_list(rng, random_str),
        ints=random_list(rng, lambda r: r.choice([0, 1, -1, r.randint(-(2**63), 2**64), 2**64])),
        floats=random_list(rng, random_float),
        grid=random_list(rng, lambda r: random_list(r, random_float, 0.02), 0.02),
        int_grid=random_list(rng, lambda r: random_list(r, lambda q: q.randint(-9, 9), 0.02)),
        bools=random_list(rng, lambda r: r.random() < 0.5),
        holes=random_list(rng, lambda r: r.choice([None, random_float(r)])),
        tags=random_list(rng, random_tag, 0.0),
        maybe_tags=random_list(rng, lambda r: r.choice([None, random_tag(r)]), 0.0),
        tag=rng.choice([None, random_tag(rng)]),
        days=random_list(rng, lambda r: dt.date(r.randint(1, 9999), r.randint(1, 12), 1), 0.0),
        words=random_list(rng, lambda r: random_list(r, random_str)),
        weights={random_str(rng): random_float(rng) for _ in range(rng.randint(0, 3))},
        anything=maybe_odd(rng, [random_float(rng), random_str(rng)], 0.5),
        mixed=random_list(rng, lambda r: r.choice([random_float(r), random_str(r), None, True])),
        records=random_list(rng, lambda r: {random_str(r): random_float(r), "a": 1.5}),
        été=random_str(rng),
        Zed=rng.randint(-5, 5),
    )


def reference(obj: BaseData) -> str:
    return json.dumps(obj.to_data(), sort_keys=True)


@pytest.mark.parametrize("seed", range(10))
def test_every_field_type_is_byte_identical_to_json_dumps(seed: int) -> None:
    rng = random.Random(seed)
    enc = encoder_for(Shapes)
    assert enc is not None
    place = placer_for(Shapes, 16)
    assert place is not None
    appended: list[list[str]] = [[] for _ in range(16)]
    slow: list[str] = []
    append = appender_for(Shapes, 16, appended, SpillNever(), lambda o: slow.append(reference(o)))
    assert append is not None
    for k in range(2000):
        obj = random_shapes(rng, k)
        expected = reference(obj)
        assert enc(obj) == expected
        lines: list[list[str]] = [[] for _ in range(16)]
        assert place(obj, lines) == len(expected) + 1
        assert [line for chunk in lines for line in chunk] == [expected + "\n"]
        append[0](obj)
        assert appended == lines and not slow  # the same line, in the same chunk
        for chunk in appended:
            chunk.clear()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("floats", [math.nan, 1.0]),
        ("floats", [math.inf]),
        ("floats", [-math.inf, 0.5]),
        ("floats", [1, 2.5]),  # json writes the int as 1
        ("floats", [True, 0.5]),
        ("floats", [1e-7, 1e16, 1e-5, 1.00001]),
        ("floats", [None, 0.5]),
        ("floats", [MyFloat(0.1), MyFloat(1e-5)]),
        ("floats", (0.5, 1.5)),
        ("floats", []),
        ("grid", [[], [0.5], [1e-5, 2.0]]),
        ("grid", [[0.1 + 0.2, -0.0], [math.nan]]),
        ("grid", [[0.5], 0.5]),
        ("grid", [(0.5, 1.0), [2.0]]),
        ("grid", [[[0.5]]]),
        ("grid", []),
        ("ints", [True, 1, 0]),
        ("ints", [False]),
        ("ints", [1, 0, -1]),
        ("ints", [2**64, 1]),
        ("ints", [2**63, -(2**63)]),
        ("ints", [Level.HIGH, MyInt(7)]),
        ("ints", [1.0]),
        ("ints", ["1"]),
        ("int_grid", [[1, True], [0]]),
        ("bools", [True, False, None]),
        ("bools", [1, 0]),
        ("holes", [None, None]),
        ("holes", [None, math.nan, 0.1]),
        ("strs", ["a", MyStr("b"), "\ud800"]),
        ("strs", ["a", 1]),
        ("strs", [None]),
        ("strs", "abc"),  # a str where a list is declared: json writes the str
        ("maybe_tags", [None, Tag("x")]),
        ("tags", []),
        ("words", [[], ["é", '"'], None]),
        ("flag", 1),
        ("flag", None),
        ("maybe_flag", None),
        ("n", True),
        ("x", math.nan),
        ("x", 1),
        ("s", 5),
    ],
)
def test_edge_values_match_json_dumps(field: str, value: Any) -> None:
    rng = random.Random(1)
    obj = random_shapes(rng, 1)
    setattr(obj, field, value)
    enc = encoder_for(Shapes)
    assert enc is not None
    assert enc(obj) == reference(obj)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("floats", [Colour.RED]),  # orjson writes an enum by value; json refuses it
        ("floats", [1.5, 1j]),
        ("ints", [Colour.RED]),
        ("grid", [[Colour.RED]]),
        ("strs", [b"bytes"]),
        ("bools", [Colour.RED]),
        ("flag", Colour.RED),
        ("x", {1.5}),
    ],
)
def test_what_json_refuses_is_refused_the_same_way(field: str, value: Any) -> None:
    obj = random_shapes(random.Random(2), 1)
    setattr(obj, field, value)
    enc = encoder_for(Shapes)
    assert enc is not None
    with pytest.raises(TypeError):
        reference(obj)
    with pytest.raises(TypeError):
        enc(obj)


@pytest.mark.parametrize(
    ("field", "value"), [("tag", {"label": "x"}), ("tags", [{"label": "x"}]), ("days", ["x"])]
)
def test_what_to_data_refuses_is_refused_the_same_way(field: str, value: Any) -> None:
    obj = random_shapes(random.Random(2), 1)
    setattr(obj, field, value)
    enc = encoder_for(Shapes)
    assert enc is not None
    with pytest.raises(AttributeError):
        reference(obj)
    with pytest.raises(AttributeError):
        enc(obj)


def test_a_subclass_of_a_nested_record_is_written_by_its_to_data() -> None:
    class Special(Tag):
        def to_data(self) -> dict[str, Any]:
            return {"special": self.label}

    obj = random_shapes(random.Random(4), 1)
    obj.tag = Special("x")
    obj.tags = [Special("y"), Tag("z")]
    enc = encoder_for(Shapes)
    assert enc is not None
    assert enc(obj) == reference(obj)


def test_circular_lists_are_refused_like_json() -> None:
    obj = random_shapes(random.Random(3), 1)
    loop: list[Any] = []
    loop.append(loop)
    obj.grid = [loop]
    enc = encoder_for(Shapes)
    assert enc is not None
    with pytest.raises(ValueError):
        reference(obj)
    with pytest.raises(ValueError):
        enc(obj)


def test_number_lists_match_on_random_floats(monkeypatch: pytest.MonkeyPatch) -> None:
    """The orjson path for lists of floats against json.dumps, every exponent; most lists
    must take the fast path (else this would test json against itself)."""
    from hypermodel.data import codegen as model

    slow = []

    def counted(value: Any) -> str:
        slow.append(1)
        return json.dumps(value, sort_keys=True)

    monkeypatch.setattr(model, "_dumps_sorted", counted)
    enc = model._number_list(1, True)
    rng = random.Random(11)
    n = 200_000
    for _ in range(n):
        values = [random_float(rng) for _ in range(rng.randint(0, 2))]
        if rng.random() < 0.5:  # the common range: no exponent either way
            values.append(rng.uniform(-1e6, 1e6) * rng.choice([1, 1e-3, 1e-6, 1e9]))
        assert enc(values) == json.dumps(values)
    assert len(slow) < 0.6 * n


class Scalars(BaseData, id="sid"):
    sid: int
    a: int
    b: float
    c: int | None
    d: float | None
    when: dt.datetime
    day: dt.date
    maybe_when: dt.datetime | None
    flag: bool
    name: str


class LaterDay(dt.datetime):
    pass


def random_scalars(rng: random.Random, k: int, odd_rate: float) -> Scalars:
    def pick(value: Any, *others: Any) -> Any:
        return rng.choice(others) if others and rng.random() < odd_rate else value

    when = dt.datetime(2026, 1, 1) + dt.timedelta(seconds=rng.randint(0, 10**8))
    when = when.replace(microsecond=rng.choice([0, rng.randint(0, 999_999)]))
    edges = [1.5, math.nan, -math.inf, 1e-5, 1e16, 1.00001, None, True, 2, MyFloat(0.5), "1"]
    ints = [2**64, 2**63, -(2**63) - 1, -(2**63), 2**64 - 1, True, MyInt(3), Level.HIGH, 1.5]
    times = [
        when.replace(tzinfo=dt.timezone.utc),
        when.replace(tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        when.replace(tzinfo=dt.timezone(dt.timedelta(seconds=30))),  # orjson: +00:01
        when.replace(tzinfo=dt.timezone(dt.timedelta(hours=-3, seconds=-5))),
        LaterDay(2026, 1, 2),
        dt.date(2026, 1, 2),
        None,
    ]
    return Scalars(
        sid=pick(k, 2**64, -1),
        a=pick(rng.randint(-(2**63), 2**64 - 1), *ints),
        b=pick(rng.uniform(-1e6, 1e6) if rng.random() < 0.5 else random_float(rng), *edges),
        c=pick(rng.choice([None, rng.randint(-(10**12), 10**12)]), *ints),
        d=pick(rng.choice([None, rng.uniform(1e-4, 1e15)]), *edges),
        when=pick(when, *times),
        day=pick(when.date(), when, None),
        maybe_when=pick(rng.choice([None, when]), *times),
        flag=pick(rng.random() < 0.5, None, 1),
        name=pick(random_str(rng), None, 5),
    )


@pytest.mark.parametrize("odd_rate", [0.0, 0.05, 0.3])
def test_numbers_and_times_batched_in_one_orjson_call_match_json_dumps(odd_rate: float) -> None:
    """Three or more int, float and naive date/time fields are formatted by one orjson call
    (split at its commas); every value out of that path's range or type takes json's."""
    from hypermodel.data import codegen

    assert codegen._encoder_parts(codegen.schema_of(Scalars), {})[2] is not None
    enc = encoder_for(Scalars)
    place = placer_for(Scalars, 16)
    assert enc is not None and place is not None

    appended: list[list[str]] = [[] for _ in range(16)]
    slow: list[str] = []
    append = codegen.appender_for(
        Scalars, 16, appended, SpillNever(), lambda obj: slow.append(reference(obj) + "\n")
    )
    assert append is not None
    rng = random.Random(int(odd_rate * 100) + 18)
    expected = []
    for k in range(3000):
        obj = random_scalars(rng, k, odd_rate)
        line = reference(obj)
        expected.append(line + "\n")
        assert enc(obj) == line
        lines: list[list[str]] = [[] for _ in range(16)]
        assert place(obj, lines) in (len(line) + 1, -1)
        assert [x for chunk in lines for x in chunk] in ([line + "\n"], [])
        append[0](obj)
    got = sorted([x for chunk in appended for x in chunk] + slow)
    assert got == sorted(expected)
    assert not slow  # every id is an int: no object needs the checked path


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("floats", [True, False])
def test_number_lists_of_every_depth_match_json_dumps(depth: int, floats: bool) -> None:
    from hypermodel.data import codegen

    enc = codegen._number_list(depth, floats)
    rng = random.Random(depth * 2 + floats)

    def leaf(r: random.Random) -> Any:
        if r.random() < 0.03:
            return odd(r)
        return (
            random_float(r) if floats else r.choice([r.randint(-9, 9), r.randint(-(2**63), 2**64)])
        )

    def nested(r: random.Random, level: int) -> Any:
        if r.random() < 0.02:
            return odd(r)
        make = (lambda q: leaf(q)) if level == 1 else (lambda q: nested(q, level - 1))
        return [make(r) for _ in range(r.choice([0, 1, 2, 4]))]

    for _ in range(5000):
        value = nested(rng, depth)
        try:
            expected = json.dumps(value, sort_keys=True)
        except (TypeError, ValueError) as exc:
            with pytest.raises(type(exc)):
                enc(value)
            continue
        assert enc(value) == expected
    with pytest.raises(TypeError):
        enc([Colour.RED] if depth == 1 else [[Colour.RED]] if depth == 2 else [[[Colour.RED]]])
