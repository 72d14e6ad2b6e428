"""Local-disk storage: atomic replace via rename, create-if-absent via hard link.

Files and directories get the modes any tool gives them: 0666 and 0777 less the process's
umask (0644 and 0755 with the usual 022), so that a server running as another user (a
container's, a service account's) can read what a pipeline wrote. Writes still go to a
temporary file first, renamed (or linked) onto the key when complete.

Symbolic links never lead out of the root: a key whose path goes through a link (a directory
on the way, or the object itself) that resolves outside the root is refused with an
UnsafeNameError naming the key, by every primitive. Links that stay inside the root work. The
check walks the key's components with one ``lstat`` each (a few microseconds; resolving only
when a link is met); it guards against links present when the call is made, not against a
directory swapped for a link during the call.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..errors import NotFoundError, StorageError, UnsafeNameError
from .base import Storage, check_key

log = logging.getLogger("hypermodel.storage")


class LocalStorage(Storage):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(str(root).removeprefix("file://")).absolute()
        self.url = f"file://{self.root}"
        self._root_text = str(self.root).rstrip(os.sep) or os.sep
        self._real_root = os.path.realpath(self._root_text)

    def _path(self, key: str, *, final: bool = True) -> Path:
        """The key's path; refused when a symbolic link on it leads out of the root.

        ``final=False`` leaves the last component unchecked, for operations that replace or
        remove it without following it (rename, link, unlink): a link there is acted on
        itself, never its target."""
        check_key(key)
        current = self._root_text.rstrip(os.sep)
        parts = key.split("/")
        for part in parts if final else parts[:-1]:
            current = f"{current}/{part}"
            try:
                mode = os.lstat(current).st_mode
            except (FileNotFoundError, NotADirectoryError):
                break  # nothing further exists, so nothing further can be a link
            if stat.S_ISLNK(mode):
                self._contain(key, os.path.realpath(f"{self._root_text}/{key}"))
                break  # the whole key was resolved: every link after this one too
        return self.root / key

    def _inside(self, real: str) -> bool:
        root = self._real_root
        return real == root or real.startswith(root.rstrip(os.sep) + os.sep)

    def _contain(self, key: str, real: str) -> None:
        if self._inside(real):
            return
        self._real_root = os.path.realpath(self._root_text)  # the root may be new since
        if not self._inside(real):
            raise UnsafeNameError(
                f"storage key {key!r} leads out of the bucket root {self.root} through a "
                f"symbolic link (to {real}); refused: remove the link, or make it point inside "
                "the root"
            )

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
        path = self._path(key, final=False)  # os.replace swaps a link, never writes through it
        fd, tmp = self._temp(path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            _unlink(tmp)
            raise

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key, final=False)  # os.link never follows an existing link
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
        found: list[str] = []
        start = len(self._root_text.rstrip(os.sep)) + 1
        pending = [str(base)]
        while pending:  # os.walk, with the entries' link bits (no extra stat per file)
            try:
                entries = list(os.scandir(pending.pop()))
            except OSError:  # gone or unreadable meanwhile: skipped, as os.walk does
                continue
            for entry in entries:
                name = entry.name
                if name.startswith(".") and name.endswith(".tmp"):
                    continue  # a write in progress
                if entry.is_symlink():
                    real = os.path.realpath(entry.path)
                    if not self._inside(real):
                        log.warning(
                            "storage: %s/%s is a symbolic link out of the root (to %s); not listed",
                            self.url,
                            entry.path[start:],
                            real,
                        )
                        continue
                    if os.path.isdir(real):
                        continue  # links to directories are not followed, as os.walk does
                    found.append(entry.path[start:])
                elif entry.is_dir():
                    pending.append(entry.path)
                else:
                    found.append(entry.path[start:])
        if os.sep != "/":
            found = [k.replace(os.sep, "/") for k in found]
        return iter(sorted(found))

    def delete(self, key: str) -> None:
        _unlink(str(self._path(key, final=False)))  # unlinks a link itself, not its target

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
