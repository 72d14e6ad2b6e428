"""Every example of the tracking-client documentation (pyhectiqlab's README), ported.

The imports change (``from pyhectiqlab.run import Run`` becomes ``from
hypermodel.tracking.run import Run``; ``from pyhectiqlab import Config`` becomes ``from
hypermodel.tracking import Config``); the snippet text is kept. Where the client talks to its
server, the run lives in a local bucket (``$HML_ROOT``) and the results are read back from it.

Counts (21 snippets in the README):

- snippets total: 21
- run with imports changed only: 14 -- the run, metrics, artifacts (run, step, shared), models
  and datasets (upload, download), Config, add_config, repo state, states, logs, note and
  meta, tags
- need more than imports: 4 -- the zip/TensorFlow/notebook artifacts (the notebook is named by
  ``$HML_NOTEBOOK``, no notebook runs here), ``add_package_versions(globals())`` (called inside
  a test function: its imports are passed), ``hectiqlab artifacts`` and ``hectiqlab
  post_artifact`` (``hml artifacts list/pull/push``)
- cannot run: 3 -- ``hectiqlab add-profile`` (twice) and ``hectiqlab projects``: there is no
  server to log in to
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.store import RunStore
from tests.support import free_port, git_repo, require_module

HML = str(Path(sys.executable).parent / "hml")


@pytest.fixture(autouse=True)
def _author(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HML_AUTHOR", "alice@example.org")
    monkeypatch.delenv("HML_PROJECT", raising=False)


def recorded(root: Path, name: str) -> Any:
    return RunStore(LocalStorage(root)).load(name)


# -- Quickstart ------------------------------------------------------------------------------------
def test_quickstart_creates_then_attaches(hml_root: Path) -> None:
    from hypermodel.tracking.run import Run  # was: from pyhectiqlab.run import Run

    run = Run(name="dev-run")
    assert run.created and not run.read_only and not run.dry
    run.close()
    # "If a run already exists, the data will be pushed in the existing run."
    again = Run(name="dev-run")
    assert not again.created and not again.read_only
    again.close()
    assert (hml_root / "tracking/runs/dev-run/run.json").is_file()


def test_attaching_to_someone_elses_run_is_read_only(
    hml_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypermodel.tracking.run import ReadOnlyRunError, Run

    Run(name="dev-run").close()
    monkeypatch.setenv("HML_AUTHOR", "bob@example.org")
    run = Run(name="dev-run")
    assert run.read_only
    with pytest.raises(ReadOnlyRunError, match=r"alice@example\.org"):
        run.add_metrics(key="train/loss", value=0.982, step=10)


# -- Metrics -----------------------------------------------------------------------------------------
def test_metrics(hml_root: Path) -> None:
    from hypermodel.tracking.run import Run

    run = Run(name="dev-run")
    run.set_metrics_cache_settings(flush_size=100, interval=1)
    # Push a metrics
    run.add_metrics(key="train/loss", value=0.982, step=10)
    run.close()
    assert recorded(hml_root, "dev-run").metrics["train/loss"][0][:2] == (10, 0.982)


# -- Save artifacts ------------------------------------------------------------------------------------
def test_run_step_and_shared_artifacts(hml_root: Path, tmp_path: Path) -> None:
    from hypermodel.tracking.run import Run

    run = Run(name="dev-run")
    path_to_artifact = tmp_path / "plot.png"
    path_to_artifact.write_bytes(b"\x89PNG first")
    # Run artifact. Overwrite if a file with the same name exists
    run.add_artifact(path_to_artifact)
    path_to_artifact.write_bytes(b"\x89PNG second")
    run.add_artifact(path_to_artifact)

    step = 5  # example is an integer
    # Overwrite if an artifact with this name at this step exists
    run.add_artifact(path_to_artifact, step=step)
    # (./data/test.png, step=0) and (./data2/test.png, step=1) are grouped under test.png
    for folder, k in (("data", 0), ("data2", 1)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "test.png").write_bytes(f"step {k}".encode())
        run.add_artifact(tmp_path / folder / "test.png", step=k)

    # Overwrite if a file with the same name exists
    run.add_shared_artifact(path_to_artifact)
    run.close()

    runs = hml_root / "tracking/runs/dev-run/artifacts"
    assert (runs / "plot.png").read_bytes() == b"\x89PNG second"
    assert (runs / "step-5/plot.png").read_bytes() == b"\x89PNG second"
    assert (runs / "step-0/test.png").read_bytes() == b"step 0"
    assert (runs / "step-1/test.png").read_bytes() == b"step 1"
    shared = hml_root / "tracking/projects/default/artifacts/plot.png"
    assert shared.read_bytes() == b"\x89PNG second"
    assert {"plot.png", "plot.png@5", "test.png@0", "test.png@1"} <= set(
        recorded(hml_root, "dev-run").artifacts
    )


def test_special_artifacts(hml_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hypermodel.tracking.run import Run

    tf = require_module("tensorflow")
    run = Run(name="dev-run")
    dirpath = tmp_path / "logs"
    (dirpath / "sub").mkdir(parents=True)
    (dirpath / "sub" / "events.txt").write_text("epoch 1\n")
    # Compress a directory into zip and save it as an artifact
    run.add_directory_as_zip_artifact(dirpath)  # You can add the step argument for step artifacts

    model = tf.keras.Sequential([tf.keras.Input(shape=(3,)), tf.keras.layers.Dense(2)])
    filename = "model"
    # Add a tensor flow model. It will run save_weights
    run.add_tf_model_as_artifact(
        model, filename
    )  # You can add the step argument for step artifacts

    # Add your notebook if the code is run from a notebook (here: the notebook Jupyter names)
    notebook = tmp_path / "train.ipynb"
    notebook.write_text('{"cells": [], "nbformat": 4}')
    monkeypatch.setenv("HML_NOTEBOOK", str(notebook))
    run.add_current_notebook()
    run.close()

    artifacts = hml_root / "tracking/runs/dev-run/artifacts"
    with zipfile.ZipFile(artifacts / "logs.zip") as zipped:
        assert zipped.read("sub/events.txt") == b"epoch 1\n"
    weights = artifacts / "model.weights.h5"  # Keras 3 names weights files so
    assert weights.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    assert (artifacts / "train.ipynb").read_text() == notebook.read_text()


# -- MLModel and Datasets ------------------------------------------------------------------------------
def test_mlmodel_and_dataset_upload_and_download(
    hml_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypermodel.tracking.run import Run

    monkeypatch.chdir(tmp_path)
    Path("path/to/model").mkdir(parents=True)
    Path("path/to/model/weights.bin").write_bytes(b"vgg11")
    Path("path/to/dataset").mkdir(parents=True)
    Path("path/to/dataset/train.csv").write_text("image,label\n")
    run = Run(name="dev-run")

    run.add_mlmodel('./path/to/model/',
            name='test-model',
            version='1.0.0',
            short_description='A VGG11 trained on ImageNet.')  # fmt: skip

    run.add_dataset('./path/to/dataset/',
            name='train-imagenet',
            version='1.0.0',
            short_description='The train images of ImageNet')  # fmt: skip

    Path("downloads").mkdir()
    os.chdir("downloads")
    run.download_mlmodel(name='test-model',
            version='1.0.0',
            save_path="./")  # fmt: skip

    run.download_dataset(name='train-imagenet',
            version='1.0.0',
            save_path="./")  # fmt: skip
    run.close()

    assert Path("test-model-1.0.0/weights.bin").read_bytes() == b"vgg11"
    assert Path("train-imagenet-1.0.0/train.csv").read_text() == "image,label\n"
    record = recorded(hml_root, "dev-run")
    assert {o["name"] for o in record.outputs} == {"test-model", "train-imagenet"}


# -- Config ------------------------------------------------------------------------------------------
def test_config_nested_and_pushed(hml_root: Path) -> None:
    from hypermodel.tracking import Config  # was: from pyhectiqlab import Config
    from hypermodel.tracking.run import Run

    def model(path: str, b: int) -> tuple[str, int]:
        return path, b

    nested_config = Config(path="./here", b=1)
    config = Config(hello="world", a=nested_config)

    # Use the nested values
    assert config.a.path == "./here"

    # Use as a dict
    assert model(**config.a) == ("./here", 1)

    run = Run(name="dev-run")
    run.add_config(config)
    run.add_config(Config(extra=2))  # "it will add the unseen elements"
    run.close()
    assert recorded(hml_root, "dev-run").config == {
        "hello": "world",
        "a": {"path": "./here", "b": 1},
        "extra": 2,
    }


# -- Package versions, external git repos ----------------------------------------------------------------
def test_package_versions(hml_root: Path) -> None:
    from hypermodel.tracking.run import Run

    run = Run(name="dev-run")
    import numpy as np
    import torch

    run.add_package_versions(globals() | {"torch": torch, "np": np})
    run.close()
    record = recorded(hml_root, "dev-run")
    assert record.packages["torch"] == torch.__version__
    assert record.packages["numpy"] == np.__version__
    assert record.machine["python"]


def test_package_repo_state(
    hml_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypermodel.tracking.run import Run

    # 'voxnet' stands for any package of the user's that lives in a git work tree
    (tmp_path / "src/voxnet").mkdir(parents=True)
    repo = git_repo(tmp_path / "src", {"voxnet/__init__.py": "VALUE = 1\n"}, branch="dev")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    import voxnet  # noqa: F401

    run = Run(name="dev-run")
    run.add_package_repo_state("voxnet")
    # It will check if voxnet.__path__ is in a git repo. If so, the commit/branch/source is stored.
    run.close()
    sys.modules.pop("voxnet", None)
    state = recorded(hml_root, "dev-run").git["voxnet"]
    assert state["commit"] == repo.head.commit.hexsha
    assert state["branch"] == "dev"


# -- States --------------------------------------------------------------------------------------------
def test_states(hml_root: Path) -> None:
    from hypermodel.tracking.run import Run

    run = Run(name="dev-run")
    run.completed()
    run.failed()
    run.completed()
    run.pending()
    run.running()
    run.training()
    run.close()
    states = [s["state"] for s in recorded(hml_root, "dev-run").states]
    assert states[:6] == ["completed", "failed", "completed", "pending", "running", "training"]


# -- Logs ------------------------------------------------------------------------------------------------
def test_logs_as_written(hml_root: Path) -> None:
    from hypermodel.tracking.run import Run

    run = Run(name="dev-run")
    logger = run.start_recording_logs()
    logger.info("test")
    logger.stop_recording_logs()
    logger.critical("This will not be logged.")
    run.start_recording_logs()
    logger.info("This will be logged.")
    run.stop_recording_logs()
    run.close()
    text = RunStore(LocalStorage(hml_root)).logs("dev-run")
    assert "test\n" in text and "This will be logged." in text
    assert "This will not be logged." not in text


def test_logs(hml_root: Path) -> None:
    from hypermodel.tracking.run import Run

    run = Run(name="dev-run")
    logger = run.start_recording_logs()
    logger.info("test")
    run.stop_recording_logs()  # the run stops it too (test_logs_as_written: the logger)
    logger.critical("This will not be logged.")
    run.start_recording_logs()
    logger.info("This will be logged.")
    run.stop_recording_logs()

    # Check a specify channel. It will log everything that goes through torch.
    logger = run.start_recording_logs("torch")

    # To log: "Progress ----------"
    logger.info("Progress \r")
    for _i in range(10):
        logger.info("-\r")
    logging.getLogger("torch.nn").info("from a child logger")
    run.stop_recording_logs("torch")
    run.close()
    text = RunStore(LocalStorage(hml_root)).logs("dev-run")
    assert "test\n" in text and "This will be logged.\n" in text
    assert "This will not be logged." not in text
    # a message ending with '\r' cancels its line break: the pieces read as one line, with one
    # time/level/logger prefix
    (progress,) = [line for line in text.splitlines() if "Progress" in line]
    assert progress.endswith("INFO torch: Progress ----------from a child logger")
    assert progress.count("torch") == 1
    assert "from a child logger" in text


# -- Others, tags ------------------------------------------------------------------------------------------
def test_note_meta_and_tags(hml_root: Path) -> None:
    from hypermodel.tracking.run import Run

    run = Run(name="dev-run")
    run.set_note("This is a short description that will be featured on the tab General of the run.")
    run.add_meta(key="hello", value="world")
    # You can specify the colour (hex)
    # If a tag with this name exists, it will simply attach it to the run
    run.add_tag(name="Train", description=None, color=None)
    run.add_tag(name="Train", description=None, color=None)
    run.close()
    record = recorded(hml_root, "dev-run")
    assert record.notes == [
        "This is a short description that will be featured on the tab General of the run."
    ]
    assert record.metas == {"hello": "world"}
    assert record.tags == [{"name": "Train", "description": None, "color": None}]


# -- Shell -------------------------------------------------------------------------------------------------
def hml(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [HML, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return out


def test_shell_shared_artifacts(hml_root: Path, tmp_path: Path) -> None:
    """``hectiqlab post_artifact [project_Id] [filename]`` is ``hml artifacts push FILENAME
    --project P``; ``hectiqlab artifacts [project_Id]`` is ``hml artifacts list/pull``. There
    is no login (``hectiqlab add-profile``): the bucket is the app's ($HML_ROOT, ``--root``)."""
    labels = tmp_path / "labels.json"
    labels.write_text('["red", "white"]')
    hml("artifacts", "push", str(labels), "--project", "wines", cwd=tmp_path)
    listed = hml("artifacts", "list", "--project", "wines", cwd=tmp_path).stdout
    assert "labels.json" in listed
    out = tmp_path / "pulled"
    out.mkdir()
    hml(
        "artifacts",
        "pull",
        "labels.json",
        "--project",
        "wines",
        "-o",
        str(out / "l.json"),
        cwd=tmp_path,
    )
    assert (out / "l.json").read_text() == '["red", "white"]'


# -- FAQ: dry mode -------------------------------------------------------------------------------------------
def test_dry_mode_when_the_bucket_is_down(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's stand-in is the bucket: an S3 endpoint nothing listens on."""
    require_module("s3fs")
    from hypermodel.tracking.run import Run

    monkeypatch.setenv("HML_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with caplog.at_level(logging.WARNING):
        run = Run(name="dev-run", root="s3://lab-is-down/ml")
    assert run.dry and "dry mode" in caplog.text
    # you can call all run methods without errors but the data won't be pushed
    run.add_metrics(key="train/loss", value=0.982, step=10)
    run.set_note("ignored")
    run.completed()
    run.close()
