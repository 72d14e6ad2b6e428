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

**What is trusted.** The index is not covered by the ``.chk`` (Hypergol's format has no place
for it, and its byte ranges depend on the compressor, which must never change a checksum), so
anyone who can alter a chunk can alter the index to match: it only *plans* which bytes to read.
Nothing read through it is returned before its chunk has been verified in this process: the
first time a chunk is touched, the whole chunk file is read, inflated and its SHA1 compared with
the ``.chk``, exactly as ``open("r")`` does, and its actual member layout compared with the
index's. That pass records, per member, the SHA1 of its compressed bytes (a *verdict*, kept per
process); every later ranged read of a member is checked against it before it is inflated, so a
chunk altered after it was verified fails too. The verifying pass keeps the lines it inflated
(up to the reader's cache budget), so a pass over the whole dataset inflates each member once,
as before; a writer records the verdicts of the chunks it wrote itself.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from ...errors import NotFoundError
from .. import format as fmt
from ..deflate import ERRORS as DEFLATE_ERRORS
from ..deflate import decompressor
from ..errors import DatasetCorruptError

if TYPE_CHECKING:
    from ..dataset import Dataset
    from .header import Header

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
        """The stored index; ValueError (or KeyError, TypeError) when it is not one whose
        members tile each chunk (then it is rebuilt)."""
        data = json.loads(text)
        if data.get("version") != INDEX_VERSION:
            raise ValueError(f"index version {data.get('version')!r}")
        chunks = [
            ChunkIndex(str(c["id"]), c["count"], [Member(*m) for m in c["members"]])
            for c in data["chunks"]
        ]
        for chunk in chunks:
            _check_tiling(chunk)
        return cls(str(data["checksum"]), chunks)


# Deflate inflates at most ~1032x; a record is at least one byte: more records than this in a
# member of that many compressed bytes is an index no writer made.
_MAX_RECORDS_PER_BYTE = 1100


def _check_tiling(chunk: ChunkIndex) -> None:
    offset = first = 0
    for m in chunk.members:
        values = (m.offset, m.length, m.first, m.count)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ValueError("index member values must be integers")
        if (m.offset, m.first) != (offset, first) or m.length <= 0 or m.count < 0:
            raise ValueError(f"index members of chunk {chunk.chunk_id} do not tile it")
        if m.count > m.length * _MAX_RECORDS_PER_BYTE:
            raise ValueError(f"index member of chunk {chunk.chunk_id} claims too many records")
        offset, first = offset + m.length, first + m.count
    if chunk.count != first or not chunk.members:
        raise ValueError(f"index chunk {chunk.chunk_id} counts {chunk.count} records, not {first}")


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


def load_index(dataset: Dataset, build: bool = True, header: Header | None = None) -> DatasetIndex:
    """The dataset's index: the stored one when it names the dataset's checksum, else built
    (one verified pass) and stored. Only a plan of what to read: see the module docstring."""
    checksum = header.checksum if header is not None else dataset.checksum
    key = index_key(dataset)
    try:
        index = DatasetIndex.from_json(dataset.storage.read_text(key))
        if index.checksum == checksum and [c.chunk_id for c in index.chunks] == dataset.chunk_ids():
            return index
    except (NotFoundError, ValueError, KeyError, TypeError, IsADirectoryError):
        pass
    if not build:
        raise NotFoundError(f"{dataset.storage.url}/{key} is missing or stale")
    index = build_index(dataset, header)
    dataset.storage.write_text(key, index.to_json())  # atomic: readers see old, new or none
    return index


def build_index(dataset: Dataset, header: Header | None = None) -> DatasetIndex:
    """One pass over every chunk, checking each against the .chk while indexing it (which
    records each chunk's verdict for this process)."""
    if header is None:
        header = dataset.read_header()
    chunks = []
    for cid in dataset.chunk_ids():
        verdict, _ = verify_chunk(dataset, cid, expected_sha1(dataset, header.chk, cid))
        chunks.append(ChunkIndex(cid, verdict.count, list(verdict.members)))
    return DatasetIndex(header.checksum, chunks)


def expected_sha1(dataset: Dataset, chk: dict[str, str], chunk_id: str) -> str:
    expected = chk.get(fmt.chunk_file_name(dataset.name, chunk_id))
    if expected is None:
        raise DatasetCorruptError(
            f"{dataset.address.where(dataset.chunk_key(chunk_id))} is not listed in the dataset's .chk: "
            f"{fmt.REWRITE}"
        )
    return expected


# -- verdicts: chunks verified in this process --------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """A chunk whose SHA1 matched the .chk in this process: its members as they are in the
    file, and the SHA1 of each member's compressed bytes (what a later ranged read must be)."""

    members: tuple[Member, ...]
    digests: tuple[bytes, ...]

    @property
    def count(self) -> int:
        last = self.members[-1] if self.members else None
        return last.first + last.count if last is not None else 0

    @property
    def size(self) -> int:
        """The chunk file's size: its members end to end, nothing after them."""
        last = self.members[-1] if self.members else None
        return last.offset + last.length if last is not None else 0


_VERDICTS: dict[tuple[str, str, str], Verdict] = {}
_VERDICTS_LOCK = threading.Lock()
_VERDICTS_LIMIT = 1 << 16  # chunks remembered; the oldest are forgotten past it


def _verdict_key(dataset: Dataset, chunk_id: str, expected: str) -> tuple[str, str, str]:
    return (dataset.storage.url, dataset.chunk_key(chunk_id), expected)


def remember(dataset: Dataset, chunk_id: str, expected: str, verdict: Verdict) -> None:
    with _VERDICTS_LOCK:
        _VERDICTS[_verdict_key(dataset, chunk_id, expected)] = verdict
        while len(_VERDICTS) > _VERDICTS_LIMIT:
            del _VERDICTS[next(iter(_VERDICTS))]


def remember_written(
    dataset: Dataset,
    chunk_id: str,
    expected: str,
    sizes: Iterable[Sequence[int]],
    digests: Sequence[bytes],
) -> None:
    """Record the verdict of a chunk this process has just written and published (its
    members' ``(length, count)`` and compressed SHA1s), so reading it back verifies nothing
    twice; a ranged read is still checked against these digests."""
    members = tuple(chunk_from_sizes(chunk_id, sizes).members)
    if len(members) == len(digests):
        remember(dataset, chunk_id, expected, Verdict(members, tuple(digests)))


def forget_verdicts() -> None:
    """Forget every chunk verified in this process (the next read of each verifies it again)."""
    with _VERDICTS_LOCK:
        _VERDICTS.clear()


def verify_chunk(
    dataset: Dataset,
    chunk_id: str,
    expected: str,
    want: int | None = None,
    budget: int = 0,
) -> tuple[Verdict, dict[int, list[bytes]]]:
    """Read the whole chunk, check its SHA1 against ``expected`` (the .chk's) and remember the
    verdict. Also returns the lines of member number ``want`` and of as many others as fit in
    ``budget`` bytes (member number -> lines), inflated on the way, for a reader's cache."""
    from .reader import altered_error, open_chunk

    where = dataset.address.where(dataset.chunk_key(chunk_id))
    hasher = hashlib.sha1()
    members: list[Member] = []
    digests: list[bytes] = []
    kept: dict[int, list[bytes]] = {}
    used = 0
    with open_chunk(dataset, chunk_id) as stream:
        first = 0
        for i, (offset, length, text, digest) in enumerate(_members(stream, where)):
            hasher.update(text)
            n = text.count(b"\n") + (1 if text and not text.endswith(b"\n") else 0)
            members.append(Member(offset, length, first, n))
            digests.append(digest)
            first += n
            size = len(text) + 64 * n
            if i == want or (budget and used + size <= budget):
                kept[i] = _split(text)
                used += size if i != want else 0
    if hasher.hexdigest() != expected:
        raise altered_error(where, expected, hasher.hexdigest())
    verdict = Verdict(tuple(members), tuple(digests))
    remember(dataset, chunk_id, expected, verdict)
    return verdict, kept


def _split(text: bytes) -> list[bytes]:
    lines = text.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return lines


def _members(stream: IO[bytes], where: str) -> Iterator[tuple[int, int, bytes, bytes]]:
    """(compressed offset, compressed length, uncompressed bytes, SHA1 of the compressed bytes)
    of each gzip member; DatasetCorruptError for bad gzip, truncation, trailing garbage or an
    empty file."""
    from .reader import garbage_error, gzip_error, starts_member, truncated_error

    d = decompressor()
    raw_sha1 = hashlib.sha1()
    consumed = 0  # compressed bytes handed to finished members
    start = 0
    parts: list[bytes] = []
    pending = False
    count = 0
    try:
        while raw := stream.read(_READ_BLOCK):
            while raw:
                if not pending and count and not starts_member(raw):
                    raise garbage_error(where, start)
                pending = True
                parts.append(d.decompress(raw))
                if not d.eof:
                    consumed += len(raw)
                    raw_sha1.update(raw)
                    break
                used = len(raw) - len(d.unused_data)
                raw_sha1.update(memoryview(raw)[:used])
                consumed += used
                yield start, consumed - start, b"".join(parts), raw_sha1.digest()
                count += 1
                start, parts, pending = consumed, [], False
                raw = d.unused_data
                d = decompressor()
                raw_sha1 = hashlib.sha1()
    except DEFLATE_ERRORS as exc:
        raise gzip_error(where, exc) from exc
    if pending or count == 0:
        if count and consumed - start < 2:  # one stray byte after the last member
            raise garbage_error(where, start)
        raise truncated_error(where)


def check_size(dataset: Dataset, chunk_id: str, expected: str) -> None:
    """Forget the chunk's verdict when the file's size is not its members' (bytes appended or
    cut since), so that its next read verifies it again (a reader calls this once per chunk)."""
    key = _verdict_key(dataset, chunk_id, expected)
    verdict = _VERDICTS.get(key)
    if verdict is None:
        return
    try:
        size = dataset.storage.size(dataset.chunk_key(chunk_id))
    except (NotFoundError, OSError):
        size = -1
    if size != verdict.size:
        with _VERDICTS_LOCK:
            if _VERDICTS.get(key) is verdict:
                del _VERDICTS[key]


def read_members(
    dataset: Dataset, chunk: ChunkIndex, number: int, expected: str, budget: int = 0
) -> dict[int, list[bytes]]:
    """The lines of member ``number`` of ``chunk`` (member number -> lines), verified: the
    first touch of the chunk in this process verifies all of it (and returns the lines of other
    members too, as many as fit in ``budget`` bytes); later reads are ranged reads checked
    against the verdict's digest of that member."""
    key = _verdict_key(dataset, chunk.chunk_id, expected)
    verdict = _VERDICTS.get(key)
    if verdict is not None:
        member = chunk.members[number]
        if number < len(verdict.members) and verdict.members[number] == member:
            raw = _read_range(dataset, dataset.chunk_key(chunk.chunk_id), member)
            if hashlib.sha1(raw).digest() == verdict.digests[number]:
                return {number: _inflate_member(dataset, chunk.chunk_id, member, raw)}
        with _VERDICTS_LOCK:  # the file changed since, or the index disagrees: verify again
            if _VERDICTS.get(key) is verdict:
                del _VERDICTS[key]
    verdict, kept = verify_chunk(dataset, chunk.chunk_id, expected, number, budget)
    if list(verdict.members) != chunk.members:
        raise _stale_index(dataset, chunk.chunk_id)
    return kept


def _stale_index(dataset: Dataset, chunk_id: str) -> DatasetCorruptError:
    """The chunk verified, but the index does not describe it: the index is stale or altered.
    It is removed (best effort), so the next stream rebuilds it with one verified pass."""
    key = index_key(dataset)
    try:
        dataset.storage.delete(key)
        removed = "it was removed: run again, and the next stream rebuilds it"
    except Exception:
        removed = "delete it, and the next stream rebuilds it"
    return DatasetCorruptError(
        f"{dataset.address.where(key)} does not describe chunk "
        f"{dataset.address.where(dataset.chunk_key(chunk_id))} as it is (the chunk matches the .chk, "
        f"the index is stale or was altered); {removed}"
    )


def _inflate_member(dataset: Dataset, chunk_id: str, member: Member, raw: bytes) -> list[bytes]:
    where = dataset.address.where(dataset.chunk_key(chunk_id))
    try:
        d = decompressor()
        text = d.decompress(raw)
        ok = d.eof and not d.unused_data
    except DEFLATE_ERRORS as exc:
        raise DatasetCorruptError(f"chunk {where} is not valid gzip ({exc})") from exc
    lines = _split(text)
    if not ok or len(lines) != member.count:
        raise DatasetCorruptError(
            f"chunk {where} changed while it was read (member at byte {member.offset}): "
            f"{fmt.REWRITE}"
        )
    return lines


def _read_range(dataset: Dataset, key: str, member: Member) -> bytes:
    try:
        return dataset.storage.read_range(key, member.offset, member.length)
    except NotFoundError as exc:
        raise DatasetCorruptError(
            f"chunk {dataset.address.where(key)} is missing: {fmt.REWRITE}"
        ) from exc
    except IsADirectoryError as exc:
        raise DatasetCorruptError(
            f"chunk {dataset.address.where(key)} is a directory, not a file: {fmt.REWRITE}"
        ) from exc
