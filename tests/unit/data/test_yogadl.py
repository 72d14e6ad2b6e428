"""YogaDL's Storage API on datasets and streams: submit/fetch/stream, sharding and resume as the
dataset stream computes them, skip_shuffle_at_epoch_end, cacheable, tf.data inputs, errors."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hypermodel import yogadl
from hypermodel.data.dataset import Dataset
from hypermodel.data.errors import DatasetExistsError, DatasetNotFoundError, DatasetUsageError
from hypermodel.data.model import BaseData
from hypermodel.data.stream import Stream as DatasetStream
from hypermodel.data.yogadl import LFSStorage, TensorRecord
from hypermodel.yogadl.storage import (
    GCSConfigurations,
    LFSConfigurations,
    S3Configurations,
    S3Storage,
)
from tests.support import require_module

N = 103


class Rec(BaseData, id="recId"):
    recId: int
    text: str


def recs(n: int = N) -> list[Rec]:
    return [Rec(recId=i, text=f"record {i}") for i in range(n)]


@pytest.fixture
def storage(tmp_path: Path) -> LFSStorage:
    return yogadl.storage.LFSStorage(LFSConfigurations(str(tmp_path / "yoga")))


@pytest.fixture
def ref(storage: LFSStorage) -> yogadl.DataRef:
    storage.submit(recs(), "recs", "1.0")
    return storage.fetch("recs", "1.0")


def ids(stream: Any) -> list[int]:
    return [r.recId for r in stream]


def epochs(stream: Any, k: int) -> list[list[int]]:
    return [ids(stream.iterator_fn()) for _ in range(k)]


def test_submit_fetch_stream_round_trip_in_submission_order(
    storage: LFSStorage, ref: yogadl.DataRef
) -> None:
    assert isinstance(ref.dataset, Dataset)  # a submitted dataset is a dataset
    assert ref.dataset.exists() and ref.dataset.storage.url == storage.url
    assert sorted(r.recId for r in ref.dataset) == list(range(N))
    stored_order = [r.recId for r in ref.dataset]
    assert stored_order != list(range(N))  # the dataset is in chunk order ...
    stream = ref.stream()
    assert ids(stream) == list(range(N))  # ... the DataRef streams in submission order
    assert stream.length == len(stream) == len(ref) == N
    assert stream.output_types is Rec and stream.output_shapes is None
    assert ids(ref.stream()) == [r.recId for r in recs()]
    assert list(ref.stream()) == recs()  # whole objects round-trip
    assert storage.versions("recs") == ["1.0"]


def test_each_iterator_fn_call_is_the_next_epoch(ref: yogadl.DataRef) -> None:
    stream = ref.stream(shuffle=True, shuffle_seed=777)
    first, second, third = epochs(stream, 3)
    assert sorted(first) == sorted(second) == list(range(N))
    assert len({tuple(first), tuple(second), tuple(third)}) == 3  # reshuffled every epoch
    again = ref.stream(shuffle=True, shuffle_seed=777)
    assert epochs(again, 3) == [first, second, third]  # reproducible from the seed


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"shuffle": True, "shuffle_seed": 5},
        {"shard_rank": 1, "num_shards": 4},
        {"shard_rank": 3, "num_shards": 4, "drop_shard_remainder": True},
        {"shuffle": True, "shuffle_seed": 9, "shard_rank": 2, "num_shards": 3},
        {"start_offset": 40, "shuffle": True, "shuffle_seed": 1, "num_shards": 2},
        {"start_offset": 130, "shuffle": True, "shuffle_seed": 2, "shard_rank": 1, "num_shards": 2},
        {"start_offset": 7},
    ],
)
def test_order_sharding_and_resume_match_the_dataset_stream(
    storage: LFSStorage, options: dict[str, Any]
) -> None:
    """The submission indices a DataRef stream yields are the positions an equal dataset
    stream yields: the same shards, permutations and resume points."""
    storage.submit(recs(), "recs", "1")
    ref = storage.fetch("recs", "1")
    stream = ref.stream(**options)
    got = [i for epoch in epochs(stream, 3) for i in epoch]
    existing = DatasetStream(ref.dataset, epochs=None, **options)
    want = []
    for epoch in existing.slices():
        want.extend(epoch)
        if len(want) >= len(got):
            break
    assert got == want[: len(got)]
    assert stream.length == existing.records_per_epoch


def test_position_resumes_the_exact_order(ref: yogadl.DataRef) -> None:
    options = {"shuffle": True, "shuffle_seed": 3, "shard_rank": 0, "num_shards": 2}
    full = ref.stream(**options)
    order = [i for epoch in epochs(full, 3) for i in epoch]
    first = ref.stream(**options)
    it = first.iterator_fn()
    taken = ids(next(it) for _ in range(10))  # stopped in the middle of the first epoch
    assert first.position == 10
    resumed = ref.stream(start_offset=first.position, **options)
    rest = [i for epoch in epochs(resumed, 3) for i in epoch]
    assert taken + rest[: len(order) - 10] == order


def test_shards_are_disjoint_and_complete(ref: yogadl.DataRef) -> None:
    shards = [ids(ref.stream(shard_rank=r, num_shards=4)) for r in range(4)]
    assert sorted(i for s in shards for i in s) == list(range(N))
    assert shards[1] == list(range(1, N, 4))  # YogaDL: rank r gets keys[r::n]
    even = [ref.stream(shard_rank=r, num_shards=4, drop_shard_remainder=True) for r in range(4)]
    assert {s.length for s in even} == {N // 4}


def test_skip_shuffle_at_epoch_end_keeps_one_permutation(ref: yogadl.DataRef) -> None:
    stream = ref.stream(shuffle=True, skip_shuffle_at_epoch_end=True, shuffle_seed=11)
    first, second, third = epochs(stream, 3)
    assert first == second == third and first != sorted(first)
    assert sorted(first) == list(range(N))
    # the permutation is the first epoch's of a reshuffling stream with the same seed
    assert first == ids(ref.stream(shuffle=True, shuffle_seed=11).iterator_fn())
    # resuming mid-epoch continues in that same permutation, and the next epochs repeat it
    resumed = ref.stream(
        start_offset=2 * N + 30, shuffle=True, skip_shuffle_at_epoch_end=True, shuffle_seed=11
    )
    assert epochs(resumed, 2) == [first[30:], first]


def test_shuffle_without_seed_draws_and_exposes_one(
    ref: yogadl.DataRef, caplog: pytest.LogCaptureFixture
) -> None:
    stream = ref.stream(shuffle=True)
    assert isinstance(stream.seed, int)
    assert "shuffle_seed=" in caplog.text
    assert epochs(stream, 1) == epochs(ref.stream(shuffle=True, shuffle_seed=stream.seed), 1)


def _build_log(log: Path) -> Iterator[Rec]:
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    yield from recs()


def test_cacheable_runs_the_builder_once(storage: LFSStorage, tmp_path: Path) -> None:
    log = tmp_path / "builds"

    @storage.cacheable("cached", "2.0")
    def make() -> Iterator[Rec]:
        return _build_log(log)

    first = make()
    second = make()
    assert isinstance(first, yogadl.DataRef) and isinstance(second, yogadl.DataRef)
    assert len(log.read_text().splitlines()) == 1
    assert ids(second.stream()) == list(range(N))
    assert ids(storage.fetch("cached", "2.0").stream()) == list(range(N))  # fetch sees it


def _cached_in_child(args: tuple[str, str]) -> list[int]:
    root, log = args
    storage = LFSStorage(root)

    @storage.cacheable("race", "1")
    def make() -> Iterator[Rec]:
        return _build_log(Path(log))

    return ids(make().stream(shuffle=True, shuffle_seed=4).iterator_fn())


def test_cacheable_builds_once_across_processes(tmp_path: Path) -> None:
    log = tmp_path / "builds"
    args = (str(tmp_path / "bucket"), str(log))
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        orders = pool.map(_cached_in_child, [args] * 4)
    assert len(log.read_text().splitlines()) == 1
    assert all(order == orders[0] for order in orders) and sorted(orders[0]) == list(range(N))


def test_unknown_id_or_version_names_them(storage: LFSStorage, ref: yogadl.DataRef) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        storage.fetch("recs", "9.9")
    assert "'recs' version '9.9'" in str(err.value) and "versions are: 1.0" in str(err.value)
    with pytest.raises(DatasetNotFoundError) as err:
        storage.fetch("nothing", "1.0")
    assert "'nothing'" in str(err.value) and "no version of 'nothing'" in str(err.value)


def test_a_pair_is_written_once_and_bad_inputs_are_refused(
    storage: LFSStorage, ref: yogadl.DataRef
) -> None:
    with pytest.raises(DatasetExistsError, match=r"'recs' version '1\.0' already exists"):
        storage.submit(recs(3), "recs", "1.0")
    with pytest.raises(DatasetUsageError, match="BaseData"):
        storage.submit([1, 2, 3], "ints", "1")
    with pytest.raises(DatasetUsageError, match="empty"):
        storage.submit([], "empty", "1")
    assert storage.versions("ints") == storage.versions("empty") == []
    with pytest.raises(DatasetUsageError, match="num_shards"):
        ref.stream(num_shards=0)


def test_storage_constructors_map_to_urls(tmp_path: Path) -> None:
    assert LFSStorage(str(tmp_path)).url == f"file://{tmp_path}"
    assert GCSConfigurations("b", "some/dir", url="wss://coordinator").url == "gs://b/some/dir"
    s3 = S3Configurations("b", "p", access_key="k", secret_key="s", endpoint_url="http://x")
    assert s3.url == "s3://b/p"
    assert s3.options == {"key": "k", "secret": "s", "endpoint_url": "http://x"}
    require_module("s3fs")
    assert S3Storage(s3).url.startswith("s3://b/p")


# -- tf.data inputs ------------------------------------------------------------------------------
def test_tf_dataset_round_trip(storage: LFSStorage) -> None:
    tf = require_module("tensorflow")
    import numpy as np  # installed with tensorflow

    storage.submit(tf.data.Dataset.range(10), "range", "1.0")
    ref = storage.fetch("range", "1.0")
    assert ref.dataset.dataType is TensorRecord
    stream = ref.stream()
    assert stream.output_types == tf.int64 and stream.output_shapes == tf.TensorShape([])
    got = list(stream)
    assert got == list(range(10)) and isinstance(got[0], np.int64)
    # the seed's walkthrough: start_offset applies once, each repeat is the next epoch
    shuffled = ref.stream(start_offset=5, shuffle=True, shuffle_seed=777)
    data = yogadl.tensorflow.make_tf_dataset(shuffled).repeat(3).batch(5)
    values = [int(v) for batch in data for v in batch.numpy()]
    assert len(values) == 25
    epoch0 = ids_of(ref.stream(shuffle=True, shuffle_seed=777))
    assert values[:5] == epoch0[5:] and sorted(values[5:15]) == list(range(10))


def ids_of(stream: Any) -> list[int]:
    return [int(v) for v in stream.iterator_fn()]


def test_tf_structured_elements_round_trip(storage: LFSStorage) -> None:
    tf = require_module("tensorflow")
    import numpy as np  # installed with tensorflow

    features = np.arange(12, dtype=np.float32).reshape(4, 3)
    labels = np.array([b"a", b"bb", b"", b"\xff"], dtype=object)
    source = tf.data.Dataset.from_tensor_slices(
        ({"x": features, "n": np.arange(4, dtype=np.int32)}, labels)
    )
    storage.submit(source, "pairs", "1")
    ref = storage.fetch("pairs", "1")
    assert ref.element_spec == source.element_spec
    got = list(ref.stream())
    assert len(got) == 4
    for i, (inputs, label) in enumerate(got):
        np.testing.assert_array_equal(inputs["x"], features[i])
        assert inputs["x"].dtype == np.float32 and inputs["n"] == i and label == labels[i]
    rebuilt = yogadl.tensorflow.make_tf_dataset(ref.stream())
    assert rebuilt.element_spec == source.element_spec
    back = [(e[0]["x"].numpy().tolist(), e[1].numpy()) for e in rebuilt]
    assert back == [(features[i].tolist(), labels[i]) for i in range(4)]


def test_tf_cacheable_and_basedata_to_tf(storage: LFSStorage, ref: yogadl.DataRef) -> None:
    tf = require_module("tensorflow")
    calls = []

    @storage.cacheable("range", "2.0")
    def make_records() -> Any:
        calls.append(1)
        return tf.data.Dataset.range(10)

    assert ids_of(make_records().stream()) == list(range(10))
    assert ids_of(make_records().stream()) == list(range(10))
    assert calls == [1]
    data = yogadl.tensorflow.make_tf_dataset(ref.stream())  # BaseData -> to_data() dicts
    assert [int(x["recId"]) for x in data.take(3)] == [0, 1, 2]


def test_importing_the_yogadl_names_does_not_import_tensorflow() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from hypermodel import yogadl\n"
        "import hypermodel.yogadl.storage, hypermodel.yogadl.tensorflow\n"
        "assert yogadl.storage.LFSStorage and yogadl.tensorflow.make_tf_dataset\n"
        "print('tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_submitted_dataset_streams_as_the_dataset_does(
    storage: LFSStorage, tmp_path: Path
) -> None:
    """Submitting a hypermodel Dataset keeps its order: the DataRef stream yields the very
    objects its ``Dataset.stream`` yields, for shards, shuffles and offsets."""
    source = Dataset(Rec, tmp_path / "plain", name="recs", repoData={"commitHash": "test"})
    with source.open("w") as writer:
        for r in recs():
            writer.append(r)
    storage.submit(source, "from-dataset", "1")
    ref = storage.fetch("from-dataset", "1")
    assert list(ref.keys) == list(range(N))
    options = {"start_offset": 50, "shuffle": True, "shuffle_seed": 8, "num_shards": 2}
    stream = ref.stream(**options)
    got = [r for _ in range(3) for r in stream.iterator_fn()]
    want = list(source.stream(epochs=4, **options))[: len(got)]
    assert got == want and len(got) == 3 * stream.length - 50
