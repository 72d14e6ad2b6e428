"""``hml runs`` and ``hml artifacts`` against a bucket filled by a real pipeline run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hypermodel.cli.hml_cli import build_hml_cli
from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.run import Run

from .ops_fixture import app


@pytest.fixture
def filled(hml_root: Path) -> dict[str, str]:
    app.configure(root=str(hml_root))
    ok1 = app.pipelines.run_all("ok_pipe", {"scale": 2.0}, workers=0).run_id
    ok2 = app.pipelines.run_all("ok_pipe", {"scale": 5.0}, workers=0).run_id
    bad = app.pipelines.run_all("bad_pipe", workers=0).run_id
    return {"ok1": ok1, "ok2": ok2, "bad": bad, "root": str(hml_root)}


def hml(root: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_hml_cli(), ["--root", root, *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_runs_list_and_filters(filled: dict[str, str]) -> None:
    code, out = hml(filled["root"], "runs", "list")
    assert code == 0
    assert f"{filled['ok1']}.make" in out and f"{filled['bad']}.boom" in out
    code, out = hml(filled["root"], "runs", "list", "--state", "failed")
    assert code == 0 and out.count("\n") == 2 and f"{filled['bad']}.boom" in out
    code, out = hml(filled["root"], "runs", "list", "--pipeline", "bad_pipe")
    assert "ok_pipe" not in out and "bad_pipe/make" in out
    code, out = hml(filled["root"], "runs", "list", "--state", "stopped")
    assert "matching the filters" in out


def test_runs_show(filled: dict[str, str]) -> None:
    code, out = hml(filled["root"], "runs", "show", f"{filled['ok1']}.total")
    assert code == 0
    assert "state     completed" in out
    assert "scale = 2" in out and "output/total = 12" in out
    assert "output.json" in out
    code, out = hml(filled["root"], "runs", "show", f"{filled['bad']}.boom")
    assert "failed  (ValueError: boom on 2 values)" in out


def test_runs_compare_marks_differences(filled: dict[str, str]) -> None:
    code, out = hml(
        filled["root"], "runs", "compare", f"{filled['ok1']}.total", f"{filled['ok2']}.total"
    )
    assert code == 0
    lines = {
        line.split()[1] if line.startswith("*") else line.split()[0]: line
        for line in out.splitlines()[1:]
    }
    assert lines["scale"].startswith("*") and "2" in lines["scale"] and "5" in lines["scale"]
    assert not lines["values"].startswith("*")


def test_runs_report_writes_html(filled: dict[str, str], tmp_path: Path) -> None:
    out_file = tmp_path / "r.html"
    code, out = hml(
        filled["root"], "runs", "report", filled["ok1"], filled["ok2"], "-o", str(out_file)
    )
    assert code == 0 and "4 run(s)" in out
    page = out_file.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page


def test_unknown_run_is_a_one_line_error(filled: dict[str, str]) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from hypermodel.cli.hml_cli import main; main()",
            "--root",
            filled["root"],
            "runs",
            "show",
            "nope",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"error: no tracked run matches 'nope' under file://{filled['root']} (see `hml runs list`)"
    )


def test_artifacts_push_list_pull(hml_root: Path, tmp_path: Path) -> None:
    root = str(hml_root)
    f = tmp_path / "labels.txt"
    f.write_text("a,b")
    d = tmp_path / "vocab"
    d.mkdir()
    (d / "v.txt").write_text("x")
    assert hml(root, "artifacts", "push", str(f))[0] == 0
    assert hml(root, "artifacts", "push", str(d), "--project", "wines")[0] == 0
    code, out = hml(root, "artifacts", "list")
    assert code == 0 and "labels.txt" in out and "vocab.zip" not in out
    code, out = hml(root, "artifacts", "list", "--project", "wines")
    assert "vocab.zip" in out
    code, out = hml(root, "artifacts", "pull", "labels.txt", "-o", str(tmp_path / "got.txt"))
    assert code == 0 and (tmp_path / "got.txt").read_text() == "a,b"
    # a run's shared artifact is what the CLI pulls
    Run("r", storage=LocalStorage(hml_root), project="wines").add_shared_artifact(
        f, name="from-run.txt"
    )
    out_dir = tmp_path / "dl"
    out_dir.mkdir()
    assert (
        hml(root, "artifacts", "pull", "from-run.txt", "--project", "wines", "-o", str(out_dir))[0]
        == 0
    )
    assert (out_dir / "from-run.txt").read_text() == "a,b"


def test_artifacts_refuse_unsafe_names(hml_root: Path, tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_text("x")
    result = CliRunner().invoke(
        build_hml_cli(), ["--root", str(hml_root), "artifacts", "push", str(f), "--name", "../evil"]
    )
    assert result.exit_code != 0
    assert not (hml_root / "tracking" / "projects" / "evil").exists()
