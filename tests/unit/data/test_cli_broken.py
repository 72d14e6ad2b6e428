"""One broken dataset breaks no command on the others (``hml datasets list/show/verify/lineage``,
``hml gc``, ``Project.datasets.list``), is listed as broken with its problem, and a command on
the broken one names that problem (not "no dataset named")."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hypermodel.cli.errors import run_cli
from hypermodel.cli.hml_cli import build_hml_cli
from hypermodel.data import Dataset, Project
from hypermodel.data import format as fmt

from .models import Item, items

REPO = {"commitHash": "ab" * 20, "branchName": "main"}


def write(root: Path, name: str) -> Dataset:
    ds = Dataset(Item, str(root), "shop", "main", name, repoData=REPO)
    with ds.open("w") as writer:
        for obj in items(6):
            writer.append(obj)
    return ds


def hml(root: Path, *args: str) -> Any:
    return CliRunner().invoke(build_hml_cli(), ["--root", str(root), *args])


def fails(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Through the CLI's error boundary: (exit code, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        run_cli(build_hml_cli(), ["--root", str(root), *args], "hml")
    return int(exited.value.code or 0), capsys.readouterr().err


def rewrite_def(folder: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    """Replace the .def by ``change(definition)`` and the .chk to match it (a .def whose
    checksum is right but whose content is not what the format says)."""
    def_path = folder / "bad.def"
    text = json.dumps(change(json.loads(def_path.read_text())), sort_keys=True, indent=4)
    def_path.write_text(text)
    chk = json.loads((folder / "bad.chk").read_text())
    chk["bad.def"] = fmt.sha1_text(text)
    (folder / "bad.chk").write_text(fmt.dump_chk(chk))


def break_def(folder: Path, how: str) -> None:
    path = folder / "bad.def"
    if how == "missing":
        path.unlink()
    elif how == "not JSON":
        path.write_text("{not json")
    elif how == "a list":
        path.write_text("[1, 2]")
    elif how == "a directory":
        path.unlink()
        path.mkdir()
    elif how == "edited":
        path.write_text(path.read_text().replace('"main"', '"dev"', 1))
    elif how == "a list, .chk to match":
        rewrite_def(folder, lambda d: [d])
    elif how == "dependencies a number, .chk to match":
        rewrite_def(folder, lambda d: {**d, "dependencies": 5})
    elif how == "repo a string, .chk to match":
        rewrite_def(folder, lambda d: {**d, "repo": "x"})
    elif how == "chunkCount 17, .chk to match":
        rewrite_def(folder, lambda d: {**d, "chunkCount": 17})
    else:
        raise AssertionError(how)


BROKEN = {
    "missing": "bad.def is missing",
    "not JSON": "bad.def is not valid JSON",
    "a list": "bad.def is a list, not a JSON object",
    "a directory": "bad.def is a directory, not a file",
    "edited": "bad.def does not match its checksum in bad.chk",
    "a list, .chk to match": "bad.def is a list, not a JSON object",
    "dependencies a number, .chk to match": "bad.def has dependencies that are not a list",
    "repo a string, .chk to match": "bad.def has a string as its repo, not an object",
    "chunkCount 17, .chk to match": "bad.def has chunkCount 17, not one of 16, 256 or 4096",
}


@pytest.fixture(params=sorted(BROKEN))
def broken_root(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    write(tmp_path, "good")
    write(tmp_path, "bad")
    break_def(tmp_path / "shop/main/bad", request.param)
    return tmp_path, BROKEN[request.param]


def test_one_bad_def_breaks_no_command_and_is_listed_as_broken(
    broken_root: tuple[Path, str],
) -> None:
    root, problem = broken_root
    table = hml(root, "datasets", "list")
    assert table.exit_code == 0, table.output
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:]}
    assert rows["shop/main/bad"].endswith("BROKEN") and "BROKEN" not in rows["shop/main/good"]
    assert problem in table.stderr
    listed = json.loads(hml(root, "datasets", "list", "--format", "json").stdout)
    errors = {d["name"]: d["error"] for d in listed}
    assert errors["good"] is None and problem in errors["bad"]
    assert "BROKEN" in hml(root, "datasets", "list", "--all-versions").stdout
    for args in (("show", "good"), ("verify", "good"), ("lineage", "good")):
        result = hml(root, "datasets", *args)
        assert result.exit_code == 0, (args, result.output)
        assert "shop/main/good" in result.stdout
    assert hml(root, "gc").exit_code == 0
    assert hml(root, "gc", "--yes").exit_code == 0
    assert (root / "shop/main/bad/bad.chk").exists()  # gc leaves a broken dataset alone


def test_show_verify_and_lineage_of_the_broken_one_name_its_problem(
    broken_root: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, problem = broken_root
    for command in ("show", "verify", "lineage"):
        for name in ("bad", "shop/main/bad"):
            code, err = fails(root, capsys, "datasets", command, name)
            assert code == 1, (command, err)
            assert problem in err and "is broken" in err, (command, err)
            assert "no dataset named" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "how, problem",
    [
        ("no .chk", "was never published: it has no bad.chk"),
        ("no .def", "bad.def is missing"),
        ("non-JSON .def", "bad.def is not valid JSON"),
        ("non-JSON .def, .chk to match", "bad.def is not valid JSON"),
    ],
)
def test_verify_names_the_actual_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str, problem: str
) -> None:
    write(tmp_path, "bad")
    folder = tmp_path / "shop/main/bad"
    if how == "no .chk":
        (folder / "bad.chk").unlink()
    elif how == "no .def":
        (folder / "bad.def").unlink()
    elif how == "non-JSON .def":
        (folder / "bad.def").write_text("{oops")
    else:
        (folder / "bad.def").write_text("{oops")
        chk = json.loads((folder / "bad.chk").read_text())
        chk["bad.def"] = fmt.sha1_text("{oops")
        (folder / "bad.chk").write_text(fmt.dump_chk(chk))
    code, err = fails(tmp_path, capsys, "datasets", "verify", "bad")
    assert code == 1 and problem in err and "no dataset named" not in err, err
    assert f"{tmp_path}/shop/main/bad" in err
    # a name that is nowhere is still "no dataset named"
    code, err = fails(tmp_path, capsys, "datasets", "verify", "nothing")
    assert code == 1 and "no dataset named 'nothing'" in err


def test_a_project_lists_its_good_datasets_and_warns_about_a_broken_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "good")
    write(tmp_path, "bad")
    break_def(tmp_path / "shop/main/bad", "a list, .chk to match")
    with caplog.at_level(logging.WARNING, logger="hypermodel.data.project"):
        found = Project(str(tmp_path), "shop", "main").datasets.list()
    assert [d.name for d in found] == ["good"]
    assert "shop/main/bad is broken, left out: bad.def is a list" in caplog.text
