from __future__ import annotations

import hashlib

import pytest

from hypermodel.data import format as fmt
from hypermodel.data.errors import DatasetUsageError
from hypermodel.data.model import placer_for

from .models import Assembly, Item, items


def reference_chunk(hash_id: object, count: int) -> str:
    """Hypergol 0.2.1's rule, written out: SHA1 of the str parts joined without a separator."""
    parts = hash_id if isinstance(hash_id, tuple) else (hash_id,)
    return hashlib.sha1("".join(str(p) for p in parts).encode()).hexdigest()[
        : fmt.VALID_CHUNKS[count]
    ]


@pytest.mark.parametrize("count,digits", [(16, 1), (256, 2), (4096, 3)])
def test_chunk_ids(count: int, digits: int) -> None:
    ids = fmt.chunk_ids(count)
    assert len(ids) == count and all(len(i) == digits for i in ids)
    assert ids[0] == "0" * digits and ids[-1] == "f" * digits


@pytest.mark.parametrize("count", [16, 256, 4096])
@pytest.mark.parametrize("hash_id", [5, "5", (1, 23), ("lyon", 7), "é", (0,), 10**30])
def test_chunk_assignment_matches_hypergol(hash_id: object, count: int) -> None:
    expected = reference_chunk(hash_id, count)
    assert fmt.chunk_id_of(hash_id, count) == expected
    assert fmt.chunk_ids(count)[fmt.chunk_index(hash_id, count)] == expected


def test_the_separator_less_join_collides_as_documented() -> None:
    assert fmt.hash_key((1, 23)) == fmt.hash_key((12, 3)) == fmt.hash_key("123")
    assert fmt.chunk_id_of((1, 23), 4096) == fmt.chunk_id_of((12, 3), 4096)
    assert fmt.chunk_id_of(5, 256) == fmt.chunk_id_of("5", 256)


@pytest.mark.parametrize("bad", [1.5, (1, 2.0), None, [1], True, (1, True)])
def test_hash_ids_must_be_ints_and_strs(bad: object) -> None:
    with pytest.raises(DatasetUsageError, match="hash id"):
        fmt.chunk_index(bad, 16)


@pytest.mark.parametrize("count", [0, 1, 15, 17, 1024, "16"])
def test_chunk_count_must_be_16_256_or_4096(count: object) -> None:
    with pytest.raises(DatasetUsageError, match="16, 256 or 4096"):
        fmt.check_chunk_count(count)  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [16, 256, 4096])
def test_generated_placer_agrees_with_the_rule(count: int) -> None:
    place = placer_for(Item, count)
    assert place is not None
    lines: list[list[str]] = [[] for _ in range(count)]
    for obj in items(500):
        place(obj, lines)
    placed = {line: i for i, chunk in enumerate(lines) for line in chunk}
    encode = fmt.line_encoder(Item)
    for obj in items(500):
        assert fmt.chunk_ids(count)[placed[encode(obj)]] == reference_chunk(obj.get_id(), count)


def test_placer_refuses_ids_of_the_wrong_type() -> None:
    place = placer_for(Assembly, 16)
    assert place is not None
    lines: list[list[str]] = [[] for _ in range(16)]
    assert place(Assembly("s", 1.5, []), lines) == -1  # type: ignore[arg-type]
    assert not any(lines)


def test_def_and_chk_text_format() -> None:
    assert fmt.dump_def({"b": 1, "a": [1]}) == '{\n    "a": [\n        1\n    ],\n    "b": 1\n}'
    assert (
        fmt.dump_chk({"x_1.jsonl.gz": "ab", "x.def": "cd"})
        == '{\n    "x.def": "cd",\n    "x_1.jsonl.gz": "ab"\n}'
    )
    assert fmt.sha1_text("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709"
