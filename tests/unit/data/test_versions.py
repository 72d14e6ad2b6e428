"""Dataset versions: a stable name, one immutable version per pipeline run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hypermodel.context import OpContext, op_context
from hypermodel.data import (
    Dataset,
    DatasetExistsError,
    DatasetNotFoundError,
    DatasetUsageError,
)
from hypermodel.data.versions import entries

from .models import Item, items


def in_run(root: Path, run_id: str) -> OpContext:
    return OpContext(
        app="app",
        pipeline="p",
        task="t",
        op="t",
        run_id=run_id,
        attempt=1,
        root=str(root),
        workdir=root / "work",
        output_key="k",
    )


class Run:
    def __init__(self, root: Path, run_id: str) -> None:
        self.ctx = in_run(root, run_id)

    def __enter__(self) -> OpContext:
        self.scope = op_context(self.ctx)
        self.scope.__enter__()
        return self.ctx

    def __exit__(self, *exc: object) -> None:
        self.scope.__exit__(None, None, None)


def write(ds: Dataset, n: int) -> None:
    with ds.open("w") as writer:
        for obj in items(n):
            writer.append(obj)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "bucket"


def ds(root: Path, name: str = "x") -> Dataset:
    return Dataset(Item, str(root), "p", "main", name)


def count(dataset: Dataset) -> int:
    return sum(1 for _ in dataset.open("r"))


def test_each_run_writes_a_new_version_under_the_same_name(root: Path) -> None:
    with Run(root, "run-1"):
        write(ds(root), 3)
        first = ds(root).ref
        assert count(ds(root)) == 3  # this run reads what it wrote
    with Run(root, "run-2"):
        assert count(ds(root)) == 3  # the newest, before this run writes its own
        write(ds(root), 5)  # no DatasetExistsError: a new version
        second = ds(root).ref
        assert count(ds(root)) == 5
    assert first != second and first.startswith("x@") and second.startswith("x@")
    # outside a run: the newest version; NAME@VERSION any of them
    assert count(ds(root)) == 5
    assert count(ds(root, first)) == 3
    assert count(Dataset(Item, str(root), "p", "main", "x", version=first.split("@")[1])) == 3
    # files: Hypergol's layout, the version as a branch; and one registry entry each
    version = first.split("@")[1]
    assert (root / f"p/main@{version}/x/x.chk").is_file()
    assert [e["run_id"] for e in entries(ds(root).storage, "p", "main", "x")] == [
        "run-1",
        "run-2",
    ]
    assert not (root / "p/main/x").exists()  # nothing written under the plain name


def test_a_run_reads_its_own_version_even_when_a_newer_one_exists(root: Path) -> None:
    with Run(root, "run-a"):
        write(ds(root), 2)
    with Run(root, "run-b"):
        write(ds(root), 7)
    with Run(root, "run-a"):  # e.g. a later op of run-a, in another process
        assert count(ds(root)) == 2
    with Run(root, "run-c"):  # a run that wrote nothing reads the newest
        assert count(ds(root)) == 7


def test_outside_a_run_the_plain_dataset_stays_as_it_was(root: Path) -> None:
    write(ds(root), 4)
    assert (root / "p/main/x/x.chk").is_file()
    with pytest.raises(DatasetExistsError):
        write(ds(root), 4)
    assert ds(root).ref == "x" and ds(root).resolved_version() is None
    with Run(root, "run-1"):
        write(ds(root), 6)  # inside a run: a version beside the plain dataset
    assert count(ds(root)) == 6  # the newest version wins over the plain one
    plain = Dataset(Item, str(root), "p", "main", "x", versioned=False)
    assert count(plain) == 4


def test_versioned_true_versions_outside_runs_and_false_never(root: Path) -> None:
    always = Dataset(Item, str(root), "p", "main", "v", versioned=True)
    write(always, 1)
    write(always, 2)
    assert len(entries(always.storage, "p", "main", "v")) == 2
    with Run(root, "r"):
        never = Dataset(Item, str(root), "p", "main", "n", versioned=False)
        write(never, 1)
    assert (root / "p/main/n/n.chk").is_file()


def test_a_pinned_dataset_does_not_move_when_a_newer_version_lands(root: Path) -> None:
    with Run(root, "r1"):
        write(ds(root), 2)
    pinned = ds(root).pinned()
    with Run(root, "r2"):
        write(ds(root), 9)
    assert count(pinned) == 2 and count(ds(root)) == 9


def test_the_def_is_hypergols_with_the_version_as_its_branch(root: Path) -> None:
    with Run(root, "r1"):
        write(ds(root), 2)
        definition = ds(root).read_def()
        version = ds(root).resolved_version()
    assert definition["branch"] == f"main@{version}" and definition["name"] == "x"
    assert set(definition) == {
        "branch",
        "chunkCount",
        "creationTime",
        "dataType",
        "dependencies",
        "name",
        "project",
        "repo",
    }


def test_bad_versions_are_clear_errors(root: Path) -> None:
    with pytest.raises(DatasetUsageError, match="two versions"):
        Dataset(Item, str(root), "p", "main", "x@a", version="b")
    with pytest.raises(DatasetUsageError, match=r"version name '\.\./up' is not allowed"):
        Dataset(Item, str(root), "p", "main", "x@../up")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        _ = ds(root, "x@20000101-000000-000000-dead").checksum


def test_a_damaged_registry_entry_is_skipped_not_fatal(root: Path) -> None:
    with Run(root, "r1"):
        write(ds(root), 2)
    good = ds(root).ref
    entry_dir = root / ".hml-versions/p/main/x"
    (entry_dir / "zzz-not-json.json").write_text("{")
    (entry_dir / "other.json").write_text(json.dumps({"version": "mismatch"}))
    assert ds(root).ref == good and count(ds(root)) == 2
