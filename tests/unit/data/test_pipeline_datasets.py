"""Ops that read and write datasets, run by the real local runner (inline and in a pool)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypermodel.data import Dataset
from tests.support import git_repo

from . import pipeline_app
from .models import Item


@pytest.mark.parametrize("workers", [0, 2])
def test_op_outputs_depend_on_what_the_op_read(
    hml_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.chdir(tmp_path)  # outside any git repository: lineage says so, no dirty check
    app = pipeline_app.make_app().configure(root=str(hml_root))
    result = app.pipelines.run_all("shop", {"n": 40}, workers=workers)
    assert result.ok, result.failed
    raw = Dataset(Item, str(hml_root), "shop", "main", "raw")
    clean = Dataset(Item, str(hml_root), "shop", "main", "clean")
    assert result.outputs["make_raw"] == raw.checksum
    assert result.outputs["clean"] == clean.checksum
    deps = clean.read_def()["dependencies"]
    assert [(d["name"], d["chkFileChecksum"]) for d in deps] == [("raw", raw.checksum)]
    assert sum(1 for _ in clean.open("r")) == 20


def test_a_dirty_repository_is_recorded_not_refused(
    hml_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = git_repo(tmp_path / "code", {"x.py": "1\n"})
    (tmp_path / "code/x.py").write_text("2\n")  # uncommitted change
    monkeypatch.chdir(tmp_path / "code")
    app = pipeline_app.make_app().configure(root=str(hml_root))
    result = app.pipelines.run_all("shop", {"n": 10}, workers=0)
    assert result.ok, result.failed
    recorded = Dataset(Item, str(hml_root), "shop", "main", "raw").read_def()["repo"]
    assert recorded["isDirty"] is True and recorded["commitHash"] == repo.head.commit.hexsha
    assert len(recorded["diffDigest"]) == 64 and "forced" not in recorded
