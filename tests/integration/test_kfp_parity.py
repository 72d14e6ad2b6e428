"""The compiled pipeline and `run-all` agree: every compiled container command is executed
locally, in dependency order, with the command, args and env the pod would get (placeholders
replaced as Kubeflow's launcher would), and the outputs and stored data equal run-all's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hypermodel.kubeflow import compile_pipeline
from tests.integration.demo_support import chunk_checksums, normalised, reference, stored
from tests.support import REPO, unavailable
from tests.unit.kubeflow.apps import make_app
from tests.unit.kubeflow.replay import Replayed, replay

KFP_RUN = "kfp-run-0001"


def hml_task(replayed: Replayed, kfp_task: str) -> str:
    argv = replayed.commands[kfp_task]
    return argv[argv.index("run") + 1]


def test_demo_compiled_commands_reproduce_run_all(tmp_path: Path) -> None:
    wines = shutil.which("wines", path=str(Path(sys.executable).parent))
    if wines is None:
        unavailable("the demo's console script `wines` is not installed (run `make venv`)")
    local_root, pod_root = tmp_path / "run-all", tmp_path / "pods"

    def cli(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [wines, "--root", str(root), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )

    ran = cli("pipelines", "wines", "run-all", "--quiet", root=local_root)
    assert ran.returncode == 0, ran.stderr
    (run_id,) = [p.name for p in (local_root / "runs").iterdir()]
    compiled = cli(
        "pipelines", "wines", "compile", "-o", str(tmp_path / "wines.yaml"), root=pod_root
    )
    assert compiled.returncode == 0, compiled.stderr
    assert (
        "pods will not share it" in compiled.stderr
    )  # a local root is only shared here, by the test

    # The image has the console script on PATH; here it lives in the virtualenv's bin folder.
    path = f"{Path(wines).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    out = replay(
        tmp_path / "wines.yaml",
        tmp_path,
        run_id=KFP_RUN,
        timeout=240,
        extra_env={"HML_ROOT": str(pod_root), "PATH": path},
        cwd=tmp_path,  # like a pod: no git checkout around the code
    )
    assert out.commands["train"][0] == "wines"
    assert {hml_task(out, t) for t in out.outputs} == {
        "load",
        "profile",
        "split",
        "train",
        "evaluate",
    }
    local_out = {
        hml_task(out, t): stored(local_root, run_id, hml_task(out, t)) for t in out.outputs
    }
    pod_out = {hml_task(out, t): v for t, v in out.outputs.items()}
    for task, value in pod_out.items():
        assert stored(pod_root, KFP_RUN, task) == value  # the pod stored what it published
        expected = normalised(local_out[task], run_id)
        got = normalised(value, KFP_RUN)
        assert got == expected, f"op {task}: compiled pipeline gave {got}, run-all gave {expected}"

    # Datasets: the same chunks, byte for byte (their .def differs only by creation time and run).
    local_split, pod_split = local_out["split"], pod_out["split"]
    for local_name, pod_name in [
        (local_out["load"]["name"], pod_out["load"]["name"]),
        (local_split["train"], pod_split["train"]),
        (local_split["test"], pod_split["test"]),
    ]:
        assert chunk_checksums(local_root, local_name) == chunk_checksums(pod_root, pod_name)
    # The model: the same bytes and distributions, trained on the same data.
    local_ref = reference(local_root, local_out["train"]["version"])
    pod_ref = reference(pod_root, pod_out["train"]["version"])
    for key in ("model_sha256", "distributions_sha256"):
        assert local_ref[key] == pod_ref[key]
    assert local_ref["datasets"] == [local_split["train_checksum"]]
    assert pod_ref["datasets"] == [pod_split["train_checksum"]]
    assert pod_ref["run_id"] == KFP_RUN and local_ref["run_id"] == run_id


@pytest.mark.parametrize("params", [{}, {"count": 4, "weight": 2.0, "strict": False}])
def test_typed_values_cross_the_command_line_like_run_all(
    tmp_path: Path, params: dict[str, Any]
) -> None:
    """bool switches, lists, dicts and floats survive the trip through placeholders and files."""
    root = tmp_path / "bucket"
    app = make_app(root=str(root))
    path = tmp_path / "scoring.yaml"
    compile_pipeline(app, "scoring", path)
    out = replay(
        path,
        tmp_path,
        params=params,
        run_id=KFP_RUN,
        extra_env={"HML_ROOT": str(root)},
        entrypoint=[sys.executable, "-m", "tests.unit.kubeflow.apps"],
        cwd=REPO,  # python -m imports the app from here, as a console script from site-packages
    )
    assert all(
        c[:3] == [sys.executable, "-m", "tests.unit.kubeflow.apps"] for c in out.commands.values()
    )
    local = app.pipelines.run_all("scoring", params, workers=0, cache=False).raise_for_failure()
    by_task = {hml_task(out, t): v for t, v in out.outputs.items()}
    assert by_task["score"].pop("kfp_task") == "task-score"  # the pod knows its Kubeflow task id
    assert local.outputs["score"].pop("kfp_task") is None
    assert by_task == local.outputs
    assert by_task["passed"] is True and by_task["cleanup"] == "clean"


def test_repo_root_is_the_working_directory_for_module_commands(tmp_path: Path) -> None:
    """The replays above run ``python -m tests.unit.kubeflow.apps`` with cwd=REPO: that module
    is importable from the repository root only, so they do not depend on where pytest was
    started (nor on an inherited PYTHONPATH)."""
    command = [sys.executable, "-m", "tests.unit.kubeflow.apps", "pipelines", "--help"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    elsewhere = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert elsewhere.returncode != 0 and "No module named 'tests'" in elsewhere.stderr
    at_root = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert at_root.returncode == 0, at_root.stderr
    assert "scoring" in at_root.stdout  # the test app's pipeline, from its own CLI
