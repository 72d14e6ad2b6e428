"""The on-disk format, byte-compatible with Hypergol 0.2.1 datasets.

A dataset ``<name>`` of project ``<project>``, branch ``<branch>`` under a location lives in
``<location>/<project>/<branch>/<name>/`` as:

- ``<name>.def``: JSON (sort_keys, indent 4, no trailing newline) describing the dataset:
  ``branch, chunkCount, creationTime, dataType, dependencies, name, project, repo``;
- ``<name>_<chunkId>.jsonl.gz``: gzip of JSON lines, one object per line, each line exactly
  ``json.dumps(obj.to_data(), sort_keys=True) + "\\n"``;
- ``<name>.chk``: JSON (sort_keys, indent 4) mapping each file name to the SHA1 of its
  *uncompressed* text (and ``<name>.def`` to the SHA1 of the .def text). The dataset's checksum
  is the SHA1 of the .chk text.

Chunk assignment: the first 1, 2 or 3 hex digits (16, 256, 4096 chunks) of
``sha1("".join(str(v) for v in hash_id))``. The parts are joined *without a separator*, so
``(1, 23)`` and ``(12, 3)`` land in the same chunk and the int ``5`` like the str ``"5"``.
That is a flaw (ids that differ only in where one part ends collide), but it only decides
placement, not identity, and it must be kept for Hypergol to find objects where it expects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from ..names import check_name
from .codegen import dumps_sorted, encoder_for, hash_text_for
from .errors import DatasetCorruptError, DatasetUsageError
from .model import BaseData

VALID_CHUNKS: dict[int, int] = {16: 1, 256: 2, 4096: 3}
# gzip level: Hypergol uses 9. Measured on typical records (bench/datasets.py objects): level
# 1 compresses 8x faster than 9 for 11% more bytes (6: 2.5x faster, 3% more). Any gzip reader,
# Hypergol included, reads every level; pass compresslevel= to a Dataset to trade otherwise.
# Level 1 deflates with ISA-L where it is installed (see deflate.py).
GZIP_LEVEL = 1
GZIP_MAGIC = b"\x1f\x8b"  # every gzip member starts with these two bytes
# What to do about a published dataset whose files are damaged (said by every such error).
REWRITE = "restore the file from a copy, or delete the dataset's directory and write it again"


def check_chunk_count(chunk_count: int) -> int:
    if chunk_count not in VALID_CHUNKS:
        raise DatasetUsageError(
            f"chunkCount {chunk_count!r} is not allowed: use one of 16, 256 or 4096"
        )
    return chunk_count


def check_dataset_name(value: str, what: str) -> str:
    """Names become directory and file names: no '/', no '..'."""
    try:
        return check_name(value, what)
    except Exception as exc:
        raise DatasetUsageError(str(exc)) from exc


def chunk_ids(chunk_count: int) -> list[str]:
    digits = VALID_CHUNKS[check_chunk_count(chunk_count)]
    return [f"{k:0{digits}x}" for k in range(chunk_count)]


def hash_key(hash_id: Any) -> bytes:
    """The bytes whose SHA1 places an object (see the module note on the missing separator)."""
    if isinstance(hash_id, (str, int)) and not isinstance(hash_id, bool):
        parts: tuple[Any, ...] = (hash_id,)
    elif isinstance(hash_id, tuple):
        parts = hash_id
    else:
        raise DatasetUsageError(
            f"hash id {hash_id!r} must be an int, a str or a tuple of them, "
            f"not {type(hash_id).__name__}"
        )
    for part in parts:
        if not isinstance(part, (str, int)) or isinstance(part, bool):
            raise DatasetUsageError(
                f"hash id {hash_id!r} has a part of type {type(part).__name__}; "
                "ids must be ints and strs (a float id would not hash stably)"
            )
    return "".join(map(str, parts)).encode("utf-8")


def chunk_index(hash_id: Any, chunk_count: int) -> int:
    """Index of the object's chunk in ``chunk_ids(chunk_count)``."""
    digest = hashlib.sha1(hash_key(hash_id)).digest()
    if chunk_count == 16:
        return digest[0] >> 4
    if chunk_count == 256:
        return digest[0]
    return (digest[0] << 4) | (digest[1] >> 4)


def chunk_indexer(data_type: type[BaseData], chunk_count: int) -> Callable[[Any], int]:
    """``obj -> chunk index``, specialised for the class when it uses the default int/str id."""
    check_chunk_count(chunk_count)
    fast = hash_text_for(data_type)
    sha1 = hashlib.sha1
    shift = {16: 4, 256: 0, 4096: 0}[chunk_count]

    def checked(obj: Any) -> int:
        return chunk_index(obj.get_hash_id(), chunk_count)

    if fast is None:
        return checked
    if chunk_count == 4096:

        def index4096(obj: Any) -> int:
            text = fast(obj)
            if text is None:
                return checked(obj)
            d = sha1(text.encode()).digest()
            return (d[0] << 4) | (d[1] >> 4)

        return index4096

    def index(obj: Any) -> int:
        text = fast(obj)
        if text is None:
            return checked(obj)
        return sha1(text.encode()).digest()[0] >> shift

    return index


def chunk_id_of(hash_id: Any, chunk_count: int) -> str:
    digits = VALID_CHUNKS[check_chunk_count(chunk_count)]
    return hashlib.sha1(hash_key(hash_id)).hexdigest()[:digits]


def line_encoder(data_type: type[BaseData]) -> Callable[[Any], str]:
    """``obj -> line`` (with the newline), byte-identical to Hypergol's
    ``json.dumps(obj.to_data(), sort_keys=True) + '\\n'``."""
    fast = encoder_for(data_type)
    if fast is not None:
        return lambda obj: fast(obj) + "\n"
    return lambda obj: dumps_sorted(obj.to_data()) + "\n"


def def_file_name(name: str) -> str:
    return f"{name}.def"


def chk_file_name(name: str) -> str:
    return f"{name}.chk"


def chunk_file_name(name: str, chunk_id: str) -> str:
    return f"{name}_{chunk_id}.jsonl.gz"


def dump_def(definition: dict[str, Any]) -> str:
    return json.dumps(definition, sort_keys=True, indent=4)


def dump_chk(checksums: dict[str, str]) -> str:
    return json.dumps(checksums, sort_keys=True, indent=4)


def sha1_text(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


# -- checking what a published dataset's .chk and .def say ---------------------------------------
def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    kind = kinds.get(type(value))
    if kind is None:
        kind = "null" if value is None else "a number"
    return kind


def parse_chk(text: str, where: str) -> dict[str, str]:
    """The .chk's map of file names to SHA1s, or DatasetCorruptError naming ``where``."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DatasetCorruptError(f"{where} is not valid JSON ({exc}): {REWRITE}") from exc
    if not isinstance(data, dict):
        raise DatasetCorruptError(
            f"{where} is {_json_kind(data)}, not a JSON object of file names and SHA1s: {REWRITE}"
        )
    for key, value in data.items():
        if not isinstance(value, str):
            raise DatasetCorruptError(
                f"{where} gives {key!r} {_json_kind(value)}, not a SHA1 string: {REWRITE}"
            )
    return data


def parse_def(text: str, where: str, name: str | None = None) -> dict[str, Any]:
    """The .def as a dict whose fields have the types readers rely on (``dataType`` a string,
    ``chunkCount`` 16, 256 or 4096, ``dependencies`` a list of objects, ``repo`` an object,
    ``creationTime`` a string), or DatasetCorruptError naming ``where``. With ``name``, the
    .def must name the dataset so (the listing checks it against the directory)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DatasetCorruptError(f"{where} is not valid JSON ({exc}): {REWRITE}") from exc
    if not isinstance(data, dict):
        raise DatasetCorruptError(f"{where} is {_json_kind(data)}, not a JSON object: {REWRITE}")
    problem = _def_problem(data, name)
    if problem is not None:
        raise DatasetCorruptError(f"{where} {problem}: {REWRITE}")
    return data


def def_mismatch(text: str, where: str, chk_name: str) -> DatasetCorruptError:
    """A .def whose SHA1 is not the one in the .chk: said with what else is wrong with it (not
    JSON, not an object), the more specific problem first."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return DatasetCorruptError(
            f"{where} is not valid JSON ({exc}) and does not match its checksum in {chk_name}: "
            f"it was altered; {REWRITE}"
        )
    if not isinstance(data, dict):
        return DatasetCorruptError(
            f"{where} is {_json_kind(data)}, not a JSON object, and does not match its checksum "
            f"in {chk_name}: it was altered; {REWRITE}"
        )
    return DatasetCorruptError(
        f"{where} does not match its checksum in {chk_name}: it was altered; {REWRITE}"
    )


def _def_problem(data: dict[str, Any], name: str | None) -> str | None:
    for key, kind in (("dataType", str), ("name", str)):
        if not isinstance(data.get(key), kind):
            return f"has {_json_kind(data.get(key))} as its {key}, not a string"
    count = data.get("chunkCount")
    if not isinstance(count, int) or isinstance(count, bool) or count not in VALID_CHUNKS:
        return f"has chunkCount {count!r}, not one of 16, 256 or 4096"
    if "creationTime" in data and not isinstance(data["creationTime"], str):
        return f"has {_json_kind(data['creationTime'])} as its creationTime, not a string"
    if "repo" in data and not isinstance(data["repo"], dict):
        return f"has {_json_kind(data['repo'])} as its repo, not an object"
    deps = data.get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, dict) for d in deps):
        return "has dependencies that are not a list of objects"
    if name is not None and data["name"] != name:
        return f"names the dataset {data['name']!r}, not {name!r} (its directory's name)"
    return None
