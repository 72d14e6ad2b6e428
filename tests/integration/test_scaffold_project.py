"""A generated project installs in a plain venv, and its own tests and run-all pass.

`hml new project`, then data models, tasks (source, one-to-one, one-to-many), a pipeline and a
TensorFlow model are generated into it; a fresh venv (no system site-packages, so a dependency
hypermodel forgot to declare shows up here) gets `pip install -e <repo> -e <project>[test]`;
then the project's pytest and `<app> pipelines ... run-all` run in that venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import unavailable

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STEPS = [
    ["project", "ShopDemo"],
    ["data-model", "Item", "itemId:int:id", "price:float", "name:str", "added:datetime"],
    ["data-model", "Basket", "basketId:int:id", "items:List[Item]", "days:List[date]"],
    ["data-model", "Total", "itemId:int:id", "total:float"],
    ["data-model", "Score", "itemId:int:id", "score:float"],
    ["task", "LoadItems", "Item", "--source"],
    ["task", "CleanItems", "Item", "--one-to-one"],
    ["task", "SumItems", "Total", "--one-to-many", "--input", "Item"],
    ["task", "JoinTotals", "Score", "--input", "Item", "--input", "Total"],
    ["pipeline", "Shop", "LoadItems", "CleanItems", "SumItems", "JoinTotals", "Item"],
    ["model", "PriceModel", "Item", "Score", "--block", "Dense"],
]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    )
    return out.stdout


def test_generated_project_installs_tests_and_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HML_", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    hml = str(Path(sys.executable).parent / "hml")
    _run([hml, "new", *STEPS[0], "--directory", str(tmp_path)], tmp_path, env, 60)
    project = tmp_path / "shop_demo"
    for step in STEPS[1:]:
        _run([hml, "new", *step], project, env, 60)

    # the generated code is formatted and lint-clean (with the project's own ruff settings)
    _run([sys.executable, "-m", "ruff", "format", "--check", "."], project, env, 60)
    _run([sys.executable, "-m", "ruff", "check", "--select", "E,F,W,I,B,UP", "."], project, env, 60)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env, 120)
    pip = subprocess.run(
        # the project alone: its pyproject names the checkout hml was installed from, so it
        # installs with no index serving hypermodel (the index's "hypermodel" is another one)
        [str(venv / "bin/pip"), "install", "-q", "-e", f"{project}[test]"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if pip.returncode != 0:
        unavailable(f"pip could not install the generated project: {pip.stderr[-2000:]}")

    env["HML_ROOT"] = str(tmp_path / "bucket")
    tests = _run([str(venv / "bin/pytest"), "-q", "-p", "no:cacheprovider"], project, env, 240)
    assert " passed" in tests and "failed" not in tests
    # the model's test skips without TensorFlow; everything else ran
    assert "1 skipped" in tests

    output = _run([str(venv / "bin/shop-demo"), "pipelines", "shop", "run-all"], project, env, 240)
    assert "join_totals" in output
    bucket = tmp_path / "bucket/shop_demo"
    for dataset in ("items", "clean_items_items", "totals", "scores"):
        # written in a pipeline run: one version each, Hypergol's layout under main@<version>
        (chk,) = bucket.glob(f"main@*/{dataset}/{dataset}.chk")
        assert chk.is_file(), dataset
    # twice in a row: no renames, no --force; equal outputs are reused, not rewritten
    again = _run([str(venv / "bin/shop-demo"), "pipelines", "shop", "run-all"], project, env, 240)
    assert "join_totals" in again
    for dataset in ("items", "clean_items_items", "totals", "scores"):
        assert len(list(bucket.glob(f"main@*/{dataset}/{dataset}.chk"))) == 1, dataset
    demo = _run([str(venv / "bin/shop-demo"), "pipelines", "demo", "run-all"], project, env, 120)
    assert "HELLO WORLD" in demo
