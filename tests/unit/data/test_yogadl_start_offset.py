"""A DataRef stream's ``start_offset`` applies to its first epoch only (YogaDL's walkthrough:
``.repeat(3)`` over 10 records from offset 5 is 2.5 epochs), and a stream keeps its place
across iterations, in plain Python and through ``make_tf_dataset``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hypermodel import yogadl
from hypermodel.data.model import BaseData
from hypermodel.data.yogadl import LFSStorage
from hypermodel.yogadl.storage import LFSConfigurations
from tests.support import require_module


class Item(BaseData, id="itemId"):
    itemId: int


@pytest.fixture
def storage(tmp_path: Path) -> LFSStorage:
    return yogadl.storage.LFSStorage(LFSConfigurations(str(tmp_path / "yoga")))


def epoch_ids(stream: Any, count: int) -> list[list[int]]:
    return [[item.itemId for item in stream.iterator_fn()] for _ in range(count)]


@pytest.mark.parametrize("shuffle", [False, True])
def test_start_offset_skips_in_the_first_epoch_only(storage: LFSStorage, shuffle: bool) -> None:
    storage.submit([Item(itemId=i) for i in range(10)], "items", "1")
    ref = storage.fetch("items", "1")
    whole = epoch_ids(ref.stream(shuffle=shuffle, shuffle_seed=777), 3)
    first, second, third = epoch_ids(
        ref.stream(start_offset=5, shuffle=shuffle, shuffle_seed=777), 3
    )
    assert first == whole[0][5:]  # the second half of the first epoch
    assert [second, third] == whole[1:]  # then whole epochs, not offset again
    assert sum(map(len, (first, second, third))) == 25
    if not shuffle:
        assert first == [5, 6, 7, 8, 9] and second == list(range(10))


def test_an_offset_past_an_epoch_starts_in_a_later_one(storage: LFSStorage) -> None:
    storage.submit([Item(itemId=i) for i in range(10)], "items", "1")
    ref = storage.fetch("items", "1")
    whole = epoch_ids(ref.stream(shuffle=True, shuffle_seed=3), 4)
    resumed = ref.stream(start_offset=25, shuffle=True, shuffle_seed=3)
    assert epoch_ids(resumed, 2) == [whole[2][5:], whole[3]]
    assert resumed.position == 40  # records yielded, counted from the first epoch


def test_make_tf_dataset_repeat_is_two_and_a_half_epochs(storage: LFSStorage) -> None:
    tf = require_module("tensorflow")
    storage.submit(tf.data.Dataset.range(10), "range", "1.0")
    ref = storage.fetch("range", "1.0")
    options: dict[str, Any] = {"shuffle": True, "shuffle_seed": 777}
    plain = ref.stream(start_offset=5, **options)
    epochs = [[int(v) for v in plain.iterator_fn()] for _ in range(6)]

    dataset = yogadl.tensorflow.make_tf_dataset(ref.stream(start_offset=5, **options))
    batches = dataset.repeat(3).batch(5)
    first = [int(v) for batch in batches for v in batch.numpy()]
    assert len(first) == 25 and first == [v for e in epochs[:3] for v in e]
    # the stream keeps its place: iterating again is the next three (whole) epochs
    second = [int(v) for batch in batches for v in batch.numpy()]
    assert len(second) == 30 and second == [v for e in epochs[3:] for v in e]
