"""Local bucket files follow the umask, like any tool's (0644 under 022), and stay atomic.

mkstemp's 0600 made latest.json and every .def unreadable to a server running as another user
(a container's, a service account's)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hypermodel.storage import open_storage


@pytest.fixture
def umask() -> Iterator[object]:
    """Set the process umask for one test: ``umask(0o027)``; the old one comes back after."""
    old = os.umask(0o022)
    os.umask(old)

    def set_to(value: int) -> None:
        os.umask(value)

    try:
        yield set_to
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o027, 0o077])
def test_files_and_directories_get_the_umask_modes(tmp_path: Path, umask, mask: int) -> None:
    umask(mask)
    storage = open_storage(str(tmp_path / "bucket"))
    storage.write_text("a/b/latest.json", "{}")
    assert storage.put_if_absent("a/c/claim.json", b"1")
    assert not storage.put_if_absent("a/c/claim.json", b"2")
    storage.copy("a/b/latest.json", "d/copy.json")
    root = tmp_path / "bucket"
    for key in ("a/b/latest.json", "a/c/claim.json", "d/copy.json"):
        assert _mode(root / key) == 0o666 & ~mask, key
    for directory in ("a", "a/b", "a/c", "d"):
        assert _mode(root / directory) == 0o777 & ~mask, directory
    # atomic as before: no temporary file left behind, replacing keeps the mode
    storage.write_text("a/b/latest.json", '{"v": 2}')
    assert _mode(root / "a/b/latest.json") == 0o666 & ~mask
    assert sorted(p.name for p in (root / "a" / "b").iterdir()) == ["latest.json"]
    assert storage.read_text("a/b/latest.json") == '{"v": 2}'
    assert list(storage.list()) == ["a/b/latest.json", "a/c/claim.json", "d/copy.json"]


def test_a_failed_write_leaves_no_temporary_file(
    tmp_path: Path, umask, monkeypatch: pytest.MonkeyPatch
) -> None:
    umask(0o022)
    storage = open_storage(str(tmp_path))

    def refuse(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        storage.write_bytes("x/y.json", b"data")
    assert [p.name for p in (tmp_path / "x").iterdir()] == []


def test_a_dataset_written_under_a_umask_is_readable_by_others(tmp_path: Path, umask) -> None:
    from hypermodel import hml

    class Row(hml.BaseData, id="rowId"):
        rowId: int
        value: float

    umask(0o022)
    ds = hml.Dataset(dataType=Row, location=str(tmp_path), project="p", name="rows", chunkCount=16)
    with ds.open("w") as writer:
        for i in range(20):
            writer.append(Row(rowId=i, value=i / 2))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert _mode(path) == 0o644, (path, oct(_mode(path)))
    for path in [p for p in tmp_path.rglob("*") if p.is_dir()]:
        assert _mode(path) == 0o755, (path, oct(_mode(path)))
