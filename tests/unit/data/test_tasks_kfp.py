"""A task compiles to a Kubeflow fan-out over its chunks plus a publish step; each pod's
command runs one chunk (``--step chunk:<id>``) through the app's own CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hypermodel import hml
from hypermodel.data.dataset import Dataset

from .test_tasks import REPO, Join, Label, LoadLabels, LoadNums, N, Num, Row

pytest.importorskip("kfp")


def make_app(root: Path) -> tuple[hml.HmlApp, Dataset]:
    app = hml.HmlApp("chunky", image_url="registry.example/chunky:1", root=str(root))
    nums = Dataset(Num, root, name="nums", repoData=REPO)
    labels = Dataset(Label, root, name="labels", repoData=REPO)
    rows = Dataset(Row, root, name="rows", repoData=REPO)

    @hml.pipeline(app.pipelines)
    def chunky() -> None:
        LoadNums(N, outputDataset=nums)()
        LoadLabels(outputDataset=labels)()
        Join([nums, labels], rows, loadedInputs=[labels], workers=4)()

    return app, rows


def test_task_compiles_to_parallel_for_and_publish(tmp_path: Path) -> None:
    from hypermodel.kubeflow import compile_pipeline

    app, _ = make_app(tmp_path)
    text = compile_pipeline(app, "chunky").yaml
    assert "comp-join-chunk" in text and "comp-join-publish" in text
    assert "parallelismLimit: 4" in text
    assert "chunk:0" in text and "chunk:f" in text
    assert "--step" in text and "publish" in text
    assert "comp-load-nums" in text  # a source runs in one pod


def test_cli_runs_one_chunk_then_publishes(tmp_path: Path) -> None:
    app, rows = make_app(tmp_path)
    runner = CliRunner()
    group = app.cli()
    for op in ("load_nums", "load_labels"):
        result = runner.invoke(group, ["pipelines", "chunky", "run", op])
        assert result.exit_code == 0, result.output
    for cid in rows.chunk_ids():
        result = runner.invoke(
            group, ["pipelines", "chunky", "run", "join", "--step", f"chunk:{cid}"]
        )
        assert result.exit_code == 0, result.output
        assert not rows.exists()
    result = runner.invoke(group, ["pipelines", "chunky", "run", "join", "--step", "publish"])
    assert result.exit_code == 0, result.output
    assert rows.exists() and sum(1 for _ in rows) == N - 1, result.output
