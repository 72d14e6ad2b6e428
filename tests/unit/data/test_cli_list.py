"""``hml datasets list --format json|table --limit N``: newest first, broken datasets listed with
their error, JSON alone on stdout, long values cut only in a terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hypermodel.cli import output
from hypermodel.cli.errors import run_cli
from hypermodel.cli.hml_cli import build_hml_cli
from hypermodel.data import Project

from .models import Item, items

REPO = {
    "branchName": "main",
    "commitHash": "ab" * 20,
    "commitMessage": "m",
    "comitterName": "Ada",
    "comitterEmail": "a@x",
}
LONG = "long_" + "n" * 120


def write(root: Path, name: str, created: str, count: int = 5, branch: str = "main") -> str:
    ds = Project(str(root), project="shop", branch=branch).datasets.get(
        dataType=Item, name=name, chunkCount=16, repoData=REPO
    )
    with ds.open("w", creation_time=created) as w:
        for obj in items(count):
            w.append(obj)
    return ds.checksum


@pytest.fixture
def three(tmp_path: Path) -> dict[str, str]:
    """Three datasets whose paths sort neither oldest nor newest first."""
    return {
        "c_old": write(tmp_path, "c_old", "2024-01-01T10:00:00", 3),
        "a_mid": write(tmp_path, "a_mid", "2024-06-01T10:00:00", 4),
        "b_new": write(tmp_path, "b_new", "2025-01-01T10:00:00", 7, branch="dev"),
    }


def hml(root: Path, *args: str) -> Any:
    return CliRunner().invoke(
        build_hml_cli(), ["--root", str(root), "datasets", *args], catch_exceptions=False
    )


def stdout_json(root: Path, *args: str) -> Any:
    result = hml(root, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_is_newest_first_with_every_field(tmp_path: Path, three: dict[str, str]) -> None:
    found = stdout_json(tmp_path, "list", "--format", "json")
    assert [d["id"] for d in found] == ["shop/dev/b_new", "shop/main/a_mid", "shop/main/c_old"]
    assert found[0] == {
        "id": "shop/dev/b_new",
        "project": "shop",
        "branch": "dev",
        "name": "b_new",
        "version": None,
        "directory": "shop/dev/b_new",
        "dataType": "Item",
        "chunks": 16,
        "objects": 7,
        "created": "2025-01-01T10:00:00",
        "checksum": three["b_new"],
        "versions": 0,
        "latest_version": None,
        "latest": True,
        "run_id": None,
        "error": None,
    }
    assert [d["objects"] for d in found] == [7, 4, 3]


def test_limit_and_pattern(tmp_path: Path, three: dict[str, str]) -> None:
    assert [
        d["name"] for d in stdout_json(tmp_path, "list", "--format", "json", "--limit", "2")
    ] == [
        "b_new",
        "a_mid",
    ]
    assert [
        d["name"]
        for d in stdout_json(tmp_path, "list", "--format=json", "--limit=1", "--pattern", "main")
    ] == ["a_mid"]
    lines = hml(tmp_path, "list", "--limit", "2").stdout.splitlines()
    assert lines[0].split() == [
        "dataset",
        "type",
        "chunks",
        "versions",
        "latest",
        "created",
        "checksum",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["shop/dev/b_new", "shop/main/a_mid"]
    code = hml(tmp_path, "list", "--as-code", "--limit", "1").stdout
    assert "b_new = hml.Dataset(" in code and "a_mid" not in code


def test_table_is_newest_first_and_whole(tmp_path: Path, three: dict[str, str]) -> None:
    lines = hml(tmp_path, "list").stdout.splitlines()
    assert [line.split()[0] for line in lines[1:]] == [
        "shop/dev/b_new",
        "shop/main/a_mid",
        "shop/main/c_old",
    ]
    assert "2025-01-01T10:00:00" in lines[1] and three["b_new"][:12] in lines[1]


def test_empty_root_gives_an_empty_json_list(tmp_path: Path) -> None:
    assert stdout_json(tmp_path / "nothing", "list", "--format", "json") == []
    write(tmp_path, "raw", "2024-01-01T00:00:00")
    assert stdout_json(tmp_path, "list", "--format", "json", "--pattern", "nomatch") == []
    assert "no datasets in" in hml(tmp_path / "nothing", "list").stdout


def test_broken_datasets_are_listed_with_their_error(tmp_path: Path, three: dict[str, str]) -> None:
    (tmp_path / "shop/main/a_mid/a_mid.def").unlink()
    (tmp_path / "shop/main/c_old/c_old.def").write_text("{not json")
    result = hml(tmp_path, "list", "--format", "json")
    assert result.exit_code == 0
    found = json.loads(result.stdout)  # nothing but JSON on stdout
    assert [d["id"] for d in found] == ["shop/dev/b_new", "shop/main/a_mid", "shop/main/c_old"]
    assert found[0]["error"] is None
    broken = {d["name"]: d for d in found[1:]}
    assert "a_mid.def is missing" in broken["a_mid"]["error"]
    assert "c_old.def is not valid JSON" in broken["c_old"]["error"]
    assert broken["a_mid"]["checksum"] is None and broken["a_mid"]["project"] == "shop"
    table = hml(tmp_path, "list")
    assert table.exit_code == 0
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:]}
    assert rows["shop/main/a_mid"].endswith("BROKEN") and "BROKEN" not in rows["shop/dev/b_new"]
    assert "warning: dataset" in table.stderr and "a_mid.def is missing" in table.stderr
    assert "warning" not in table.stdout


def test_objects_is_null_without_an_index(tmp_path: Path, three: dict[str, str]) -> None:
    (tmp_path / "shop/main/a_mid/a_mid.idx.json").unlink()
    found = {d["name"]: d for d in stdout_json(tmp_path, "list", "--format", "json")}
    assert found["a_mid"]["objects"] is None and found["c_old"]["objects"] == 3
    assert not (tmp_path / "shop/main/a_mid/a_mid.idx.json").exists()  # listing never writes


def test_long_values_are_cut_only_in_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, LONG, "2024-01-01T00:00:00")
    write(tmp_path, "short", "2023-01-01T00:00:00")
    out = hml(tmp_path, "list").stdout
    assert f"shop/main/{LONG}" in out and "…" not in out
    monkeypatch.setattr(output, "is_terminal", lambda: True)
    monkeypatch.setattr(output, "terminal_width", lambda: 90)
    lines = hml(tmp_path, "list").stdout.splitlines()
    assert all(len(line) <= 90 for line in lines)
    assert lines[1].startswith("shop/main/long_nnn") and lines[1].split()[0].endswith("…")
    assert lines[2].startswith("shop/main/short ")
    assert "2024-01-01T00:00:00" in lines[1]  # the narrow columns keep their values
    assert stdout_json(tmp_path, "list", "--format", "json")[0]["name"] == LONG


@pytest.mark.parametrize(
    "args, expected",
    [
        (("--limit", "0"), "--limit"),
        (("--limit", "-3"), "--limit"),
        (("--limit=-1", "--format", "json"), "--limit"),
        (("--format", "csv"), "--format"),
        (("--as-code", "--format", "json"), "cannot be combined"),
    ],
)
def test_bad_options_are_a_one_line_usage_error(
    tmp_path: Path, args: tuple[str, ...], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(build_hml_cli(), ["--root", str(tmp_path), "datasets", "list", *args], "hml")
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err and err.startswith("error: hml datasets list: ") and expected in err
