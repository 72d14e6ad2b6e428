"""The tracking client's special artifacts: a TF model's weights, the current notebook."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import pytest

from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.run import Run
from hypermodel.tracking.store import RunStore
from tests.support import unavailable


def _tiny_model() -> Any:
    if importlib.util.find_spec("tensorflow") is None:
        unavailable("TensorFlow is not installed (pip install 'hypermodel[tf]')")
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input(shape=(3,)), tf.keras.layers.Dense(2)])
    model(tf.zeros((1, 3)))
    return model


def test_add_tf_model_as_artifact_saves_the_weights(storage: LocalStorage, tmp_path: Path) -> None:
    import tensorflow as tf

    model = _tiny_model()
    run = Run("weights", storage=storage)
    # the seed's call, and a step artifact
    assert run.add_tf_model_as_artifact(model, "model") == "model.weights.h5"
    assert run.add_tf_model_as_artifact(model, "best.weights.h5", step=3) == "best.weights.h5"
    run.close()
    store = RunStore(storage)
    record = store.load("weights")
    assert sorted(record.artifacts) == ["best.weights.h5@3", "model.weights.h5"]
    saved = tmp_path / "restored.weights.h5"
    saved.write_bytes(store.artifact_bytes(record, "model.weights.h5"))
    other = tf.keras.Sequential([tf.keras.Input(shape=(3,)), tf.keras.layers.Dense(2)])
    other(tf.zeros((1, 3)))
    other.load_weights(str(saved))
    for mine, theirs in zip(model.get_weights(), other.get_weights(), strict=True):
        assert (mine == theirs).all()


class _CheckpointModel:
    """A model whose save_weights writes several files (TensorFlow's checkpoint format)."""

    def save_weights(self, path: str) -> None:
        Path(f"{path}.index").write_bytes(b"index")
        Path(f"{path}.data-00000-of-00001").write_bytes(b"data")


def test_a_multi_file_save_is_zipped(storage: LocalStorage) -> None:
    run = Run("ckpt", storage=storage)
    assert run.add_tf_model_as_artifact(_CheckpointModel(), "ckpt") == "ckpt.zip"
    run.close()
    store = RunStore(storage)
    record = store.load("ckpt")
    names = zipfile.ZipFile(io.BytesIO(store.artifact_bytes(record, "ckpt.zip"))).namelist()
    assert sorted(names) == ["ckpt.data-00000-of-00001", "ckpt.index"]


def test_a_failing_save_is_logged_not_raised(
    storage: LocalStorage, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run("broken", storage=storage)
    with caplog.at_level(logging.WARNING, logger="hypermodel.tracking"):
        assert run.add_tf_model_as_artifact(object(), "m") is None
    run.close()
    assert "weights of object not recorded" in caplog.text


def _notebook(path: Path) -> Path:
    cells = [{"cell_type": "code", "source": "print(1)", "metadata": {}, "outputs": []}]
    path.write_text(json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_add_current_notebook_from_the_jupyter_kernel_env(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = _notebook(tmp_path / "explore.ipynb")
    monkeypatch.delenv("HML_NOTEBOOK", raising=False)
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))  # what Jupyter gives its kernels
    run = Run("nb", storage=storage)
    assert run.add_current_notebook() == "explore.ipynb"
    run.close()
    store = RunStore(storage)
    record = store.load("nb")
    assert store.artifact_bytes(record, "explore.ipynb") == notebook.read_bytes()


def test_add_current_notebook_explicit_and_outside_a_notebook(
    storage: LocalStorage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("HML_NOTEBOOK", raising=False)
    run = Run("nb2", storage=storage)
    with caplog.at_level(logging.WARNING, logger="hypermodel.tracking"):
        assert run.add_current_notebook() is None
    assert "not running in a notebook" in caplog.text
    monkeypatch.setenv("HML_NOTEBOOK", str(_notebook(tmp_path / "env.ipynb")))
    assert run.add_current_notebook() == "env.ipynb"
    assert run.add_current_notebook(_notebook(tmp_path / "given.ipynb")) == "given.ipynb"
    run.close()
    assert sorted(RunStore(storage).load("nb2").artifacts) == ["env.ipynb", "given.ipynb"]
