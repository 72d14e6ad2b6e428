"""Streams: order, shuffle, shards, offsets across epochs, the index, prefetch and adapters."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import IO, Any

import pytest

from hypermodel.data import stream as stream_mod
from hypermodel.data.dataset import Dataset
from hypermodel.data.errors import DatasetCorruptError, DatasetUsageError
from hypermodel.data.index import forget_verdicts, index_key, load_index
from hypermodel.data.model import BaseData
from hypermodel.data.stream import epoch_order, epoch_seed, records_at, shard_positions
from hypermodel.storage.local import LocalStorage
from tests.support import require_module, unavailable
from tests.unit.data.helpers import CountingStorage

N = 1000


class Rec(BaseData, id="recId"):
    recId: int
    text: str


def _write(root: Path, n: int = N, name: str = "recs", flush: int = 3000) -> Dataset:
    ds = Dataset(Rec, root, name=name, repoData={"commitHash": "test"})
    # a small flush size makes several gzip members per chunk: the index must find each
    with ds.open("w", buffer_bytes=flush) as writer:
        for i in range(n):
            writer.append(Rec(recId=i, text=f"record {i}"))
    return ds


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return _write(tmp_path_factory.mktemp("streams"))


@pytest.fixture(scope="module")
def order(ds: Dataset) -> list[int]:
    """Record ids in dataset position order (chunk order, then order in the chunk)."""
    return [r.recId for r in ds]


def ids(stream: Any) -> list[int]:
    return [r.recId for r in stream]


def test_plain_stream_is_dataset_order_and_has_several_members(
    ds: Dataset, order: list[int]
) -> None:
    s = ds.stream(epochs=1)
    assert ids(s) == order
    assert len(s) == N
    assert sum(len(c.members) for c in s.index.chunks) > len(ds.chunk_ids())


def test_epochs_repeat_and_none_repeats_forever(ds: Dataset, order: list[int]) -> None:
    assert ids(ds.stream(epochs=2)) == order + order
    forever = ds.stream()
    it = iter(forever)
    assert [next(it).recId for _ in range(N + 5)] == order + order[:5]
    with pytest.raises(TypeError, match="epochs=N"):
        len(forever)
    assert ids(ds.stream(epochs=0)) == []


def test_shuffle_is_a_reproducible_true_permutation_per_epoch(
    ds: Dataset, order: list[int]
) -> None:
    two = ids(ds.stream(shuffle=True, shuffle_seed=777, epochs=2))
    first, second = two[:N], two[N:]
    assert sorted(first) == sorted(order) == sorted(second)
    assert first != order and first != second
    assert ids(ds.stream(shuffle=True, shuffle_seed=777, epochs=2)) == two
    assert ids(ds.stream(shuffle=True, shuffle_seed=778, epochs=1)) != first


def test_epoch_seeds_do_not_collide_across_seeds(ds: Dataset) -> None:
    # a seed+epoch scheme makes seed 778 epoch 0 equal to seed 777 epoch 1
    assert epoch_seed(778, 0) != epoch_seed(777, 1)
    seed777 = ids(ds.stream(shuffle=True, shuffle_seed=777, epochs=2))
    seed778 = ids(ds.stream(shuffle=True, shuffle_seed=778, epochs=1))
    assert seed777[N:] != seed778
    assert list(epoch_order(range(50), True, 778, 0)) != list(epoch_order(range(50), True, 777, 1))


def test_shuffle_without_seed_picks_logs_and_exposes_one(
    ds: Dataset, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hypermodel.data.stream"):
        s = ds.stream(shuffle=True, epochs=1)
    assert isinstance(s.seed, int)
    assert f"shuffle_seed={s.seed}" in caplog.text
    assert ids(s) == ids(ds.stream(shuffle=True, shuffle_seed=s.seed, epochs=1))


@pytest.mark.parametrize("shuffle", [False, True])
def test_shards_are_disjoint_complete_and_fixed_across_epochs(
    ds: Dataset, order: list[int], shuffle: bool
) -> None:
    shards = [
        ids(ds.stream(shuffle=shuffle, shuffle_seed=5, shard_rank=r, num_shards=3, epochs=2))
        for r in range(3)
    ]
    for r, got in enumerate(shards):
        per_epoch = len(range(r, N, 3))
        e0, e1 = got[:per_epoch], got[per_epoch:]
        assert sorted(e0) == sorted(e1) == sorted(order[r::3])  # rank r owns keys[r::n]
    everything = [i for got in shards for i in got[: len(got) // 2]]
    assert sorted(everything) == sorted(order)


def test_drop_shard_remainder_evens_shards(ds: Dataset) -> None:
    lengths = [
        len(ds.stream(shard_rank=r, num_shards=3, drop_shard_remainder=True, epochs=1))
        for r in range(3)
    ]
    assert lengths == [N // 3] * 3
    assert len(ds.stream(shard_rank=0, num_shards=3, epochs=1)) == N // 3 + 1
    assert list(shard_positions(10, 1, 3, True)) == [1, 4, 7]


@pytest.mark.parametrize("offset", [0, 1, 399, N - 1, N, N + 123, 2 * N - 1])
def test_offset_resumes_the_exact_order_across_epochs(ds: Dataset, offset: int) -> None:
    options = dict(shuffle=True, shuffle_seed=42, shard_rank=1, num_shards=2, epochs=4)
    full = ids(ds.stream(**options))
    resumed = ds.stream(start_offset=offset, **options)
    assert len(resumed) == len(full) - offset
    assert ids(resumed) == full[offset:]


def test_position_checkpoints_a_partial_pass(ds: Dataset) -> None:
    s = ds.stream(shuffle=True, shuffle_seed=3, epochs=3)
    it = iter(s)
    head = [next(it).recId for _ in range(1234)]
    assert s.position == 1234
    rest = ids(ds.stream(shuffle=True, shuffle_seed=3, epochs=3, start_offset=s.position))
    assert head + rest == ids(ds.stream(shuffle=True, shuffle_seed=3, epochs=3))


def test_offset_reads_no_skipped_member(ds: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[tuple[str, int]] = []
    real = stream_mod.read_members

    def spy(dataset: Dataset, chunk: Any, number: int, *args: Any) -> dict[int, list[bytes]]:
        read.append((chunk.chunk_id, chunk.members[number].first))
        return real(dataset, chunk, number, *args)

    monkeypatch.setattr(stream_mod, "read_members", spy)
    s = ds.stream(start_offset=N - 3, epochs=1)
    assert len(ids(s)) == 3
    assert read == [(s.index.chunks[-1].chunk_id, s.index.chunks[-1].members[-1].first)]


def test_a_fresh_process_verifies_only_the_chunks_it_touches(tmp_path: Path) -> None:
    _write(tmp_path, n=N, name="fresh", flush=400)
    forget_verdicts()  # as a process that did not write it
    storage = CountingStorage(tmp_path)
    ds = Dataset(Rec, storage=storage, name="fresh")
    got = ids(ds.stream(start_offset=N - 10, epochs=1))
    assert len(got) == 10
    last = Path(storage.root) / ds.chunk_key(ds.chunk_ids()[-1])
    assert storage.read == os.path.getsize(last)  # the last chunk, whole, verified once
    storage.read = 0
    assert ids(ds.stream(start_offset=N - 10, epochs=1)) == got
    assert 0 < storage.read < os.path.getsize(last)  # verified: now only its last member


def test_records_at_positions(ds: Dataset, order: list[int]) -> None:
    picks = [5, N - 1, 0, 5, 377]
    assert [r.recId for r in records_at(ds, picks)] == [order[p] for p in picks]
    assert records_at(ds, []) == []
    with pytest.raises(DatasetUsageError, match="outside"):
        records_at(ds, [N])


def test_too_large_an_offset_yields_nothing_and_len_is_zero(ds: Dataset) -> None:
    s = ds.stream(start_offset=5 * N, epochs=2)
    assert len(s) == 0 and ids(s) == []


@pytest.mark.parametrize(
    "options",
    [
        {"num_shards": 0},
        {"shard_rank": 2, "num_shards": 2},
        {"start_offset": -1},
        {"epochs": -1},
    ],
)
def test_bad_parameters_are_refused(ds: Dataset, options: dict[str, int]) -> None:
    with pytest.raises(DatasetUsageError):
        ds.stream(**options)


def test_prefetch_and_window_do_not_change_the_order(ds: Dataset) -> None:
    base = ids(ds.stream(shuffle=True, shuffle_seed=9, epochs=1, prefetch=0))
    assert ids(ds.stream(shuffle=True, shuffle_seed=9, epochs=1, prefetch=3, window=7)) == base
    # a cache smaller than one member still returns the right records (members re-read)
    small = ds.stream(shuffle=True, shuffle_seed=9, epochs=1, cache_bytes=1)
    assert ids(small) == base


def test_index_is_stored_and_a_stale_one_rebuilt(tmp_path: Path) -> None:
    ds = _write(tmp_path, n=100, name="small")
    ds.stream(epochs=1).index  # noqa: B018 - loads the one written at publish
    key = index_key(ds)
    assert ds.storage.exists(key)
    ds.storage.write_text(key, ds.storage.read_text(key).replace(ds.checksum, "0" * 40))
    assert load_index(ds).checksum == ds.checksum
    ds.storage.write_text(key, "not json")
    assert ids(ds.stream(epochs=1)) == [r.recId for r in ds]


def test_a_corrupt_chunk_fails_loudly(tmp_path: Path) -> None:
    ds = _write(tmp_path, n=100, name="broken")
    path = ds.storage.local_path(ds.chunk_key("3"))
    assert path is not None
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    with pytest.raises(DatasetCorruptError, match="broken_3"):
        list(ds.stream(epochs=1))


def test_a_chunk_altered_after_indexing_fails_loudly(tmp_path: Path) -> None:
    ds = _write(tmp_path, n=100, name="later")
    load_index(ds)
    path = ds.storage.local_path(ds.chunk_key("5"))
    assert path is not None
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    with pytest.raises(DatasetCorruptError, match="later_5"):
        list(ds.stream(epochs=1, prefetch=2))


def test_random_access_reads_only_the_members_it_needs(tmp_path: Path) -> None:
    _write(tmp_path, n=N, name="ranged", flush=400)
    storage = CountingStorage(tmp_path)
    ds = Dataset(Rec, storage=storage, name="ranged")
    # the writer stored the index when it published: no pass over the chunks builds one
    assert storage.exists(index_key(ds))
    total = sum(os.path.getsize(p) for p in Path(storage.root).rglob("ranged_*.jsonl.gz"))
    got = ids(ds.stream(start_offset=N - 10, epochs=1))  # the very first read of the dataset
    assert len(got) == 10
    assert 0 < storage.read < total / 10
    assert got == [r.recId for r in ds][-10:]


def test_torch_adapter_splits_across_two_workers(ds: Dataset) -> None:
    try:
        import torch.utils.data
    except ImportError:
        unavailable("torch is not installed (pip install torch==2.13.0)")
    s = ds.stream(shuffle=True, shuffle_seed=11, shard_rank=1, num_shards=2, epochs=2)
    expected = ids(s)
    loader = torch.utils.data.DataLoader(
        s.to_torch(transform=lambda r: r.recId), batch_size=None, num_workers=2
    )
    got = [int(x) for x in loader]
    assert len(got) == len(expected) == len(s)
    assert sorted(got) == sorted(expected)  # no duplicates, no gaps
    # worker w takes every 2nd record from w, and the loader alternates workers: same order
    assert got == expected


def test_torch_adapter_batches_dicts(ds: Dataset) -> None:
    try:
        import torch.utils.data
    except ImportError:
        unavailable("torch is not installed (pip install torch==2.13.0)")
    loader = torch.utils.data.DataLoader(
        ds.stream(epochs=1).to_torch(transform=lambda r: {"id": r.recId}), batch_size=100
    )
    batches = list(loader)
    assert len(batches) == N // 100
    assert batches[0]["id"].shape == (100,)


def test_tf_adapter_declares_a_signature(ds: Dataset) -> None:
    tf = require_module("tensorflow")
    data = ds.stream(epochs=1).to_tf()
    assert set(data.element_spec) == {"recId", "text"}
    assert data.element_spec["recId"].dtype == tf.int64
    got = [int(x["recId"]) for x in data.take(5)]
    assert got == [r.recId for r in ds][:5]


def test_a_blank_line_in_a_verified_chunk_is_refused_not_skipped(tmp_path: Path) -> None:
    """A chunk published with a blank line between two records (its SHA1 in the .chk, so it
    verifies): the index counts the blank line as a record, and a stream says the record is
    not JSON instead of shifting every later record to another position."""
    ds = Dataset(Rec, tmp_path, name="blank", repoData={"commitHash": "test"})
    sums = {}
    for cid in ds.chunk_ids():
        with ds.chunk_writer(cid, "tok", check_chunk=False) as writer:
            if cid == "0":
                writer.write_line('{"recId": 1, "text": "a"}\n')
                writer.write_line("\n")
                writer.write_line('{"recId": 2, "text": "b"}\n')
        sums[cid] = writer.checksum
    ds.publish(sums, token="tok")
    assert load_index(ds).total == 3
    with pytest.raises(DatasetCorruptError, match="not JSON"):
        list(ds.stream(epochs=1))


class ThreadRecordingStorage(LocalStorage):
    """Local disk that records which threads read chunk files, and can pose as a bucket (no
    local paths) to take the remote defaults."""

    def __init__(self, root: Path, remote: bool = False) -> None:
        super().__init__(root)
        self.remote = remote
        self.readers: set[str] = set()

    def open_read(self, key: str) -> IO[bytes]:
        if ".jsonl.gz" in key:
            self.readers.add(threading.current_thread().name)
        return super().open_read(key)

    def local_path(self, key: str) -> str | None:  # type: ignore[override]
        return None if self.remote else super().local_path(key)


def test_a_shuffled_pass_loads_the_chunks_it_needs_on_several_threads(tmp_path: Path) -> None:
    base = _write(tmp_path, n=N, name="loaders", flush=400)
    expected = ids(base.stream(shuffle=True, shuffle_seed=4, epochs=2, prefetch=0, window=N))
    forget_verdicts()  # as a fresh process: every chunk is verified on first touch
    storage = ThreadRecordingStorage(tmp_path)
    ds = Dataset(Rec, storage=storage, name="loaders")
    got = ids(ds.stream(shuffle=True, shuffle_seed=4, epochs=2, prefetch=0, window=N))
    assert got == expected and sorted(got[:N]) == list(range(N))
    loaders = {name for name in storage.readers if name.startswith("hml-stream-load")}
    assert len(loaders) >= 2, storage.readers


def test_a_chunk_that_fails_on_a_loader_thread_fails_the_stream(tmp_path: Path) -> None:
    ds = _write(tmp_path, n=N, name="loadfail", flush=400)
    forget_verdicts()
    path = Path(str(ds.storage.local_path(ds.chunk_key("7"))))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetCorruptError, match="loadfail_7"):
        list(ds.stream(shuffle=True, shuffle_seed=4, epochs=1, prefetch=0, window=N))


@pytest.mark.parametrize("remote", [False, True])
def test_windows_are_read_ahead_on_a_thread_from_buckets_only(tmp_path: Path, remote: bool) -> None:
    _write(tmp_path, n=N, name="ahead", flush=400)
    storage = ThreadRecordingStorage(tmp_path, remote=remote)
    ds = Dataset(Rec, storage=storage, name="ahead")
    seen: set[str] = set()
    for _ in ds.stream(epochs=1, window=50):  # windows in dataset order: one member at a time
        seen.update(t.name for t in threading.enumerate())
    assert ("hml-stream-prefetch" in seen) is remote
    explicit = ds.stream(epochs=1, window=50, prefetch=2)
    for _ in explicit:
        seen.update(t.name for t in threading.enumerate())
    assert "hml-stream-prefetch" in seen  # asked for, it runs on local disk too
