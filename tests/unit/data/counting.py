"""A local storage that counts what streams read, for the tests that a read is partial."""

from __future__ import annotations

from typing import IO

from hypermodel.storage.local import LocalStorage


class CountingStorage(LocalStorage):
    """Counts the bytes read through ``open_read`` (how streams read chunk members): a remote
    read must not download whole chunks."""

    read = 0

    def open_read(self, key: str) -> IO[bytes]:
        inner = super().open_read(key)
        owner = self

        class Counted:
            def __enter__(self) -> Counted:
                return self

            def __exit__(self, *exc: object) -> None:
                inner.close()

            def seek(self, offset: int) -> int:
                return inner.seek(offset)

            def read(self, n: int = -1) -> bytes:
                data = inner.read(n)
                owner.read += len(data)
                return data

        return Counted()  # type: ignore[return-value]
