from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hypermodel.cli.hml_cli import build_hml_cli
from hypermodel.data import DatasetNotFoundError, Project
from hypermodel.data.project import find_dataset

from .models import Item, Part, items

REPO = {
    "branchName": "main",
    "commitHash": "ab" * 20,
    "commitMessage": "m",
    "comitterName": "Ada",
    "comitterEmail": "a@x",
}


def build(root: Path) -> Project:
    project = Project(str(root), project="shop", branch="main")
    raw = project.datasets.get(dataType=Item, name="raw", repoData=REPO)
    with raw.open("w") as w:
        for obj in items(40):
            w.append(obj)
    clean = project.datasets.get(dataType=Item, name="clean", repoData=REPO)
    clean.add_dependency(raw)
    with clean.open("w") as w:
        for obj in raw.open("r"):
            w.append(obj)
    other = Project(str(root), project="shop", branch="dev").datasets.get(
        dataType=Part, name="parts", chunkCount=256, repoData=REPO
    )
    other.open("w").close()
    return project


def test_factory_and_listing(tmp_path: Path) -> None:
    project = build(tmp_path)
    listed = project.datasets.list()
    assert [d.name for d in listed] == ["clean", "raw"]
    assert [d.path for d in project.datasets.list(all_branches=True)] == [
        "shop/dev/parts",
        "shop/main/clean",
        "shop/main/raw",
    ]
    assert project.datasets.list(pattern="ra") == [d for d in listed if d.name == "raw"]
    raw = project.datasets.get(dataType=Item, name="raw")
    assert raw.checksum == listed[1].checksum
    assert len(list(raw.open("r"))) == 40


def test_find_by_name_path_or_checksum_prefix(tmp_path: Path) -> None:
    project = build(tmp_path)
    raw = project.datasets.get(dataType=Item, name="raw")
    assert find_dataset(project.storage, "raw").checksum == raw.checksum
    assert find_dataset(project.storage, "shop/main/raw").name == "raw"
    assert find_dataset(project.storage, raw.checksum[:10]).name == "raw"
    with pytest.raises(DatasetNotFoundError, match="hml datasets list"):
        find_dataset(project.storage, "nothing")


def run(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_hml_cli(), ["--root", str(root), "datasets", *args])
    return result.exit_code, result.output


def test_cli_list_show_lineage_verify(tmp_path: Path) -> None:
    project = build(tmp_path)
    code, out = run(tmp_path, "list")
    assert code == 0 and "shop/main/raw" in out and "shop/dev/parts" in out
    code, out = run(tmp_path, "list", "--pattern", "clean", "--as-code")
    assert code == 0 and "clean = hml.Dataset(dataType=Item" in out and "raw =" not in out
    code, out = run(tmp_path, "show", "clean")
    assert code == 0 and "objects       40" in out and "abababab" in out
    code, out = run(
        tmp_path, "lineage", project.datasets.get(dataType=Item, name="clean").checksum[:8]
    )
    assert code == 0
    assert out.index("shop/main/clean") < out.index("shop/main/raw")
    assert "└──" in out and "abababab" in out and "Ada" in out
    code, out = run(tmp_path, "verify", "raw")
    assert code == 0 and "40 objects verified" in out


def test_cli_verify_fails_naming_the_file(tmp_path: Path) -> None:
    build(tmp_path)
    chunk = tmp_path / "shop/main/raw/raw_7.jsonl.gz"
    chunk.write_bytes(chunk.read_bytes()[:-8])
    result = CliRunner().invoke(
        build_hml_cli(), ["--root", str(tmp_path), "datasets", "verify", "raw"]
    )
    assert result.exit_code != 0
    assert "raw_7.jsonl.gz" in str(result.exception)
