"""A writer killed right after its .chk is written leaves its publish claim and temporary files;
the next write of the dataset and ``hml gc`` remove them, and never a live writer's claim, an
unpublished dataset's files or a temporary file that may still be written."""

from __future__ import annotations

import json
import os
import socket
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hypermodel.cli.hml_cli import build_hml_cli
from hypermodel.data import Dataset
from hypermodel.data.errors import DatasetExistsError
from hypermodel.data.leftovers import GRACE
from tests.unit.data.helpers import kill_when, write_by_chunk_jobs

from .models import Item, items

REPO = str(Path(__file__).resolve().parents[3])

KILLED_AFTER_CHK = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {repo!r})
    from tests.unit.data.helpers import write_by_chunk_jobs
    from tests.unit.data.models import Item, items
    from hypermodel.data import Dataset

    real_link = os.link

    def link(src, dst, *args, **kwargs):  # the .chk's create-if-absent is a hard link
        real_link(src, dst, *args, **kwargs)
        if str(dst).endswith(".chk"):  # published; killed before anything else happens
            print("published", flush=True)
            time.sleep(60)

    os.link = link
    ds = Dataset(Item, {root!r}, "proj", "main", "items", repoData={{"x": 1}})
    if {jobs!r}:
        ds.publish(write_by_chunk_jobs(ds, items(50), "tok", 1 << 20), token="tok")
    else:
        with ds.open("w") as writer:
            for obj in items(50):
                writer.append(obj)
    """
)


def make(root: Path, name: str = "items") -> Dataset:
    return Dataset(Item, str(root), "proj", "main", name, repoData={"x": 1})


def killed_after_chk(root: Path, jobs: bool = False) -> Path:
    """Publish ``items`` in a process killed right after its .chk was linked; its folder."""
    kill_when(KILLED_AFTER_CHK.format(repo=REPO, root=str(root), jobs=jobs), b"published")
    folder = root / "proj/main/items"
    assert (folder / "items.chk").exists()
    return folder


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.tmp*"))


def age(folder: Path, seconds: float = GRACE + 60) -> None:
    """Make every temporary file look idle for ``seconds``."""
    old = time.time() - seconds
    for path in folder.rglob(".*.tmp*"):
        os.utime(path, (old, old))


def write(ds: Dataset, n: int) -> None:
    with ds.open("w") as writer:
        for obj in items(n):
            writer.append(obj)


def hml(root: Path, *args: str) -> Any:
    result = CliRunner().invoke(build_hml_cli(), ["--root", str(root), *args])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("jobs", [False, True], ids=["writer", "chunk-jobs"])
def test_the_next_write_removes_what_a_writer_killed_after_its_chk_left(
    tmp_path: Path, jobs: bool
) -> None:
    folder = killed_after_chk(tmp_path, jobs)
    claims = folder / ".hml-publish"
    assert (claims / "0.json").exists() and (claims / "0.beat").exists()
    assert temporaries(folder), "the kill left temporary files"
    age(folder)
    ds = make(tmp_path)
    with pytest.raises(DatasetExistsError):
        write(ds, 3)
    assert not claims.exists()
    assert temporaries(folder) == []
    assert sum(ds.verify().values()) == 50  # the published dataset is untouched


def test_the_next_write_keeps_temporary_files_that_may_still_be_written(tmp_path: Path) -> None:
    folder = killed_after_chk(tmp_path)
    young = temporaries(folder)
    with pytest.raises(DatasetExistsError):
        write(make(tmp_path), 3)
    assert not (folder / ".hml-publish").exists()  # its writer is dead: the claim goes
    assert temporaries(folder) == young  # modified less than GRACE ago: left for later
    age(folder)
    with pytest.raises(DatasetExistsError):
        write(make(tmp_path), 3)
    assert temporaries(folder) == []


def claim(folder: Path, pid: int, host: str | None = None) -> None:
    (folder / ".hml-publish").mkdir(parents=True, exist_ok=True)
    record = {"host": host or socket.gethostname(), "pid": pid, "token": "t"}
    (folder / ".hml-publish/0.json").write_text(json.dumps(record))
    (folder / ".hml-publish/0.beat").write_text("3")


def test_a_live_writers_claim_is_never_removed(tmp_path: Path) -> None:
    ds = make(tmp_path)
    write(ds, 5)
    folder = tmp_path / "proj/main/items"
    claim(folder, os.getpid())  # a live process on this host holds it
    with pytest.raises(DatasetExistsError):
        write(make(tmp_path), 3)
    assert (folder / ".hml-publish/0.json").exists() and (folder / ".hml-publish/0.beat").exists()
    hml(tmp_path, "gc", "--yes")
    assert (folder / ".hml-publish/0.json").exists()


def test_gc_lists_then_removes_leftovers_and_leaves_live_and_unpublished_ones(
    tmp_path: Path,
) -> None:
    folder = killed_after_chk(tmp_path)
    age(folder)
    leftover = sorted(
        [".hml-publish/0.beat", ".hml-publish/0.json"] + [p.name for p in folder.glob(".*.tmp*")]
    )
    # a published dataset whose claim a live process on this host holds
    write(make(tmp_path, "live"), 4)
    live = tmp_path / "proj/main/live"
    claim(live, os.getpid())
    # an unpublished one (no .chk) whose writer is dead: a task resumes from such files
    write(make(tmp_path, "unpublished"), 4)
    unpublished = tmp_path / "proj/main/unpublished"
    (unpublished / "unpublished.chk").unlink()
    claim(unpublished, 999_999_999, host="elsewhere")

    before = sorted(str(p) for p in tmp_path.rglob("*"))
    out = hml(tmp_path, "gc").stdout
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # a dry run removes nothing
    assert "would remove 3 leftover file(s) of interrupted writers in proj/main/items" in out
    assert "live" not in out and "unpublished" not in out
    assert "to remove them: hml --root" in out
    report = json.loads(hml(tmp_path, "gc", "--format", "json").stdout)
    assert [(d["id"], d["files"]) for d in report["leftovers"]] == [("proj/main/items", leftover)]
    assert report["leftovers"][0]["bytes"] > 0

    out = hml(tmp_path, "gc", "--yes").stdout
    assert "removed 3 leftover file(s) of interrupted writers in proj/main/items" in out
    assert not (folder / ".hml-publish").exists() and temporaries(folder) == []
    assert (live / ".hml-publish/0.json").exists()
    assert (unpublished / ".hml-publish/0.json").exists()
    assert sum(make(tmp_path).verify().values()) == 50
    assert "nothing to remove" in hml(tmp_path, "gc").stdout


def test_chunk_jobs_leftovers_go_too(tmp_path: Path) -> None:
    """The layouts chunk jobs stage beside their chunks are removed with the rest."""
    folder = killed_after_chk(tmp_path, jobs=True)
    assert any(name.endswith(".layout.tmp") for name in temporaries(folder))
    age(folder)
    hml(tmp_path, "gc", "--yes")
    assert temporaries(folder) == [] and not (folder / ".hml-publish").exists()
    ds = make(tmp_path)
    assert sorted(o.itemId for o in ds) == list(range(50))
    assert write_by_chunk_jobs  # the helper the killed script used
