"""Where one version of a dataset lives: its storage, its keys and its local directory."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ...storage import Storage
from .. import format as fmt


@dataclass(frozen=True, eq=False)
class DatasetAddress:
    """The files of ``<project>/<branch>[@<version>]/<name>/`` in ``storage``.

    A value: made by ``Dataset.address`` once the version is known, taken by the modules that
    write, read, stage and clean up files, so none of them needs the ``Dataset`` itself to find
    a file.
    """

    storage: Storage
    project: str
    branch: str
    name: str
    version: str | None
    chunk_count: int

    @property
    def directory(self) -> str:
        """The dataset's key prefix in its storage."""
        branch = f"{self.branch}@{self.version}" if self.version else self.branch
        return f"{self.project}/{branch}/{self.name}"

    def key(self, file_name: str) -> str:
        return f"{self.directory}/{file_name}"

    @property
    def def_key(self) -> str:
        return self.key(fmt.def_file_name(self.name))

    @property
    def chk_key(self) -> str:
        return self.key(fmt.chk_file_name(self.name))

    def chunk_key(self, chunk_id: str) -> str:
        return self.key(fmt.chunk_file_name(self.name, chunk_id))

    def chunk_ids(self) -> list[str]:
        return fmt.chunk_ids(self.chunk_count)

    def where(self, key: str) -> str:
        """``key`` as a URL, for messages that name a file."""
        return f"{self.storage.url}/{key}"

    def __str__(self) -> str:
        return self.where(self.directory)

    def exists(self) -> bool:
        """True once published (its .chk is in place)."""
        return self.storage.exists(self.chk_key)

    def local_dir(self) -> str | None:
        """The dataset's directory on local disk; None in a bucket."""
        path = self.storage.local_path(self.def_key)
        return os.path.dirname(path) if path else None

    def has_files(self) -> bool:
        """Is anything stored under the directory (a published dataset or leftovers)?"""
        local = self.local_dir()
        if local is not None:
            return os.path.isdir(local) and bool(os.listdir(local))
        return any(True for _ in self.storage.list(self.directory))

    def remove_local_leftovers(self, all_files: bool = False) -> None:
        """Remove temporary files left by writers that died (local disk only); ``all_files``:
        every file, and the directory itself."""
        local = self.local_dir()
        if local is None or not os.path.isdir(local):
            return
        prefix = f".{self.name}_"
        for entry in os.listdir(local):
            if all_files or (entry.startswith(prefix) and entry.endswith(".tmp")):
                try:
                    os.unlink(os.path.join(local, entry))
                except FileNotFoundError:
                    pass
        if all_files:
            try:
                os.rmdir(local)
            except OSError:
                pass
