"""``hml runs list|show --format json``, ``--limit``, newest first, and tables that cut long
values only in a terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hypermodel.cli import output
from hypermodel.cli.errors import run_cli
from hypermodel.cli.hml_cli import build_hml_cli
from hypermodel.storage.local import LocalStorage
from hypermodel.tracking import run as run_module
from hypermodel.tracking.run import Run

from .ops_fixture import app

LONG = "long-" + "x" * 150


def hml(root: Path | str, *args: str) -> Any:
    return CliRunner().invoke(build_hml_cli(), ["--root", str(root), *args], catch_exceptions=False)


def stdout_json(root: Path | str, *args: str) -> Any:
    result = hml(root, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def make_run(
    root: Path, name: str, created: float, monkeypatch: pytest.MonkeyPatch, loss: float = 0.25
) -> None:
    monkeypatch.setattr(run_module, "_time", lambda: created)
    run = Run(name, storage=LocalStorage(root), project="wines")
    run.add_params({"lr": 0.1})
    run.add_metrics("loss", 0.5, 1)
    run.add_metrics("loss", loss, 2)
    run.completed()
    run.close()


@pytest.fixture
def three(hml_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three runs whose names sort neither oldest nor newest first."""
    make_run(hml_root, "c-old", 1_000.0, monkeypatch)
    make_run(hml_root, "a-mid", 2_000.0, monkeypatch)
    make_run(hml_root, "b-new", 3_000.0, monkeypatch, loss=0.125)
    monkeypatch.undo()
    return hml_root


def test_list_json_is_newest_first_with_every_summary_field(three: Path) -> None:
    runs = stdout_json(three, "runs", "list", "--format", "json")
    assert [r["id"] for r in runs] == ["b-new", "a-mid", "c-old"]
    newest = runs[0]
    assert newest == {
        "id": "b-new",
        "name": "b-new",
        "project": "wines",
        "pipeline": None,
        "task": None,
        "pipeline_run_id": None,
        "author": "alice@example.org",
        "state": "completed",
        "error": None,
        "started": "1970-01-01T00:50:00Z",
        "finished": "1970-01-01T00:50:00Z",
        "duration": None,
        "metrics": {"loss": 0.125},
    }


def test_list_limit_keeps_the_newest(three: Path) -> None:
    runs = stdout_json(three, "runs", "list", "--format", "json", "--limit", "2")
    assert [r["id"] for r in runs] == ["b-new", "a-mid"]
    assert [r["id"] for r in stdout_json(three, "runs", "list", "--format=json", "--limit=1")] == [
        "b-new"
    ]
    table = hml(three, "runs", "list", "--limit", "2").stdout.splitlines()
    assert table[0].startswith("RUN") and len(table) == 3
    assert table[1].startswith("b-new") and table[2].startswith("a-mid")


def test_table_is_newest_first_too(three: Path) -> None:
    lines = hml(three, "runs", "list").stdout.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["b-new", "a-mid", "c-old"]


def test_empty_store_gives_an_empty_json_list(hml_root: Path) -> None:
    assert stdout_json(hml_root, "runs", "list", "--format", "json") == []
    assert stdout_json(hml_root, "runs", "list", "--format", "json", "--state", "failed") == []
    assert "no tracked runs" in hml(hml_root, "runs", "list").stdout


def test_list_json_of_pipeline_runs_with_filters(hml_root: Path) -> None:
    app.configure(root=str(hml_root))
    ok = app.pipelines.run_all("ok_pipe", {"scale": 2.0}, workers=0).run_id
    bad = app.pipelines.run_all("bad_pipe", workers=0).run_id
    runs = stdout_json(hml_root, "runs", "list", "--format", "json")
    assert {r["id"] for r in runs} == {f"{ok}.make", f"{ok}.total", f"{bad}.make", f"{bad}.boom"}
    started = [r["started"] for r in runs]
    assert started == sorted(started, reverse=True)
    failed = stdout_json(hml_root, "runs", "list", "--format", "json", "--state", "failed")
    assert [r["id"] for r in failed] == [f"{bad}.boom"]
    (boom,) = failed
    assert boom["name"] == "bad_pipe/boom" and boom["pipeline"] == "bad_pipe"
    assert boom["pipeline_run_id"] == bad and "boom on 2 values" in boom["error"]
    assert boom["finished"] is not None and boom["duration"] >= 0
    (total,) = stdout_json(hml_root, "runs", "list", "--format", "json", "--pipeline", "ok_pipe")[
        :1
    ]
    assert total["id"] == f"{ok}.total"
    assert total["metrics"] == {"output/total": 12.0, "output/count": 4.0}


def test_show_json_is_the_whole_run(three: Path) -> None:
    run = stdout_json(three, "runs", "show", "b-new", "--format", "json")
    assert isinstance(run, dict) and run["id"] == "b-new"
    assert run["params"] == {"lr": 0.1}
    assert run["metrics"] == {"loss": 0.125}
    assert [p["value"] for p in run["metric_history"]["loss"]] == [0.5, 0.125]
    assert [p["step"] for p in run["metric_history"]["loss"]] == [1, 2]
    assert [s["state"] for s in run["states"]] == ["completed"]
    assert run["meta"]["author"] == "alice@example.org"
    for key in ("config", "tags", "notes", "artifacts", "inputs", "outputs", "git", "writers"):
        assert key in run


def test_show_json_of_a_pipeline_run_is_a_list(hml_root: Path) -> None:
    app.configure(root=str(hml_root))
    ok = app.pipelines.run_all("ok_pipe", {"scale": 5.0}, workers=0).run_id
    runs = stdout_json(hml_root, "runs", "show", ok, "--format", "json")
    assert [r["id"] for r in runs] == [f"{ok}.make", f"{ok}.total"]
    assert runs[1]["params"]["scale"] == 5.0 and runs[1]["config"]["scale"] == 5.0


def test_an_unreadable_run_is_a_warning_on_stderr_only(three: Path) -> None:
    (three / "tracking/runs/torn").mkdir()
    (three / "tracking/runs/torn/run.json").write_text('{"created": ')
    result = hml(three, "runs", "list", "--format", "json")
    assert result.exit_code == 0
    assert [r["id"] for r in json.loads(result.stdout)] == ["b-new", "a-mid", "c-old"]
    assert "warning: run torn skipped" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "list", "--limit", "0"),
        ("runs", "list", "--limit", "-1"),
        ("runs", "list", "--limit=-5", "--format", "json"),
        ("runs", "list", "--limit", "ten"),
        ("runs", "list", "--format", "yaml"),
        ("runs", "show", "b-new", "--format", "xml"),
    ],
)
def test_bad_limit_or_format_is_a_one_line_usage_error(
    three: Path, args: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(build_hml_cli(), ["--root", str(three), *args], prog_name="hml")
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err and err.startswith("error: hml runs ")
    option = "--limit" if "--limit" in " ".join(args) else "--format"
    assert f"'{option}'" in err
    if option == "--limit":
        assert "1 or more" in err


def test_long_values_are_never_cut_outside_a_terminal(
    hml_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_run(hml_root, LONG, 1_000.0, monkeypatch)
    monkeypatch.undo()
    out = hml(hml_root, "runs", "list").stdout
    assert LONG in out and "…" not in out


def test_tables_fit_a_terminal(hml_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_run(hml_root, LONG, 1_000.0, monkeypatch)
    make_run(hml_root, "short", 2_000.0, monkeypatch)
    monkeypatch.undo()
    monkeypatch.setattr(output, "is_terminal", lambda: True)
    monkeypatch.setattr(output, "terminal_width", lambda: 80)
    lines = hml(hml_root, "runs", "list").stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split() == [
        "RUN",
        "STATE",
        "PIPELINE/OP",
        "AUTHOR",
        "STARTED",
        "(UTC)",
        "DURATION",
    ]
    assert lines[1].startswith("short ")
    assert lines[2].startswith("long-xxx") and "…" in lines[2] and LONG not in lines[2]
    # JSON is never cut, terminal or not
    runs = stdout_json(hml_root, "runs", "list", "--format", "json")
    assert runs[1]["id"] == LONG
