"""A local bucket never follows a symbolic link out of its root: every primitive refuses it,
naming the key; links that stay inside the root keep working."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hypermodel.cli.errors import run_cli
from hypermodel.cli.hml_cli import build_hml_cli
from hypermodel.errors import UnsafeNameError
from hypermodel.storage.local import LocalStorage


@pytest.fixture
def layout(tmp_path: Path) -> tuple[LocalStorage, Path]:
    """A bucket whose ``out/`` is a link to a directory outside it, and whose ``in/leak`` is a
    link to a file outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"not yours")
    root = tmp_path / "bucket"
    (root / "in").mkdir(parents=True)
    (root / "in" / "own.txt").write_bytes(b"mine")
    os.symlink(outside, root / "out")
    os.symlink(outside / "secret.txt", root / "in" / "leak")
    return LocalStorage(root), outside


def _refused(call: object, key: str) -> None:
    with pytest.raises(UnsafeNameError, match=f"storage key '{key}' leads out of the bucket root"):
        call()  # type: ignore[operator]


@pytest.mark.parametrize("key", ["out/secret.txt", "in/leak"])
def test_reads_through_a_link_out_of_the_root_are_refused(
    layout: tuple[LocalStorage, Path], key: str
) -> None:
    storage, _ = layout
    _refused(lambda: storage.read_bytes(key), key)
    _refused(lambda: storage.read_text(key), key)
    _refused(lambda: storage.open_read(key), key)
    _refused(lambda: storage.read_range(key, 0, 3), key)
    _refused(lambda: storage.size(key), key)
    _refused(lambda: storage.exists(key), key)
    _refused(lambda: storage.local_path(key), key)
    _refused(lambda: storage.copy(key, "in/copy.txt"), key)


def test_writes_through_a_linked_directory_are_refused(layout: tuple[LocalStorage, Path]) -> None:
    storage, outside = layout
    _refused(lambda: storage.write_bytes("out/new.txt", b"x"), "out/new.txt")
    _refused(lambda: storage.put_if_absent("out/new.txt", b"x"), "out/new.txt")
    _refused(lambda: storage.write_bytes("out/deeper/new.txt", b"x"), "out/deeper/new.txt")
    _refused(lambda: storage.delete("out/secret.txt"), "out/secret.txt")
    _refused(lambda: storage.list("out"), "out")
    _refused(lambda: storage.copy("in/own.txt", "out/copy.txt"), "out/copy.txt")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"not yours"


def test_a_link_object_is_replaced_or_removed_never_written_through(
    layout: tuple[LocalStorage, Path],
) -> None:
    storage, outside = layout
    storage.write_bytes("in/leak", b"replaced")  # the link is replaced by a file in the root
    assert not os.path.islink(storage.root / "in" / "leak")
    assert storage.read_bytes("in/leak") == b"replaced"
    assert (outside / "secret.txt").read_bytes() == b"not yours"
    os.symlink(outside / "secret.txt", storage.root / "in" / "leak2")
    assert storage.put_if_absent("in/leak2", b"x") is False  # exists: nothing written
    storage.delete("in/leak2")  # removes the link itself
    assert not os.path.lexists(storage.root / "in" / "leak2")
    assert (outside / "secret.txt").read_bytes() == b"not yours"


def test_listing_skips_links_out_of_the_root(layout: tuple[LocalStorage, Path]) -> None:
    storage, _ = layout
    assert list(storage.list()) == ["in/own.txt"]
    assert list(storage.list("in")) == ["in/own.txt"]


def test_links_inside_the_root_and_a_linked_root_work(tmp_path: Path) -> None:
    real = tmp_path / "real-bucket"
    (real / "data" / "v1").mkdir(parents=True)
    (real / "data" / "v1" / "a.txt").write_bytes(b"a")
    os.symlink(real / "data" / "v1", real / "current")  # a link inside the root
    os.symlink(real / "data" / "v1" / "a.txt", real / "data" / "alias.txt")
    os.symlink(real, tmp_path / "linked-root")  # the root itself reached through a link
    for root in (real, tmp_path / "linked-root"):
        storage = LocalStorage(root)
        assert storage.read_bytes("current/a.txt") == b"a"
        assert storage.read_bytes("data/alias.txt") == b"a"
        storage.write_bytes("current/b.txt", b"b")
        assert (real / "data" / "v1" / "b.txt").read_bytes() == b"b"
        assert storage.exists("current/b.txt") and storage.size("current/b.txt") == 1
        assert "data/alias.txt" in list(storage.list())
        storage.delete("current/b.txt")


def _hml(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str]:
    """The ``hml`` command as a user runs it: errors are one line on stderr and an exit code."""
    with pytest.raises(SystemExit) as exit_:
        run_cli(build_hml_cli(), ["--root", str(root), *args], "hml")
    captured = capsys.readouterr()
    return int(exit_.value.code or 0), captured.out + captured.err


def test_artifacts_push_and_pull_refuse_links_out_of_the_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(b"root:x:0:0")
    root = tmp_path / "bucket"
    shared = root / "tracking" / "projects" / "p"
    shared.mkdir(parents=True)
    os.symlink(outside, shared / "artifacts")  # push would write outside through it
    upload = tmp_path / "model.txt"
    upload.write_text("weights")
    code, out = _hml(capsys, root, "artifacts", "push", str(upload), "--project", "p")
    assert code == 2 and "leads out of the bucket root" in out, out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1
    assert sorted(p.name for p in outside.iterdir()) == ["passwd"]

    os.unlink(shared / "artifacts")
    (shared / "artifacts").mkdir()
    os.symlink(outside / "passwd", shared / "artifacts" / "stolen")  # pull would read it
    target = tmp_path / "got"
    code, out = _hml(
        capsys, root, "artifacts", "pull", "stolen", "--project", "p", "-o", str(target)
    )
    assert code == 2 and "storage key 'tracking/projects/p/artifacts/stolen'" in out, out
    assert not target.exists()
