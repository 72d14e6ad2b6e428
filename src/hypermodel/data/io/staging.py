"""Where a writer's chunks wait until it publishes them, under names no reader looks at.

- Local disk: hidden temp files beside the final ones, ``.<chunk file>.<token>.tmp``; publish
  renames them (atomic, nothing copied).
- Buckets: objects ``.hml-stage/<token>/<chunk file>`` in the dataset's directory; publish
  copies them onto the final keys inside the store (no download). A ``DatasetWriter`` on a
  bucket (``direct=True``) uploads the final keys itself instead: it holds the publish claim
  before its first upload, so nobody else touches those keys meanwhile.

Every staged chunk has its *layout* beside it (``.layout.tmp`` / ``.layout.json``): the
``(compressed length, record count)`` of each of its gzip members, from which publish writes the
random-access index without reading the chunk again.

Only the holder of the dataset's publish claim (see ``publish``) promotes chunks onto final
names.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...errors import NotFoundError
from .. import format as fmt
from ..errors import DatasetError

if TYPE_CHECKING:
    from .address import DatasetAddress

STAGE_DIR = ".hml-stage"
_THREADS = 8  # bucket copies and layout reads are mostly waiting on the store


class Staging:
    """The staged chunks of one writer (``token``) of the dataset at ``address``."""

    def __init__(self, address: DatasetAddress, token: str, direct: bool = False) -> None:
        self.address = address
        self.token = token
        self.direct = direct
        self.local_dir = address.local_dir()
        self._temp: str | None = None

    # -- names ------------------------------------------------------------------------------------
    def staged_path(self, chunk_id: str) -> str | None:
        """The staged file on local disk (its directory is made); None on a bucket."""
        if self.local_dir is None:
            return None
        os.makedirs(self.local_dir, exist_ok=True)
        name = fmt.chunk_file_name(self.address.name, chunk_id)
        return os.path.join(self.local_dir, f".{name}.{self.token}.tmp")

    def staged_key(self, chunk_id: str) -> str:
        """Where a chunk waits in a bucket (the final key when ``direct``)."""
        if self.direct:
            return self.address.chunk_key(chunk_id)
        name = fmt.chunk_file_name(self.address.name, chunk_id)
        return self.address.key(f"{STAGE_DIR}/{self.token}/{name}")

    def _layout_path(self, chunk_id: str) -> str:
        staged = self.staged_path(chunk_id)
        assert staged is not None
        return staged.removesuffix(".tmp") + ".layout.tmp"

    def _layout_key(self, chunk_id: str) -> str:
        return self.staged_key(chunk_id) + ".layout.json"

    def temp_dir(self) -> str:
        if self._temp is None:
            self._temp = tempfile.mkdtemp(prefix="hml-dataset-")
        return self._temp

    # -- writing ----------------------------------------------------------------------------------
    def present(self, chunk_id: str) -> bool:
        """Is the chunk staged under this token, where ``promote`` will look for it?"""
        staged = self.staged_path(chunk_id)
        if staged is not None:
            return os.path.exists(staged)
        return self.address.storage.exists(self.staged_key(chunk_id))

    def store(self, chunk_id: str, body: bytes | None) -> None:
        """Upload a whole compressed chunk (bucket); on local disk it is already staged."""
        if body is not None:
            self.address.storage.write_bytes(self.staged_key(chunk_id), body)

    def store_layout(self, chunk_id: str, sizes: Sequence[Sequence[int]]) -> None:
        text = json.dumps([list(s) for s in sizes], separators=(",", ":"))
        if self.local_dir is None:
            self.address.storage.write_text(self._layout_key(chunk_id), text)
            return
        path = self._layout_path(chunk_id)
        with open(path + ".part", "w") as fh:
            fh.write(text)
        os.replace(path + ".part", path)

    # -- publishing (the claim holder only) ---------------------------------------------------------
    def promote(self, chunk_ids: list[str]) -> dict[str, list[list[int]]] | None:
        """Move every staged chunk onto its final name; their layouts (None if any is missing,
        e.g. chunks staged by an older version: the index is then built on first use)."""
        if self.local_dir is not None:
            for cid in chunk_ids:
                self._rename(cid)
            return self._gather(chunk_ids, self._read_local_layout)
        if self.direct:
            return None
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(_THREADS, thread_name_prefix="hml-promote") as pool:
            list(pool.map(self._copy, chunk_ids))
            layouts = list(pool.map(self._read_bucket_layout, chunk_ids))
        return self._gather(chunk_ids, dict(zip(chunk_ids, layouts, strict=True)).get)

    def _rename(self, chunk_id: str) -> None:
        staged = self.staged_path(chunk_id)
        final = self.address.storage.local_path(self.address.chunk_key(chunk_id))
        try:
            os.replace(staged, final)  # type: ignore[arg-type]
        except FileNotFoundError as exc:
            raise self._not_written(chunk_id) from exc

    def _copy(self, chunk_id: str) -> None:
        try:
            self.address.storage.copy(self.staged_key(chunk_id), self.address.chunk_key(chunk_id))
        except NotFoundError as exc:
            raise self._not_written(chunk_id) from exc

    def _not_written(self, chunk_id: str) -> DatasetError:
        return DatasetError(
            f"chunk {chunk_id} of dataset {self.address} was not written under token {self.token!r}: "
            "write it (chunk_writer) before publishing"
        )

    def _read_local_layout(self, chunk_id: str) -> Any:
        try:
            with open(self._layout_path(chunk_id)) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return None

    def _read_bucket_layout(self, chunk_id: str) -> Any:
        try:
            return json.loads(self.address.storage.read_text(self._layout_key(chunk_id)))
        except (NotFoundError, ValueError):
            return None

    @staticmethod
    def _gather(chunk_ids: list[str], read: Any) -> dict[str, list[list[int]]] | None:
        layouts = {}
        for cid in chunk_ids:
            layout = read(cid)
            if not isinstance(layout, list):
                return None
            layouts[cid] = layout
        return layouts

    def published(self) -> None:
        """After publishing: staged leftovers of every writer are useless now, remove them."""
        self.cleanup()
        if self.local_dir is not None:
            self.address.remove_local_leftovers()
        elif not self.direct:
            self.address.storage.delete_prefix(self.address.key(STAGE_DIR))

    # -- giving up ----------------------------------------------------------------------------------
    def discard(self, chunk_ids: list[str], finals: bool = False) -> None:
        """Remove what this token staged. ``finals``: also the final chunk keys a direct writer
        uploaded (only ever while it holds the publish claim)."""
        if self.local_dir is not None:
            if os.path.isdir(self.local_dir):
                for cid in chunk_ids:
                    for path in (self.staged_path(cid), self._layout_path(cid)):
                        if path and os.path.exists(path):
                            os.unlink(path)
            try:
                os.rmdir(self.local_dir)  # only when empty: leave nothing behind an abort
            except OSError:
                pass
        elif not self.direct or finals:
            storage = self.address.storage
            for cid in chunk_ids:
                storage.delete(self.staged_key(cid))
                if not self.direct:
                    storage.delete(self._layout_key(cid))
        self.cleanup()

    def cleanup(self) -> None:
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None
