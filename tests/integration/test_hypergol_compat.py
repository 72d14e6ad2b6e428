"""Hypergol 0.2.1 reads datasets we wrote, and we read datasets it wrote (same files, same checksums)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hypermodel.data import Dataset, Project
from tests.support import unavailable
from tests.unit.data.models import Item, items

REPO = {
    "branchName": "main",
    "commitHash": "c" * 40,
    "commitMessage": "m",
    "comitterName": "Ada",
    "comitterEmail": "ada@example.com",
}


@pytest.fixture(scope="module")
def hypergol() -> Iterator[Any]:
    added_flag = "-m" not in sys.argv
    if added_flag:
        sys.argv.append("-m")  # otherwise `import hypergol` imports TensorFlow and torch
    shimmed = False
    try:
        import pkg_resources  # noqa: F401
    except ImportError:  # setuptools >= 81 dropped it; hypergol only reads its own version
        shim = types.ModuleType("pkg_resources")
        shim.DistributionNotFound = type("DistributionNotFound", (Exception,), {})  # type: ignore[attr-defined]
        shim.get_distribution = lambda name: types.SimpleNamespace(
            version=importlib.metadata.version(name)
        )  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
        shimmed = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                import hypergol
            except ImportError as exc:
                unavailable(f"hypergol 0.2.1 is not installed (make venv installs it): {exc}")
        yield hypergol
    finally:  # leave no trace for other tests (pytest's own tools look for pkg_resources)
        if shimmed:
            sys.modules.pop("pkg_resources", None)
        if added_flag:
            sys.argv.remove("-m")


def hypergol_item(hypergol: Any) -> type:
    class Item(hypergol.BaseData):  # what hypergol's create_data_model generates
        def __init__(self, itemId: int, name: str, score: float, created: dt.datetime):
            self.itemId = itemId
            self.name = name
            self.score = score
            self.created = created

        def get_id(self) -> tuple[int]:
            return (self.itemId,)

        def to_data(self) -> dict[str, Any]:
            data = self.__dict__.copy()
            data["created"] = data["created"].isoformat()
            return data

        @classmethod
        def from_data(cls, data: dict[str, Any]) -> Any:
            data["created"] = dt.datetime.fromisoformat(data["created"])
            return cls(**data)

    return Item


def as_tuples(objs: Any) -> list[tuple[Any, ...]]:
    return sorted((o.itemId, o.name, o.score, o.created) for o in objs)


@pytest.mark.parametrize("chunks", [16, 256])
def test_hypergol_reads_and_verifies_what_we_wrote(
    hypergol: Any, tmp_path: Path, chunks: int
) -> None:
    objs = items(500)
    ours = Dataset(Item, str(tmp_path), "proj", "main", "items", repoData=REPO, chunkCount=chunks)
    with ours.open("w") as writer:
        for obj in objs:
            writer.append(obj)
    HItem = hypergol_item(hypergol)
    theirs = hypergol.Dataset(
        dataType=HItem,
        location=str(tmp_path),
        project="proj",
        branch="main",
        name="items",
        chunkCount=chunks,
        repoData=hypergol.RepoData(**REPO),
    )
    with theirs.open("r") as reader:  # also checks our .def against its own definition
        read = list(reader)
    assert as_tuples(read) == as_tuples(objs)
    assert theirs.chkFile.check_chk_file() is True
    assert theirs.chkFile.get_checksum() == ours.checksum
    # hypergol finds every object in the chunk its own rule names
    for chunk in theirs.get_data_chunks("r"):
        chunk.open()
        for obj in chunk:
            assert theirs.get_object_chunk_id(obj.get_hash_id()) == chunk.chunkId
        chunk.close()


def test_we_read_what_hypergol_wrote_with_its_lineage(hypergol: Any, tmp_path: Path) -> None:
    HItem = hypergol_item(hypergol)
    repo = hypergol.RepoData(**REPO)
    raw = hypergol.Dataset(
        dataType=HItem,
        location=str(tmp_path),
        project="proj",
        branch="main",
        name="raw",
        chunkCount=16,
        repoData=repo,
    )
    src = [HItem(o.itemId, o.name, o.score, o.created) for o in items(300)]
    with raw.open("w") as writer:
        for obj in src:
            writer.append(obj)
    derived = hypergol.Dataset(
        dataType=HItem,
        location=str(tmp_path),
        project="proj",
        branch="main",
        name="derived",
        chunkCount=16,
        repoData=repo,
    )
    derived.add_dependency(raw)
    with derived.open("w") as writer:
        for obj in src[:10]:
            writer.append(obj)
    ours = Dataset(Item, str(tmp_path), "proj", "main", "raw", chunkCount=16)
    assert as_tuples(ours.open("r")) == as_tuples(src)
    assert ours.checksum == raw.chkFile.get_checksum()
    assert sum(ours.verify().values()) == 300
    info = Project(str(tmp_path), "proj", "main").datasets.list(pattern="derived")[0]
    dep = info.definition["dependencies"][0]
    assert dep["name"] == "raw" and dep["chkFileChecksum"] == ours.checksum
    # and what we derive from their dataset embeds it the same way they would
    mine = Dataset(Item, str(tmp_path), "proj", "main", "mine", repoData=REPO)
    mine.add_dependency(ours)
    with mine.open("w") as writer:
        writer.append(items(1)[0])
    assert mine.read_def()["dependencies"][0] == {
        **json.loads((tmp_path / "proj/main/raw/raw.def").read_text()),
        "chkFileChecksum": ours.checksum,
    }


def test_hypergol_reads_a_version_as_a_branch(hypergol: Any, tmp_path: Path) -> None:
    """A version written inside a pipeline run is, for Hypergol, the branch ``main@<version>``."""
    objs = items(120)
    ours = Dataset(Item, str(tmp_path), "proj", "main", "items", repoData=REPO, versioned=True)
    with ours.open("w") as writer:
        for obj in objs:
            writer.append(obj)
    version = ours.resolved_version()
    assert version is not None
    theirs = hypergol.Dataset(
        dataType=hypergol_item(hypergol),
        location=str(tmp_path),
        project="proj",
        branch=f"main@{version}",
        name="items",
        chunkCount=16,
        repoData=hypergol.RepoData(**REPO),
    )
    with theirs.open("r") as reader:
        assert as_tuples(list(reader)) == as_tuples(objs)
    assert theirs.chkFile.check_chk_file() is True
    assert theirs.chkFile.get_checksum() == ours.checksum
