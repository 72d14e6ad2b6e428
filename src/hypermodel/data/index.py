"""A random-access index of a published dataset: where each record is, without reading the rest.

A chunk file is one or more concatenated gzip members (writers flush a member every few MiB).
A member can be decompressed on its own, so the index records, per chunk, the record count and
for each member its compressed byte range and the number of the first record it holds. Reading
record ``k`` of the dataset then means: find its chunk (cumulative counts), find its member
(first-record numbers), read that byte range (a ranged read on a bucket) and split it on
newlines. Nothing before or after it is decompressed.

The index is stored next to the dataset as ``<name>.idx.json`` and names the dataset checksum it
describes. Every writer writes it at publish, before the ``.chk``, from what it already knows:
the compressed length and record count of each gzip member it flushed (``chunk_from_sizes``),
so a freshly published dataset streams without a pass over its chunks. A stale or missing one
(a dataset written by Hypergol, or by a writer that lost its layouts) is (re)built by one
verified pass over the chunks and written atomically, so concurrent builders race harmlessly
(they write the same bytes).
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from ..errors import NotFoundError
from . import format as fmt
from .deflate import ERRORS as DEFLATE_ERRORS
from .deflate import decompressor
from .errors import DatasetCorruptError

if TYPE_CHECKING:
    from .dataset import Dataset

INDEX_VERSION = 1
_READ_BLOCK = 1 << 18


def index_key(dataset: Dataset) -> str:
    return dataset.key(f"{dataset.name}.idx.json")


@dataclass(frozen=True)
class Member:
    """One gzip member of a chunk file: bytes ``[offset, offset + length)`` hold records
    ``first .. first + count - 1`` of the chunk."""

    offset: int
    length: int
    first: int
    count: int


@dataclass
class ChunkIndex:
    chunk_id: str
    count: int
    members: list[Member]

    def member_of(self, record: int) -> int:
        firsts = [m.first for m in self.members]
        return bisect.bisect_right(firsts, record) - 1


@dataclass
class DatasetIndex:
    checksum: str
    chunks: list[ChunkIndex]

    def __post_init__(self) -> None:
        self.starts: list[int] = []
        total = 0
        for chunk in self.chunks:
            self.starts.append(total)
            total += chunk.count
        self.total = total

    def locate(self, position: int) -> tuple[int, int]:
        """(chunk number, record number inside that chunk) of a dataset position."""
        if not 0 <= position < self.total:
            raise IndexError(f"position {position} is outside 0..{self.total - 1}")
        c = bisect.bisect_right(self.starts, position) - 1
        return c, position - self.starts[c]

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": INDEX_VERSION,
                "checksum": self.checksum,
                "chunks": [
                    {
                        "id": c.chunk_id,
                        "count": c.count,
                        "members": [[m.offset, m.length, m.first, m.count] for m in c.members],
                    }
                    for c in self.chunks
                ],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> DatasetIndex:
        data = json.loads(text)
        if data.get("version") != INDEX_VERSION:
            raise ValueError(f"index version {data.get('version')!r}")
        chunks = [
            ChunkIndex(c["id"], c["count"], [Member(*m) for m in c["members"]])
            for c in data["chunks"]
        ]
        return cls(data["checksum"], chunks)


def chunk_from_sizes(chunk_id: str, sizes: Iterable[Sequence[int]]) -> ChunkIndex:
    """A chunk's index from its members' ``(compressed length, record count)``, in file order."""
    members: list[Member] = []
    offset = first = 0
    for length, count in sizes:
        members.append(Member(offset, length, first, count))
        offset += length
        first += count
    return ChunkIndex(chunk_id, first, members)


def write_index(dataset: Dataset, checksum: str, chunks: list[ChunkIndex]) -> None:
    """Store the index of the dataset whose checksum will be ``checksum`` (written at publish)."""
    dataset.storage.write_text(index_key(dataset), DatasetIndex(checksum, chunks).to_json())


def load_index(dataset: Dataset, build: bool = True) -> DatasetIndex:
    """The dataset's index: the stored one when it matches the dataset, else built and stored."""
    checksum = dataset.checksum
    key = index_key(dataset)
    try:
        index = DatasetIndex.from_json(dataset.storage.read_text(key))
        if index.checksum == checksum and [c.chunk_id for c in index.chunks] == dataset.chunk_ids():
            return index
    except (NotFoundError, ValueError, KeyError, TypeError):
        pass
    if not build:
        raise NotFoundError(f"{dataset.storage.url}/{key} is missing or stale")
    index = build_index(dataset)
    dataset.storage.write_text(key, index.to_json())  # atomic: readers see old, new or none
    return index


def build_index(dataset: Dataset) -> DatasetIndex:
    """One pass over every chunk, checking each against the .chk while indexing it."""
    chk = dataset.read_chk()
    checksum = dataset.checksum
    chunks = []
    for cid in dataset.chunk_ids():
        where = f"{dataset.storage.url}/{dataset.chunk_key(cid)}"
        expected = chk.get(fmt.chunk_file_name(dataset.name, cid))
        if expected is None:
            raise DatasetCorruptError(f"{where} is not listed in the dataset's .chk")
        try:
            stream = dataset.storage.open_read(dataset.chunk_key(cid))
        except NotFoundError as exc:
            raise DatasetCorruptError(f"chunk {where} is missing") from exc
        with stream:
            chunks.append(index_chunk(cid, stream, expected, where))
    return DatasetIndex(checksum, chunks)


def index_chunk(chunk_id: str, stream: IO[bytes], expected_sha1: str, where: str) -> ChunkIndex:
    hasher = hashlib.sha1()
    members: list[Member] = []
    records = 0
    for offset, length, text in _members(stream, where):
        hasher.update(text)
        n = text.count(b"\n") + (1 if text and not text.endswith(b"\n") else 0)
        members.append(Member(offset, length, records, n))
        records += n
    if hasher.hexdigest() != expected_sha1:
        raise DatasetCorruptError(
            f"chunk {where} does not match its checksum in the .chk (expected {expected_sha1}, "
            f"read {hasher.hexdigest()}): it was altered"
        )
    return ChunkIndex(chunk_id, records, members)


def _members(stream: IO[bytes], where: str) -> Iterator[tuple[int, int, bytes]]:
    """(compressed offset, compressed length, uncompressed bytes) of each gzip member."""
    d = decompressor()
    consumed = 0  # compressed bytes handed to finished members
    start = 0
    parts: list[bytes] = []
    pending = False
    try:
        while raw := stream.read(_READ_BLOCK):
            while raw:
                pending = True
                parts.append(d.decompress(raw))
                if not d.eof:
                    consumed += len(raw)
                    break
                used = len(raw) - len(d.unused_data)
                consumed += used
                yield start, consumed - start, b"".join(parts)
                start, parts, pending = consumed, [], False
                raw = d.unused_data
                d = decompressor()
    except DEFLATE_ERRORS as exc:
        raise DatasetCorruptError(f"chunk {where} is not valid gzip ({exc})") from exc
    if pending:
        raise DatasetCorruptError(f"chunk {where} is truncated (its gzip stream ends early)")


def read_member(dataset: Dataset, chunk_id: str, member: Member) -> list[bytes]:
    """The lines (without newlines) of one member: a ranged read, one member decompressed.

    Each gzip member carries a CRC32 of its content, checked by the inflater here, so a member altered
    after the index was built fails loudly instead of returning wrong records.
    """
    where = f"{dataset.storage.url}/{dataset.chunk_key(chunk_id)}"
    raw = _read_range(dataset, dataset.chunk_key(chunk_id), member.offset, member.length)
    try:
        d = decompressor()
        text = d.decompress(raw)
        ok = d.eof and not d.unused_data
    except DEFLATE_ERRORS as exc:
        raise DatasetCorruptError(f"chunk {where} is not valid gzip ({exc})") from exc
    if not ok:
        raise DatasetCorruptError(
            f"chunk {where} changed since its index was built (member at byte {member.offset})"
        )
    lines = text.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    if len(lines) != member.count:
        raise DatasetCorruptError(
            f"chunk {where} has {len(lines)} records at byte {member.offset}, its index says "
            f"{member.count}: delete {dataset.name}.idx.json to rebuild it"
        )
    return lines


def _read_range(dataset: Dataset, key: str, offset: int, length: int) -> bytes:
    try:
        return dataset.storage.read_range(key, offset, length)
    except NotFoundError as exc:
        raise DatasetCorruptError(f"chunk {dataset.storage.url}/{key} is missing") from exc
