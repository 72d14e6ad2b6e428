"""Local-disk storage: atomic replace via rename, create-if-absent via hard link.

Files and directories get the modes any tool gives them: 0666 and 0777 less the process's
umask (0644 and 0755 with the usual 022), so that a server running as another user (a
container's, a service account's) can read what a pipeline wrote. Writes still go to a
temporary file first, renamed (or linked) onto the key when complete.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..errors import NotFoundError, StorageError
from .base import Storage, check_key


class LocalStorage(Storage):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(str(root).removeprefix("file://")).absolute()
        self.url = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def local_path(self, key: str) -> str:
        return str(self._path(key))

    def _temp(self, path: Path) -> tuple[int, str]:
        """A new temporary file beside ``path``, created 0666 & ~umask (mkstemp gives 0600)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for _ in range(100):
            tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
            try:
                return os.open(tmp, flags, 0o666), tmp
            except FileExistsError:
                continue
        raise StorageError(f"cannot create a temporary file beside {path}")

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"{self.url}/{key} does not exist") from exc

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        fd, tmp = self._temp(path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            _unlink(tmp)
            raise

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        fd, tmp = self._temp(path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError as exc:  # filesystems without hard links
                raise StorageError(f"cannot create {path} atomically: {exc}") from exc
            return True
        finally:
            _unlink(tmp)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return iter(())
        found = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    continue
                full = Path(dirpath) / name
                found.append(full.relative_to(self.root).as_posix())
        return iter(sorted(found))

    def delete(self, key: str) -> None:
        _unlink(str(self._path(key)))

    def open_read(self, key: str) -> IO[bytes]:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"{self.url}/{key} does not exist") from exc

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise NotFoundError(f"{self.url}/{key} does not exist") from exc


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
