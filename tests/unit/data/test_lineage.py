from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import git
import pytest

from hypermodel.context import OpContext
from hypermodel.context import op_context as entered
from hypermodel.data import Dataset
from hypermodel.data.lineage import NO_REPO_COMMIT, repo_state
from tests.support import git_repo

from .models import Item, items


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> git.Repo:
    work = tmp_path / "code"
    r = git_repo(work, {"model.py": "x = 1\n"}, "first model", branch="feature")
    monkeypatch.chdir(work)
    return r  # type: ignore[no-any-return]


@pytest.fixture
def op_context(tmp_path: Path) -> Iterator[OpContext]:
    ctx = OpContext(
        app="app",
        pipeline="p",
        task="t",
        op="t",
        run_id="r1",
        attempt=1,
        root=str(tmp_path / "bucket"),
        workdir=tmp_path,
        output_key="k",
    )
    with entered(ctx):
        yield ctx


def write(ds: Dataset, n: int = 5) -> str:
    with ds.open("w") as writer:
        for obj in items(n):
            writer.append(obj)
    return ds.checksum


def test_git_state_is_recorded_with_hypergols_keys(repo: git.Repo, tmp_path: Path) -> None:
    ds = Dataset(Item, str(tmp_path / "b"), "p", "main", "x")
    write(ds)
    recorded = ds.read_def()["repo"]
    assert recorded == {
        "branchName": "feature",
        "commitHash": repo.head.commit.hexsha,
        "commitMessage": "first model",
        "comitterName": "Ada Lovelace",
        "comitterEmail": "ada@example.com",
    }


def test_outside_a_repository_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    with caplog.at_level(logging.WARNING, logger="hypermodel.data"):
        first = repo_state()
        repo_state()
    assert first["commitHash"] == NO_REPO_COMMIT
    assert "not inside a git repository" in first["commitMessage"]
    warned = [r.getMessage() for r in caplog.records if "record no code lineage" in r.message]
    assert len(warned) == 1, warned  # said once, not once per dataset (and not zero times)
    assert str(plain) in warned[0]


def test_dirty_repo_outside_a_pipeline_is_recorded(repo: git.Repo, tmp_path: Path) -> None:
    Path("model.py").write_text("x = 2\n")
    ds = Dataset(Item, str(tmp_path / "b"), "p", "main", "x")
    write(ds)
    assert ds.read_def()["repo"]["isDirty"] is True


def test_pipeline_records_a_dirty_repo_with_the_digest_of_its_diff(
    repo: git.Repo,
    op_context: OpContext,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    Path("model.py").write_text("x = 2\n")
    ds = Dataset(Item, project="p", branch="main", name="x")  # location: the op's root
    with caplog.at_level(logging.WARNING, logger="hypermodel.data"):
        write(ds)
        write(Dataset(Item, project="p", branch="main", name="y"))
    recorded = ds.read_def()["repo"]
    assert recorded["isDirty"] is True and recorded["commitHash"] == repo.head.commit.hexsha
    assert "forced" not in recorded
    diff = repo.git.diff("HEAD").encode() + b"\n"
    assert recorded["diffDigest"] == hashlib.sha256(diff).hexdigest()
    warned = [r.getMessage() for r in caplog.records if "uncommitted changes" in r.message]
    assert len(warned) == 1, warned  # once per dirty tree, not once per dataset
    # another edit is another diff: its datasets say so
    Path("model.py").write_text("x = 3\n")
    z = Dataset(Item, project="p", branch="main", name="z")
    write(z)
    assert z.read_def()["repo"]["diffDigest"] != recorded["diffDigest"]
    op_context.force = True
    forced = Dataset(Item, project="p", branch="main", name="f")
    write(forced)
    assert forced.read_def()["repo"]["forced"] is True


def test_ops_record_inputs_and_depend_on_them_automatically(
    repo: git.Repo, op_context: OpContext, tmp_path: Path
) -> None:
    root = str(tmp_path / "bucket")
    a, b = Dataset(Item, root, "p", "main", "a"), Dataset(Item, root, "p", "main", "b")
    op_context.output_datasets.clear()
    write(a)
    write(b)
    assert op_context.output_datasets == [a.checksum, b.checksum]
    list(a.open("r"))
    list(b.open("r"))
    assert op_context.input_datasets == [a.checksum, b.checksum]
    out = Dataset(Item, root, "p", "main", "out")
    write(out)
    deps = out.read_def()["dependencies"]
    assert [d["name"] for d in deps] == ["a", "b"]
    assert [d["chkFileChecksum"] for d in deps] == [a.checksum, b.checksum]
    assert op_context.output_datasets[-1] == out.checksum
