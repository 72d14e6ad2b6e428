"""Reading datasets: chunk by chunk, every chunk's SHA1 verified while it is decompressed.

A chunk of up to ``VERIFY_AHEAD_BYTES`` (uncompressed) is verified before any of its objects is
returned; a larger one streams and raises at its end. Blocks of lines become objects in one
msgspec call where the class allows (``rows.py``), else they are parsed with one ``orjson``
call and turned into objects by the class's generated batch decoder.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import orjson

from ...context import OpContext, maybe_context
from ...errors import NotFoundError
from .. import format as fmt
from ..deflate import ERRORS as DEFLATE_ERRORS
from ..deflate import decompressor
from ..errors import DatasetCorruptError, DatasetError, DatasetUsageError

if TYPE_CHECKING:
    from ..dataset import Dataset

# Compressed bytes read at once (a whole chunk of up to ~35,000 small objects: one read, one
# inflate, one decode call), and the most inflated bytes handed to the decoder at once.
_READ_BLOCK = 4 << 20
_INFLATE_BLOCK = 4 << 20
# Chunks up to this size (uncompressed) are verified before any of their objects is returned.
VERIFY_AHEAD_BYTES = 32 << 20


class DatasetReader:
    """Iterates a published dataset chunk by chunk, verifying every chunk's SHA1 as it goes."""

    def __init__(self, dataset: Dataset, record_input: bool = True) -> None:
        self.dataset = dataset
        header = dataset.read_header()
        check_definition(dataset, header.definition)
        self.chk = header.chk
        definition = header.definition
        self.definition = definition
        self.checksum = header.checksum
        from ..codegen import batch_decoder_for
        from ..rows import LONG_LINE_BYTES, row_decoders_for

        self._decode_all = batch_decoder_for(dataset.dataType)
        self._long_line = LONG_LINE_BYTES
        fast = row_decoders_for(dataset.dataType)
        self._decode_lines = fast.lines if fast is not None else None
        ctx = maybe_context()
        if record_input and ctx is not None:
            _record_input(ctx, self.checksum, definition)

    def __enter__(self) -> DatasetReader:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __iter__(self) -> Iterator[Any]:
        # objects come out of per-block lists through itertools.chain (C), not through two
        # generator frames per object
        blocks = ((cid, block) for cid in self.dataset.chunk_ids() for block in self._blocks(cid))
        return itertools.chain.from_iterable(self._decoded(blocks))

    def read_chunk(self, chunk_id: str) -> Iterator[Any]:
        """The objects of one chunk (verified: see ``_blocks``)."""
        return itertools.chain.from_iterable(
            self._decoded((chunk_id, block) for block in self._blocks(chunk_id))
        )

    def _decoded(self, blocks: Iterator[tuple[str, bytes]]) -> Iterator[list[Any]]:
        decode_all, decode_lines = self._decode_all, self._decode_lines
        long_line = self._long_line
        for chunk_id, block in blocks:
            # parsed rows and decoded objects hold no cycles: the collector, triggered by
            # their allocations, would only re-scan every object alive (the caller's too),
            # again and again (2-4x the parsing and decoding time)
            collecting = gc.isenabled()
            gc.disable()
            try:
                objects = None
                if decode_lines is not None and len(block) < long_line * (block.count(b"\n") + 1):
                    objects = decode_lines(block)
                if objects is None:  # no fast decoder, long lines, or it refused the block
                    objects = decode_all(_parse_block(block, self._name(chunk_id)))
            except DatasetCorruptError:
                raise
            except Exception as exc:
                for other, _ in blocks:  # a corrupt chunk says so (the rest of it raises)
                    if other != chunk_id:
                        break
                raise decode_error(
                    f"a line of {self._name(chunk_id)}", self.dataset.dataType, exc
                ) from exc
            finally:
                if collecting:
                    gc.enable()
            yield objects

    def count_chunk(self, chunk_id: str) -> int:
        return sum(
            block.count(b"\n") + (not block.endswith(b"\n"))
            for block in self._blocks(chunk_id)
            if block
        )

    def _name(self, chunk_id: str) -> str:
        return self.dataset.address.where(self.dataset.chunk_key(chunk_id))

    def _blocks(self, chunk_id: str) -> Iterator[bytes]:
        """Complete lines of the chunk in blocks. A chunk of up to ``VERIFY_AHEAD_BYTES``
        (uncompressed) is verified before its first block is given out; a bigger one streams
        and is verified when it ends (its last block raises instead of returning)."""
        ds = self.dataset
        file_name = fmt.chunk_file_name(ds.name, chunk_id)
        expected = self.chk.get(file_name)
        where = self._name(chunk_id)
        if expected is None:
            raise DatasetCorruptError(f"{where} is not listed in the dataset's .chk")
        stream = open_chunk(ds, chunk_id)
        hasher = hashlib.sha1()
        held: list[bytes] | None = []  # blocks held back until verified (None: streaming)
        held_bytes = 0
        carry = b""
        with stream:
            for out in _inflate(stream, where):
                hasher.update(out)
                buf = carry + out if carry else out
                cut = buf.rfind(b"\n")
                if cut < 0:
                    carry = buf
                    continue
                carry = buf[cut + 1 :]
                if held is None:
                    yield buf[: cut + 1]
                    continue
                held.append(buf[: cut + 1])
                held_bytes += cut + 1
                if held_bytes > VERIFY_AHEAD_BYTES:
                    yield from held
                    held = None
        if carry:
            (held if held is not None else []).append(carry)
        if hasher.hexdigest() != expected:
            raise altered_error(where, expected, hasher.hexdigest())
        if held is not None:
            yield from held
        elif carry:
            yield carry


def open_chunk(ds: Dataset, chunk_id: str) -> IO[bytes]:
    """The chunk file opened for reading; DatasetCorruptError when it is missing or is a
    directory."""
    key = ds.chunk_key(chunk_id)
    try:
        return ds.storage.open_read(key)
    except NotFoundError as exc:
        raise DatasetCorruptError(
            f"chunk {ds.address.where(key)} is missing: {fmt.REWRITE}"
        ) from exc
    except IsADirectoryError as exc:
        raise DatasetCorruptError(
            f"chunk {ds.address.where(key)} is a directory, not a file: {fmt.REWRITE}"
        ) from exc


def altered_error(where: str, expected: str, read: str) -> DatasetCorruptError:
    return DatasetCorruptError(
        f"chunk {where} does not match its checksum in the .chk (expected {expected}, read "
        f"{read}): it was altered; {fmt.REWRITE}"
    )


def truncated_error(where: str) -> DatasetCorruptError:
    return DatasetCorruptError(
        f"chunk {where} is truncated (its gzip stream ends early): {fmt.REWRITE}"
    )


def garbage_error(where: str, offset: int) -> DatasetCorruptError:
    return DatasetCorruptError(
        f"chunk {where} has trailing garbage after its gzip data (from byte {offset}, which "
        f"starts no gzip member): {fmt.REWRITE}"
    )


def gzip_error(where: str, exc: Exception) -> DatasetCorruptError:
    return DatasetCorruptError(f"chunk {where} is not valid gzip ({exc}): {fmt.REWRITE}")


def starts_member(data: bytes) -> bool:
    """Can ``data`` (the bytes after a complete member) be the start of another member?"""
    return data[:2] == fmt.GZIP_MAGIC[: len(data[:2])]


def _inflate(stream: IO[bytes], where: str) -> Iterator[bytes]:
    """Decompress a (possibly multi-member) gzip stream, refusing truncation, corruption and
    trailing bytes that are no gzip member. Reads ``_READ_BLOCK`` bytes at a time (a whole
    chunk, usually) and gives out at most ``_INFLATE_BLOCK`` bytes at a time, so the blocks
    decoded at once stay bounded."""
    d = decompressor()
    in_member = False
    members = 0
    done = 0  # compressed bytes of the members finished so far
    fed = 0  # compressed bytes the current member consumed
    try:
        while raw := stream.read(_READ_BLOCK):
            while True:
                if not in_member and members and not starts_member(raw):
                    raise garbage_error(where, done)
                in_member = True
                out = d.decompress(raw, _INFLATE_BLOCK)
                if out:
                    yield out
                if d.eof:
                    members += 1
                    in_member = False
                    done += fed + len(raw) - len(d.unused_data)
                    fed = 0
                    raw = d.unused_data
                    d = decompressor()
                    if not raw:
                        break
                    continue
                fed += len(raw) - len(d.unconsumed_tail)
                raw = d.unconsumed_tail
                if not raw and len(out) < _INFLATE_BLOCK:
                    break  # this input is used up and no output is pending: read more
    except DEFLATE_ERRORS as exc:
        raise gzip_error(where, exc) from exc
    if in_member or members == 0:
        if members and fed < 2:  # one stray byte after the last member
            raise garbage_error(where, done)
        raise truncated_error(where)


def _parse_block(block: bytes, where: str) -> list[Any]:
    try:
        # one parse per block: lines never contain a raw newline (JSON escapes it)
        return orjson.loads(b"[" + block.rstrip(b"\n").replace(b"\n", b",") + b"]")  # type: ignore[no-any-return]
    except orjson.JSONDecodeError:
        pass
    try:  # NaN, Infinity, huge ints, blank lines: what json.dumps writes and orjson refuses
        return [json.loads(line) for line in block.split(b"\n") if line.strip()]
    except ValueError as exc:
        raise DatasetCorruptError(f"chunk {where} has a line that is not JSON: {exc}") from exc


def check_definition(ds: Dataset, definition: dict[str, Any]) -> None:
    """The .def describes a dataset of ``ds``'s class, name and chunk count (DatasetUsageError
    otherwise: the class or arguments do not match the stored dataset)."""
    expected = {"dataType": ds.dataType.__name__, "name": ds.name, "chunkCount": ds.chunkCount}
    wrong = {k: definition.get(k) for k, v in expected.items() if definition.get(k) != v}
    if wrong:
        raise DatasetUsageError(
            f"{ds!r} does not match its .def: "
            + ", ".join(f"{k} is {v!r} there, not {expected[k]!r}" for k, v in wrong.items())
        )


def decode_error(what: str, data_type: type, exc: Exception) -> DatasetError:
    """A stored record the class cannot be made from: one line naming the file and the fix."""
    if isinstance(exc, KeyError) and exc.args:
        detail = f"it has no field {exc.args[0]!r}"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return DatasetError(
        f"cannot decode {what} as {data_type.__name__} ({detail}): the class does not match "
        "the stored data; read it with the class that wrote it, or give the new field a default"
    )


def _record_input(ctx: OpContext, checksum: str, definition: dict[str, Any]) -> None:
    if checksum not in ctx.input_datasets:
        ctx.input_datasets.append(checksum)
    records = getattr(ctx, "dataset_records", None)
    if records is not None:
        records[checksum] = {**definition, "chkFileChecksum": checksum}
