"""Training streams over a published dataset: true shuffle, sharding, resumption, prefetch.

``dataset.stream(start_offset=0, shuffle=False, shuffle_seed=None, shard_rank=0, num_shards=1,
drop_shard_remainder=False, epochs=None)`` yields the dataset's objects in a reproducible order:

- Records are numbered by their position in the dataset (chunk order, then order inside the
  chunk). Shard ``r`` of ``n`` owns positions ``r, r + n, r + 2n, ...`` — fixed for every epoch,
  so each rank sees the same records every epoch, in a new order. With
  ``drop_shard_remainder`` every shard keeps ``total // n`` records, so ranks stay in step.
- ``shuffle``: each epoch is a full permutation of the shard, seeded by a hash of
  ``(seed, epoch)``: seed 778 epoch 0 and seed 777 epoch 1 are unrelated permutations (a
  ``seed + epoch`` scheme would make them equal). A shuffle without a seed draws one, logs it
  and exposes it as ``stream.seed``, so a run can always be replayed.
- ``start_offset`` counts records yielded across epochs (``stream.position`` after a step is
  the offset to resume from). Resuming computes where that offset falls — epoch and place in
  that epoch's permutation — and reads nothing before it.
- ``epochs=None`` repeats forever; ``len()`` is then a TypeError. With ``epochs=k``, ``len()``
  is ``k * records_per_epoch - start_offset``.

Records are read through the dataset index (see ``index``): only the gzip members that hold
the records asked for are read (ranged reads on a bucket, no whole-file download) and kept in
a bounded cache; the members a window lacks are read on several threads (one chunk each). From
a bucket, a background thread also reads ``prefetch`` windows ahead (``None``: 2 from a bucket,
none on local disk, where it only took turns on the GIL with the consumer).
"""

from __future__ import annotations

import bisect
import gc
import hashlib
import itertools
import json
import logging
import operator
import queue
import random
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import orjson

from ..errors import DatasetCorruptError, DatasetUsageError
from .index import (
    ChunkIndex,
    DatasetIndex,
    check_size,
    expected_sha1,
    load_index,
    read_members,
)
from .reader import check_definition, decode_error

if TYPE_CHECKING:
    from ..dataset import Dataset
    from .header import Header

log = logging.getLogger(__name__)

WINDOW = 2048
CACHE_BYTES = 512 << 20
LOADERS = 4  # threads reading the members a window needs, one chunk each at a time
# windows read ahead on a thread by default, from a bucket only: on local disk the thread only
# took turns on the GIL with the consumer (a shuffled pass 3-25 % slower with it, measured on
# every shape of bench/stream.py), since the first window already needs every member
REMOTE_PREFETCH = 2


class StreamLengthError(DatasetUsageError, TypeError):
    """``len()`` of a stream that repeats forever (``epochs=None``)."""


# -- the order: pure functions of (total, parameters) -------------------------------------------
def epoch_seed(seed: int, epoch: int) -> int:
    """A 64-bit seed for one epoch, from a hash of (seed, epoch): no two pairs share it by
    construction of the arithmetic (unlike ``seed + epoch``)."""
    digest = hashlib.sha256(f"hypermodel.stream:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def shard_positions(total: int, rank: int, num_shards: int, drop_remainder: bool) -> range:
    """Dataset positions owned by shard ``rank`` (the same for every epoch)."""
    positions = range(rank, total, num_shards)
    if drop_remainder:
        positions = positions[: total // num_shards]
    return positions


def epoch_order(shard: range, shuffle: bool, seed: int | None, epoch: int) -> Sequence[int]:
    if not shuffle:
        return shard
    order = list(shard)
    random.Random(epoch_seed(seed or 0, epoch)).shuffle(order)
    return order


def stream_slices(
    shard: range,
    shuffle: bool,
    seed: int | None,
    start_offset: int,
    epochs: int | None,
    worker: int = 0,
    num_workers: int = 1,
) -> Iterator[Sequence[int]]:
    """Dataset positions in stream order, one sequence per epoch, starting ``start_offset``
    records in. Worker ``w`` of ``k`` gets the ``j``-th position (counted from the offset)
    when ``j % k == w``."""
    per_epoch = len(shard)
    if per_epoch == 0:
        return
    epoch, skip = divmod(start_offset, per_epoch)
    counted = 0  # positions handed out (to all workers) before this epoch's slice
    while epochs is None or epoch < epochs:
        order = epoch_order(shard, shuffle, seed, epoch)
        first = skip + (worker - counted) % num_workers
        yield order[first::num_workers] if num_workers > 1 or first else order
        counted += per_epoch - skip
        skip = 0
        epoch += 1


def stream_positions(
    shard: range,
    shuffle: bool,
    seed: int | None,
    start_offset: int,
    epochs: int | None,
) -> Iterator[int]:
    """Dataset positions in stream order, starting ``start_offset`` records in."""
    for part in stream_slices(shard, shuffle, seed, start_offset, epochs):
        yield from part


# -- reading ------------------------------------------------------------------------------------
class _Reader:
    """Windows of dataset positions -> decoded objects, through a bounded cache of members.

    Members are numbered in dataset order, so each covers a contiguous range of positions:
    one bisect over their first positions finds the member of any position. Every member is
    verified before its lines are used (``index.read_members``): the first touch of a chunk in
    the process checks the whole chunk against the .chk and fills the cache with the lines of
    its other members too, as far as the budget allows.
    """

    def __init__(
        self, dataset: Dataset, index: DatasetIndex, chk: dict[str, str], budget: int
    ) -> None:
        from ..codegen import batch_decoder_for

        self.dataset = dataset
        self.budget = budget
        from ..rows import row_decoders_for

        self.decode: Callable[[list[Any]], list[Any]] = batch_decoder_for(dataset.dataType)
        fast = row_decoders_for(dataset.dataType)
        self.decode_lines = fast.lines if fast is not None else None
        self.where = f"{dataset.storage.url}/{dataset.directory}"
        self.index = index
        # (chunk, member number in the chunk, the chunk's SHA1 in the .chk) of every member
        # that holds records, in dataset order, and the dataset position of its first record
        self.blocks: list[tuple[ChunkIndex, int, str]] = []
        self.starts: list[int] = []
        self.block_of: dict[tuple[str, int], int] = {}
        for chunk, start in zip(index.chunks, index.starts, strict=True):
            expected = expected_sha1(dataset, chk, chunk.chunk_id)
            for number, m in enumerate(chunk.members):
                if m.count:
                    self.block_of[chunk.chunk_id, number] = len(self.blocks)
                    self.blocks.append((chunk, number, expected))
                    self.starts.append(start + m.first)
        self.cache: OrderedDict[int, list[bytes]] = OrderedDict()
        self.sizes: dict[int, int] = {}
        self.size = 0
        self.sized: set[str] = set()  # chunks whose file size this reader compared
        # position -> line of every cached member (None when not cached): one list lookup per
        # record on the hot path instead of a bisect and two dict lookups
        self.flat: list[bytes | None] = [None] * index.total

    def _load(self, block: int) -> list[bytes]:
        chunk, number, expected = self.blocks[block]
        if chunk.chunk_id not in self.sized:
            self.sized.add(chunk.chunk_id)
            check_size(self.dataset, chunk.chunk_id, expected)
        room = max(0, self.budget - self.size)
        loaded = read_members(self.dataset, chunk, number, expected, room)
        for other, lines in loaded.items():  # members verified with it, the one asked last
            b = self.block_of.get((chunk.chunk_id, other))
            if other != number and b is not None and b not in self.cache:
                self._insert(b, lines)
        lines = loaded[number]
        self._insert(block, lines)
        return lines

    def _load_many(self, blocks: list[int]) -> None:
        """Read the members of ``blocks`` (none cached) on up to ``LOADERS`` threads, one chunk
        per thread at a time: reading, hashing and inflating release the GIL, so the first
        window of a shuffled pass (which touches every member) loads on every core, and ranged
        GETs to a bucket overlap. What each chunk's read returns is cached here, in order."""
        by_chunk: dict[str, list[int]] = {}
        for b in blocks:
            by_chunk.setdefault(self.blocks[b][0].chunk_id, []).append(b)
        if len(by_chunk) < 2:
            for b in blocks:
                if b not in self.cache:
                    self._load(b)
            return
        unsized = {c for c in by_chunk if c not in self.sized}
        self.sized.update(unsized)
        room = max(0, self.budget - self.size) // len(by_chunk)

        def load(wanted: list[int]) -> list[tuple[int, list[bytes]]]:
            chunk_id, expected = self.blocks[wanted[0]][0].chunk_id, self.blocks[wanted[0]][2]
            if chunk_id in unsized:  # a HEAD on a bucket: overlapped with the others too
                check_size(self.dataset, chunk_id, expected)
            got: dict[int, list[bytes]] = {}
            for b in wanted:
                if b in got:
                    continue
                chunk, number, expected = self.blocks[b]
                for other, lines in read_members(
                    self.dataset, chunk, number, expected, room
                ).items():
                    ob = self.block_of.get((chunk.chunk_id, other))
                    if ob is not None:
                        got[ob] = lines
            # the blocks asked for last, so that eviction drops the extras first
            return [(b, ln) for b, ln in got.items() if b not in wanted] + [
                (b, got[b]) for b in wanted
            ]

        from concurrent.futures import ThreadPoolExecutor

        workers = min(LOADERS, len(by_chunk))
        with ThreadPoolExecutor(workers, thread_name_prefix="hml-stream-load") as pool:
            for loaded in pool.map(load, by_chunk.values()):
                for b, lines in loaded:
                    if b not in self.cache:
                        self._insert(b, lines)

    def _insert(self, block: int, lines: list[bytes]) -> None:
        size = sum(map(len, lines)) + 64 * len(lines)
        self.cache[block] = lines
        self.sizes[block] = size
        self.size += size
        start = self.starts[block]
        self.flat[start : start + len(lines)] = lines
        while self.size > self.budget and len(self.cache) > 1:
            old, gone = self.cache.popitem(last=False)
            self.size -= self.sizes.pop(old)
            first = self.starts[old]
            self.flat[first : first + len(gone)] = [None] * len(gone)

    def window(self, positions: Sequence[int]) -> list[Any]:
        return self.objects(self.lines(positions), positions)

    def lines(self, positions: Sequence[int]) -> list[bytes]:
        """The stored lines at these positions (reading the members not cached)."""
        flat = self.flat
        lines = [flat[p] for p in positions]
        if None in lines:  # some members are not cached (first touch, or evicted)
            starts, find = self.starts, bisect.bisect_right
            missing = {find(starts, positions[i]) - 1 for i, ln in enumerate(lines) if ln is None}
            if len(missing) > 1:
                self._load_many(sorted(missing))
                lines = [flat[p] for p in positions]
            for i, line in enumerate(lines):
                if line is None:
                    p = positions[i]
                    b = find(starts, p) - 1
                    block = self.cache.get(b)
                    if block is None:  # evicted first-in first-out: LRU is no better here
                        block = self._load(b)
                    lines[i] = block[p - starts[b]]
        return cast("list[bytes]", lines)  # every None was filled above

    def gathered(self, positions: Sequence[int]) -> tuple[Sequence[int], list[bytes]]:
        """A window's positions and lines (what the prefetch thread hands over)."""
        return positions, self.lines(positions)

    def decoded(self, window: tuple[Sequence[int], list[bytes]]) -> list[Any]:
        return self.objects(window[1], window[0])

    def objects(self, lines: list[bytes], positions: Sequence[int] | None = None) -> list[Any]:
        """Lines -> decoded objects: one msgspec call per window (or one orjson call and one
        batch decode where msgspec refuses them)."""
        # the parsed rows and decoded objects hold no cycles: a collection triggered by
        # allocating them would only re-scan everything built so far (2x the decoding time)
        collecting = gc.isenabled()
        gc.disable()
        try:
            if self.decode_lines is not None:
                # newline-separated: one copy of the window's bytes (an array's brackets
                # around a join made three: 60 MB per window of 2048 records of 10 KB);
                # a line msgspec skipped (blank) would shift every record after it, so
                # the count is checked and anything else takes the path that says why.
                # (Unlike the reader, long lines stay with msgspec here: orjson's path
                # was slower for windows of 9.4 KB records, 76-81 against 64-70 µs each.)
                objects = self.decode_lines(b"\n".join(lines))
                if objects is not None and len(objects) == len(lines):
                    return objects
            return self.decode(_parse(lines, self.where))
        except DatasetCorruptError:
            raise
        except Exception as exc:
            raise self._decode_error(lines, positions, exc) from exc
        finally:
            if collecting:
                gc.enable()

    def _decode_error(
        self, lines: list[bytes], positions: Sequence[int] | None, exc: Exception
    ) -> Exception:
        """Which record the class cannot be made from: one line naming its chunk file."""
        what = f"a record of {self.where}"
        for i, line in enumerate(lines):
            try:
                self.decode(_parse([line], self.where))
            except Exception as one:
                exc = one
                if positions is not None:
                    p = positions[i]
                    c, k = self.index.locate(p)
                    chunk = self.dataset.chunk_key(self.index.chunks[c].chunk_id)
                    what = f"line {k + 1} of {self.dataset.address.where(chunk)} (position {p})"
                break
        return decode_error(what, self.dataset.dataType, exc)


def _parse(lines: list[bytes], where: str) -> list[Any]:
    try:
        return orjson.loads(b"[" + b",".join(lines) + b"]")  # type: ignore[no-any-return]
    except orjson.JSONDecodeError:  # NaN / huge ints that json.dumps writes: parse one by one
        try:
            return [json.loads(line) for line in lines]
        except ValueError as exc:
            raise DatasetCorruptError(f"dataset {where} has a record that is not JSON") from exc


def _windows(slices: Iterator[Sequence[int]], size: int) -> Iterator[Sequence[int]]:
    for part in slices:
        for i in range(0, len(part), size):
            yield part[i : i + size]


_DONE = object()


T = TypeVar("T")


def _prefetched(make: Iterator[T], depth: int) -> Iterator[T]:
    """Run ``make`` on a background thread, ``depth`` windows ahead; errors surface here."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in make:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    thread = threading.Thread(target=produce, name="hml-stream-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)


class Stream:
    """An iterable over a dataset's objects; every ``iter()`` starts again at ``start_offset``."""

    def __init__(
        self,
        dataset: Dataset,
        start_offset: int = 0,
        shuffle: bool = False,
        shuffle_seed: int | None = None,
        shard_rank: int = 0,
        num_shards: int = 1,
        drop_shard_remainder: bool = False,
        epochs: int | None = None,
        *,
        prefetch: int | None = None,
        window: int = WINDOW,
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        check_stream_options(start_offset, shard_rank, num_shards, epochs, window)
        self.dataset = dataset
        self.start_offset = start_offset
        self.shuffle = shuffle
        if shuffle and shuffle_seed is None:
            shuffle_seed = secrets.randbits(32)
            log.warning(
                "stream of %r shuffles with seed %d (none was given); pass shuffle_seed=%d "
                "to replay this order",
                dataset,
                shuffle_seed,
                shuffle_seed,
            )
        self.seed = shuffle_seed
        self.shard_rank = shard_rank
        self.num_shards = num_shards
        self.drop_shard_remainder = drop_shard_remainder
        self.epochs = epochs
        self.prefetch = prefetch
        self.window = window
        self.cache_bytes = cache_bytes
        self._index: DatasetIndex | None = None
        self._header: Header | None = None
        self._current: Iterator[Any] | None = None
        self._end = start_offset  # records yielded so far, counted from the first epoch

    @property
    def index(self) -> DatasetIndex:
        """The dataset's index, once the .chk and .def are checked as ``open("r")`` checks them
        (each chunk is verified when first read: see ``index``)."""
        if self._index is None:
            self._header, self._index = open_index(self.dataset)
        return self._index

    @property
    def records_per_epoch(self) -> int:
        return len(self._shard())

    def _shard(self) -> range:
        return shard_positions(
            self.index.total, self.shard_rank, self.num_shards, self.drop_shard_remainder
        )

    def __len__(self) -> int:
        if self.epochs is None:
            raise StreamLengthError(
                f"a stream of {self.dataset!r} with epochs=None repeats forever and has no length; "
                "pass epochs=N"
            )
        return max(0, self.records_per_epoch * self.epochs - self.start_offset)

    def slices(self, worker: int = 0, num_workers: int = 1) -> Iterator[Sequence[int]]:
        """Dataset positions in stream order, one sequence per epoch; ``worker`` of
        ``num_workers`` gets every ``num_workers``-th of them (how DataLoader workers split it)."""
        return stream_slices(
            self._shard(), self.shuffle, self.seed, self.start_offset, self.epochs,
            worker, num_workers,
        )  # fmt: skip

    def positions(self, worker: int = 0, num_workers: int = 1) -> Iterator[int]:
        return (p for part in self.slices(worker, num_workers) for p in part)

    @property
    def position(self) -> int:
        """Records yielded so far, counted from the first epoch: the ``start_offset`` to
        resume from."""
        # objects leave through itertools.chain over list iterators (no Python frame per
        # object): the position is the end of the current window less what its iterator
        # still holds
        current = self._current
        return self._end - (operator.length_hint(current) if current is not None else 0)

    @position.setter
    def position(self, value: int) -> None:
        self._end = value
        self._current = None

    def __iter__(self) -> Iterator[Any]:
        self._index = None  # every pass checks the .chk and .def again
        self.position = self.start_offset
        return itertools.chain.from_iterable(self._tracked(self._batches(self.slices())))

    def _tracked(self, batches: Iterator[list[Any]]) -> Iterator[Iterator[Any]]:
        for batch in batches:
            current = iter(batch)
            self._end = self.position + len(batch)
            self._current = current
            yield current

    def iter_slices(self, slices: Iterator[Sequence[int]]) -> Iterator[Any]:
        """Decoded objects at the given dataset positions, read ahead on a thread."""
        return itertools.chain.from_iterable(self._batches(slices))

    def _batches(self, slices: Iterator[Sequence[int]]) -> Iterator[list[Any]]:
        """Decoded windows. The prefetch thread, if any, reads (ranged reads, gzip: both
        release the GIL) and gathers lines ahead; parsing and decoding, which hold the GIL, run
        here, so the two threads do not fight over it."""
        index = self.index
        assert self._header is not None
        reader = _Reader(self.dataset, index, self._header.chk, self.cache_bytes)
        lines = map(reader.gathered, _windows(slices, self.window))
        depth = self.prefetch
        if depth is None:
            depth = 0 if self.dataset.storage.local_path(self.dataset.def_key) else REMOTE_PREFETCH
        ahead = lines if depth <= 0 else _prefetched(lines, depth)
        return map(reader.decoded, ahead)

    def to_torch(self, transform: Callable[[Any], Any] | None = None) -> Any:
        """A ``torch.utils.data.IterableDataset``; DataLoader workers split it without overlap."""
        from ..adapters import to_torch

        return to_torch(self, transform)

    def to_tf(
        self, output_signature: Any = None, transform: Callable[[Any], Any] | None = None
    ) -> Any:
        """A ``tf.data.Dataset`` from a generator with a declared ``output_signature``."""
        from ..adapters import to_tf

        return to_tf(self, output_signature, transform)

    def __repr__(self) -> str:
        return (
            f"Stream({self.dataset!r}, start_offset={self.start_offset}, shuffle={self.shuffle}, "
            f"seed={self.seed}, shard={self.shard_rank}/{self.num_shards}, epochs={self.epochs})"
        )


def check_stream_options(
    start_offset: int, rank: int, shards: int, epochs: int | None, window: int
) -> None:
    if shards < 1:
        raise DatasetUsageError(f"num_shards must be >= 1, got {shards}")
    if not 0 <= rank < shards:
        raise DatasetUsageError(f"shard_rank must be in 0..{shards - 1}, got {rank}")
    if start_offset < 0:
        raise DatasetUsageError(f"start_offset must be >= 0, got {start_offset}")
    if epochs is not None and epochs < 0:
        raise DatasetUsageError(f"epochs must be >= 0 or None (forever), got {epochs}")
    if window < 1:
        raise DatasetUsageError(f"window must be >= 1, got {window}")


def records_at(
    dataset: Dataset, positions: Sequence[int], cache_bytes: int = CACHE_BYTES
) -> list[Any]:
    """The objects at these dataset positions (chunk order, then order in the chunk), reading
    only the gzip members that hold them, verified as ``open("r")`` verifies (see ``index``)."""
    dataset = dataset.pinned()
    header, index = open_index(dataset)
    for p in positions:
        if not 0 <= p < index.total:
            raise DatasetUsageError(f"position {p} is outside {dataset!r} (0..{index.total - 1})")
    if not positions:
        return []
    return _Reader(dataset, index, header.chk, cache_bytes).window(positions)


def open_index(dataset: Dataset) -> tuple[Header, DatasetIndex]:
    """The checked .chk and .def of a dataset (as ``open("r")`` checks them: the same errors)
    and its index."""
    header = dataset.read_header()
    check_definition(dataset, header.definition)
    return header, load_index(dataset, header=header)


def stream(dataset: Dataset, **options: Any) -> Stream:
    """``Dataset.stream`` (see the module docstring for the parameters)."""
    return Stream(dataset, **options)
