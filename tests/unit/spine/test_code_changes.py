"""A change of the app's code reaches the next run-all; an unrelated change does not.

A real app package in a real git repository, committed after every edit, run by its own
console entry point in a fresh process each time (as a user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import git
import pytest

PIPELINE = """
from hypermodel import hml
from hypermodel.data import Dataset

from .helpers import scale
from .models import Num

app = hml.HmlApp(name="codey")
NUMS = Dataset(Num, project="codey", branch="main", name="nums", chunkCount=16)
DOUBLED = Dataset(Num, project="codey", branch="main", name="doubled", chunkCount=16)


class MakeNums(hml.Source):
    def source_iterator(self):
        yield from range(COUNT)

    def run(self, i):
        return Num(numId=i, value=i)


class Double(hml.OneToOne):
    def run(self, num):
        return Num(numId=num.numId, value=num.value * FACTOR)


@hml.op(cache=True)
def scaled(x: int = 3) -> int:
    return scale(x)


make_nums = MakeNums(outputDataset=NUMS, workers=1, progress=False)
double = Double(inputDatasets=[NUMS], outputDataset=DOUBLED, workers=1, progress=False)


@hml.pipeline(app.pipelines)
def codey(x: int = 3):
    scaled(x=x)
    make_nums()
    double()
"""

MODELS = """
from hypermodel import hml


class Num(hml.BaseData, id="numId"):
    numId: int
    value: int
"""


def write_app(work: Path, *, factor: int = 2, count: int = 10, scale: str = "x * 10") -> None:
    pkg = work / "codey"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text("from .pipeline import app\n\napp.start()\n")
    (pkg / "models.py").write_text(MODELS)
    (pkg / "helpers.py").write_text(f"def scale(x):\n    return {scale}\n")
    (pkg / "pipeline.py").write_text(f"FACTOR = {factor}\nCOUNT = {count}\n" + PIPELINE)


def commit(repo: git.Repo, message: str) -> None:
    repo.git.add(A=True)
    repo.index.commit(message)


def run_all(work: Path, root: Path, *extra: str) -> dict[str, Any]:
    """One run-all in a fresh process; the run record and outputs of each op."""
    env = {**os.environ, "PYTHONPATH": str(work), "HML_ROOT": str(root)}
    env.pop("HML_GIT_COMMIT", None)
    done = subprocess.run(
        [sys.executable, "-m", "codey", "pipelines", "codey", "run-all", "-q", "-w", "1", *extra],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    runs = sorted((root / "runs").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    record = json.loads((runs[-1] / "run.json").read_text())
    status = {t["name"]: t["status"] for t in record["tasks"]}
    outputs = {
        t: json.loads((runs[-1] / "outputs" / f"{t}.json").read_text())["output"] for t in status
    }
    return {"status": status, "outputs": outputs}


@pytest.fixture
def app_repo(tmp_path: Path) -> tuple[Path, git.Repo]:
    work = tmp_path / "work"
    work.mkdir()
    repo = git.Repo.init(work)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Ada")
        cw.set_value("user", "email", "ada@example.com")
    write_app(work)
    (work / "README.md").write_text("# codey\n")
    commit(repo, "first")
    return work, repo


def test_code_changes_reach_the_next_run_and_unrelated_ones_do_not(
    app_repo: tuple[Path, git.Repo], tmp_path: Path
) -> None:
    work, repo = app_repo
    root = tmp_path / "bucket"
    first = run_all(work, root)
    assert first["outputs"]["scaled"] == 30
    assert first["outputs"]["make_nums"]["objects"] == 10
    assert first["outputs"]["double"]["objects"] == 10

    # Unchanged code: the op is a cache hit, the tasks reuse their outputs (objects: None).
    again = run_all(work, root)
    assert again["status"]["scaled"] == "cached"
    assert again["outputs"]["make_nums"]["objects"] is None
    assert again["outputs"]["double"]["checksum"] == first["outputs"]["double"]["checksum"]

    # An unrelated file: nothing reruns.
    (work / "README.md").write_text("# codey\n\nNow with docs.\n")
    commit(repo, "docs")
    docs = run_all(work, root)
    assert docs["status"]["scaled"] == "cached"
    assert docs["outputs"]["double"]["objects"] is None

    # A helper module the op calls: the op runs again and serves the new value.
    write_app(work, scale="x * 100")
    commit(repo, "helper")
    helper = run_all(work, root)
    assert helper["status"]["scaled"] == "succeeded"
    assert helper["outputs"]["scaled"] == 300

    # A Source's iterator: 20 items now, and the task downstream is rebuilt from them.
    write_app(work, scale="x * 100", count=20)
    commit(repo, "more items")
    more = run_all(work, root)
    assert more["outputs"]["make_nums"]["objects"] == 20
    assert more["outputs"]["double"]["objects"] == 20
    assert more["outputs"]["double"]["version"] != first["outputs"]["double"]["version"]

    # A task's own code: rebuilt, with the new values.
    write_app(work, scale="x * 100", count=20, factor=3)
    commit(repo, "triple")
    tripled = run_all(work, root)
    # the digest covers the whole package: the Source beside it is rebuilt too
    assert tripled["outputs"]["make_nums"]["objects"] == 20
    assert tripled["outputs"]["double"]["objects"] == 20
    values = _values(root, tripled["outputs"]["double"]["ref"])
    assert values == {i: i * 3 for i in range(20)}

    # --no-cache forces everything, the tasks included: new versions, same data.
    forced = run_all(work, root, "--no-cache")
    assert forced["status"]["scaled"] == "succeeded"
    assert forced["outputs"]["make_nums"]["objects"] == 20
    assert forced["outputs"]["double"]["objects"] == 20
    assert forced["outputs"]["double"]["version"] != tripled["outputs"]["double"]["version"]


def _values(root: Path, ref: str) -> dict[int, int]:
    code = textwrap.dedent(
        f"""
        import json, sys
        from hypermodel.data import Dataset
        from codey.models import Num
        ds = Dataset(Num, {str(root)!r}, "codey", "main", {ref!r}, chunkCount=16)
        print(json.dumps({{n.numId: n.value for n in ds.open("r")}}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(root.parent / "work")},
        capture_output=True,
        text=True,
        check=True,
    )
    return {int(k): v for k, v in json.loads(out.stdout).items()}
