"""A trained TensorFlow model in the store: published with the common schema and its last
losses as metrics, promoted, fetched by alias, its lineage walked to the training dataset."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from hypermodel import hml
from hypermodel.models import ModelStore
from hypermodel.storage import open_storage

from ...support import require_module


@pytest.fixture(scope="module")
def ex() -> ModuleType:
    require_module("tensorflow")
    from tests.unit.tf import example

    return example


def test_train_publish_promote_and_fetch_by_alias(tmp_path: Path, ex: ModuleType) -> None:
    import tensorflow as tf

    from hypermodel.tf import TensorflowModelContainer, TensorflowModelManager
    from hypermodel.tf.publish import fetch_export

    root = tmp_path / "bucket"
    train = hml.Dataset(ex.Reading, location=str(root), name="readings")
    test = hml.Dataset(ex.Reading, location=str(root), name="readings_test")
    for dataset, rows in ((train, ex.readings(32)), (test, ex.readings(8, 1000))):
        with dataset.open("w") as writer:
            for row in rows:
                writer.append(row)
    manager = TensorflowModelManager(
        model=ex.Scorer(ex.Hidden(4)),
        optimizer=tf.keras.optimizers.Adam(0.05),
        batchProcessor=ex.ScorerBatchProcessor(
            trainingData=train, evaluationData=test, batchSize=16, shuffleSeed=3
        ),
        directory=tmp_path / "model",
        commit="abc123",
    )
    history = manager.run(epochs=1)
    export = manager.export(tmp_path / "export")
    assert manager.lastMetrics == {
        "train_loss": history["train_loss"][-1],
        "evaluation_loss": history["evaluation_loss"][-1],
    }

    storage = open_storage(str(root))
    container = TensorflowModelContainer("scorer", ex.ScorerBatchProcessor())
    container.publish(export, storage, version="v1")
    stored = json.loads(storage.read_bytes("models/scorer/v1/reference.json"))
    assert stored["kind"] == "tensorflow" and stored["model_file"] == "saved_model.tar"
    assert set(stored["metrics"]) == {"train_loss", "evaluation_loss"}
    assert all(math.isfinite(v) for v in stored["metrics"].values())
    assert stored["commit"] == "abc123" and stored["long_name"] == manager.longName

    store = ModelStore(storage)
    store.set_alias("scorer", "production", "v1")
    path, reference = fetch_export(storage, "scorer", "production")
    assert (path / "saved_model.pb").is_file() and reference["version"] == "v1"
    served = TensorflowModelContainer("scorer", ex.ScorerBatchProcessor())
    served.load("production", storage)
    assert served.reference is not None and served.reference.version == "v1"
    assert len(served.predict(ex.readings(2))) == 2

    tree = store.lineage("scorer", "production")
    [dataset] = tree["datasets"]
    assert dataset["status"] == "present" and dataset["ref"].endswith("/readings")
