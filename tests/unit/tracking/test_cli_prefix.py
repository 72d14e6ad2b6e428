"""``hml runs show/compare/report`` never pick one of several runs a prefix matches."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypermodel.cli.errors import run_cli
from hypermodel.cli.hml_cli import build_hml_cli
from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.run import Run


def _hml(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        run_cli(build_hml_cli(), ["--root", str(root), *args], "hml")
    captured = capsys.readouterr()
    return int(exit_.value.code or 0), captured.out, captured.err


@pytest.fixture
def root(hml_root: Path) -> Path:
    storage = LocalStorage(hml_root)
    for name in ("wine-a", "wine-b", "water", "other", "exp.1", "exp.2"):
        Run(name, storage=storage, project="p").close()
    # op runs, as the runner names them: <pipeline run id>.<task> (a pipeline name may hold '.')
    for pipeline_run, task in [
        ("pipe-1", "train"),
        ("pipe-1", "eval"),
        ("v1.2-20260101-aaa", "train"),
        ("v1.2-20260102-bbb", "train"),
    ]:
        extra = {"pipeline_run_id": pipeline_run, "task": task, "pipeline": "p"}
        Run._create(f"{pipeline_run}.{task}", "p", storage, extra, owned=True).close()
    return hml_root


@pytest.mark.parametrize(
    ("prefix", "candidates"),
    [
        ("w", ["wine-a", "wine-b", "water"]),
        ("wine-", ["wine-a", "wine-b"]),
        ("wi", ["wine-a", "wine-b"]),
        ("v1", ["v1.2-20260101-aaa", "v1.2-20260102-bbb"]),  # two pipeline runs
        ("exp", ["exp.1", "exp.2"]),  # two runs, not the op runs of one pipeline run
    ],
)
def test_an_ambiguous_prefix_lists_the_candidates(
    root: Path, capsys: pytest.CaptureFixture[str], prefix: str, candidates: list[str]
) -> None:
    for command in (["show"], ["show", "--format", "json"], ["compare", "other"]):
        code, out, err = _hml(capsys, root, "runs", *command, prefix)
        assert code == 2 and out == ""
        assert len(err.strip().splitlines()) == 1, err
        assert f"'{prefix}' is ambiguous" in err
        assert all(c in err for c in candidates), err


def test_an_empty_run_name_is_a_usage_error(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("", " "):
        code, out, err = _hml(capsys, root, "runs", "show", name)
        assert code == 2 and out == "" and "run id" in err and "required" in err


def test_unique_prefixes_exact_ids_and_pipeline_runs_still_resolve(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _hml(capsys, root, "runs", "show", "wine-a")
    assert code == 0 and "run       wine-a" in out
    code, out, _ = _hml(capsys, root, "runs", "show", "wa")  # unique: water
    assert code == 0 and "run       water" in out
    code, out, _ = _hml(capsys, root, "runs", "show", "pipe-1")  # a pipeline run: its op runs
    assert code == 0 and "pipe-1.train" in out and "pipe-1.eval" in out
    code, out, _ = _hml(capsys, root, "runs", "show", "pip")  # one pipeline run's op runs
    assert code == 0 and "pipe-1.train" in out and "pipe-1.eval" in out
    code, out, _ = _hml(capsys, root, "runs", "show", "v1.2-20260101")
    assert code == 0 and "v1.2-20260101-aaa.train" in out and "bbb" not in out
