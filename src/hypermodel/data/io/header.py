"""The .chk and the .def of a published dataset, read and checked before any chunk is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import NotFoundError
from .. import format as fmt
from ..errors import DatasetCorruptError, DatasetNotClosedError, DatasetNotFoundError
from .address import DatasetAddress


@dataclass(frozen=True)
class Header:
    """A published dataset's .chk (its text and its map) and .def, checked (``read_header``)."""

    chk_text: str
    chk: dict[str, str]
    definition: dict[str, Any]

    @property
    def checksum(self) -> str:
        return fmt.sha1_text(self.chk_text)


def read_file(address: DatasetAddress, key: str) -> str:
    """The text of one of the dataset's files (NotFoundError when it is absent); a directory
    in its place, or bytes that are not UTF-8, are DatasetCorruptError naming it."""
    try:
        return address.storage.read_text(key)
    except IsADirectoryError as exc:
        raise DatasetCorruptError(
            f"{address.where(key)} is a directory, not a file: {fmt.REWRITE}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise DatasetCorruptError(
            f"{address.where(key)} is not UTF-8 text ({exc}): {fmt.REWRITE}"
        ) from exc


def read_chk_text(address: DatasetAddress) -> str:
    """The .chk text; DatasetNotClosedError when only a writer's leftovers are there,
    DatasetNotFoundError when nothing is."""
    try:
        return read_file(address, address.chk_key)
    except NotFoundError as exc:
        if address.has_files():
            raise DatasetNotClosedError(
                f"dataset {address} was never closed (it has no "
                f"{fmt.chk_file_name(address.name)}): its writer raised, was killed or did not "
                "call close(). Run the write again; it replaces the leftovers"
            ) from exc
        raise DatasetNotFoundError(f"dataset {address} does not exist") from exc


def read_def_text(address: DatasetAddress, chk: dict[str, str]) -> str:
    """The .def text, present and matching its SHA1 in ``chk``."""
    where = address.where(address.def_key)
    try:
        text = read_file(address, address.def_key)
    except NotFoundError as exc:
        raise DatasetCorruptError(f"{where} is missing: {fmt.REWRITE}") from exc
    if chk.get(fmt.def_file_name(address.name)) != fmt.sha1_text(text):
        raise fmt.def_mismatch(text, where, "the .chk")
    return text


def read_chk(address: DatasetAddress) -> dict[str, str]:
    return fmt.parse_chk(read_chk_text(address), address.where(address.chk_key))


def read_header(address: DatasetAddress) -> Header:
    """The .chk and the .def, checked as every read checks them before any chunk: the .chk
    a JSON map of file names to SHA1s, the .def present, matching its SHA1 in the .chk, and
    a JSON object with well-typed fields. DatasetCorruptError names the file otherwise."""
    chk_text = read_chk_text(address)
    chk = fmt.parse_chk(chk_text, address.where(address.chk_key))
    definition = fmt.parse_def(read_def_text(address, chk), address.where(address.def_key))
    return Header(chk_text, chk, definition)
