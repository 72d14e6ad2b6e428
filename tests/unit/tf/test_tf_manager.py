"""Train a tiny model for one epoch on CPU, checkpoint, export, reload, serve, read the lineage.

Needs TensorFlow (extra hypermodel[tf]); skipped without it, failed under CI=true.
"""

from __future__ import annotations

import gc
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hypermodel import hml
from hypermodel.tf.batch import dataset_checksum
from tests.support import unavailable


def _tf() -> ModuleType:
    if importlib.util.find_spec("tensorflow") is None:
        unavailable("TensorFlow is not installed (pip install 'hypermodel[tf]')")
    import tensorflow as tf

    return tf


@pytest.fixture(scope="module")
def ex() -> ModuleType:
    _tf()
    from tests.unit.tf import example

    return example


class Trained:
    def __init__(self, root: Path, ex: ModuleType) -> None:
        tf = _tf()
        from hypermodel.tf import TensorflowModelManager

        self.root = root
        self.train = hml.Dataset(ex.Reading, location=str(root), name="readings")
        self.test = hml.Dataset(ex.Reading, location=str(root), name="readings_test")
        self.scores = hml.Dataset(ex.Score, location=str(root), name="scores")
        for dataset, rows in ((self.train, ex.readings(64)), (self.test, ex.readings(16, 1000))):
            with dataset.open("w") as writer:
                for row in rows:
                    writer.append(row)
        self.processor = ex.ScorerBatchProcessor(
            trainingData=self.train,
            evaluationData=self.test,
            batchSize=16,
            outputDataset=self.scores,
            shuffleSeed=3,
        )
        self.manager = TensorflowModelManager(
            model=ex.Scorer(ex.Hidden(8)),
            optimizer=tf.keras.optimizers.Adam(0.05),
            batchProcessor=self.processor,
            directory=root / "model",
            commit="abc123",
        )
        self.history = self.manager.run(epochs=1)
        self.export = self.manager.export()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, ex: ModuleType) -> Iterator[Trained]:
    yield Trained(tmp_path_factory.mktemp("tf"), ex)


def test_one_epoch_trains_evaluates_and_checkpoints(trained: Trained) -> None:
    history = trained.history
    assert len(history["train_loss"]) == 1 and history["train_loss"][0] > 0
    assert isinstance(history["evaluation_loss"][0], float)
    assert trained.manager.globalStep == 4  # 64 records / batches of 16
    checkpoint = history["checkpoints"][0]
    assert checkpoint.endswith("-1") and Path(checkpoint + ".index").is_file()


def test_evaluation_output_dataset_is_published(trained: Trained, ex: ModuleType) -> None:
    scores = list(trained.scores.open("r"))
    assert sorted(s.readingId for s in scores) == list(range(1000, 1016))
    assert all(isinstance(s, ex.Score) for s in scores)
    assert trained.history["evaluation_dataset"] == dataset_checksum(trained.scores)


def _tags(directory: Path) -> set[str]:
    tf = _tf()
    tags = set()
    for file in directory.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(file)):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_tensorboard_summaries_are_written(trained: Trained) -> None:
    board = trained.root / "model" / "tensorboard"
    assert {"loss", "mean_absolute_error"} <= _tags(board / "train")
    assert {"loss", "mean_absolute_error"} <= _tags(board / "evaluate")


def test_export_embeds_long_name_and_dataset_checksum(trained: Trained, ex: ModuleType) -> None:
    tf = _tf()
    from hypermodel.tf import load_exported

    loaded = tf.saved_model.load(str(trained.export))  # readable with plain TensorFlow too
    long_name = loaded.get_long_name().numpy().decode("utf-8")
    assert long_name == trained.manager.longName
    assert long_name.startswith("Scorer_") and long_name.endswith("_abc123")
    checksum = loaded.get_input_dataset_chk_file_checksum().numpy().decode("utf-8")
    assert checksum == dataset_checksum(trained.train)
    exported = load_exported(trained.export)
    assert exported.lineage["commit"] == "abc123" and exported.lineage["epochs"] == 1
    features = trained.processor.process_input_batch(ex.readings(5))["features"]
    expected = trained.manager.model.get_outputs(features=features).numpy()
    assert exported.get_outputs(features=features).numpy() == pytest.approx(expected, abs=1e-6)


def test_served_prediction_carries_lineage_headers(trained: Trained, ex: ModuleType) -> None:
    from hypermodel.tf import TensorflowModelContainer

    app = hml.HmlApp("tf-serving", root=str(trained.root / "bucket"))
    container = TensorflowModelContainer("scorer", ex.ScorerBatchProcessor())
    container.load(trained.export)
    container.serve(app.inference, "/score", input=ex.Reading, output=ex.Score)
    client = app.inference.build().test_client()
    reading = ex.readings(1, 2000)[0]
    response = client.post("/score", json=reading.to_data())
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["x-model-long-name"] == trained.manager.longName
    assert response.headers["x-model-dataset"] == dataset_checksum(trained.train)
    assert response.headers["x-model-commit"] == "abc123"
    assert response.headers["x-model-digest"].startswith("sha256:")
    features = trained.processor.process_input_batch([reading])["features"]
    expected = float(trained.manager.model.get_outputs(features=features).numpy()[0])
    assert json.loads(response.get_data())["score"] == pytest.approx(expected, abs=1e-5)
    bad = client.post("/score", json={"readingId": "x"})
    assert bad.status_code in (400, 422)
    assert client.get("/readyz").status_code == 200


def test_restore_resumes_from_the_last_checkpoint(trained: Trained, ex: ModuleType) -> None:
    tf = _tf()
    from hypermodel.tf import TensorflowModelManager

    fresh = TensorflowModelManager(
        model=ex.Scorer(ex.Hidden(8)),
        optimizer=tf.keras.optimizers.Adam(0.05),
        batchProcessor=ex.ScorerBatchProcessor(trainingData=ex.readings(8), batchSize=4),
        directory=trained.root / "model",
        commit="abc123",
    )
    features = trained.processor.process_input_batch(ex.readings(3))["features"]
    fresh.model(features)  # build the variables, then load them
    assert fresh.restore() == trained.history["checkpoints"][0]
    assert fresh.epoch == 1
    restored = fresh.model.get_outputs(features=features).numpy()
    original = trained.manager.model.get_outputs(features=features).numpy()
    assert restored == pytest.approx(original, abs=1e-6)


def test_export_refuses_an_existing_export(trained: Trained) -> None:
    from hypermodel.errors import UsageError

    with pytest.raises(UsageError, match="already holds an export"):
        trained.manager.export(trained.export)


def test_failing_training_publishes_no_evaluation_output(tmp_path: Path, ex: ModuleType) -> None:
    tf = _tf()
    from hypermodel.tf import TensorflowModelManager

    class Broken(ex.ScorerBatchProcessor):  # type: ignore[name-defined,misc]
        calls = 0

        def process_training_batch(self, batch: list[Any]) -> Any:
            Broken.calls += 1
            if Broken.calls > 1:
                raise ValueError("bad batch")
            return super().process_training_batch(batch)

    scores = hml.Dataset(ex.Score, location=str(tmp_path), name="scores")
    manager = TensorflowModelManager(
        model=ex.Scorer(ex.Hidden(4)),
        optimizer=tf.keras.optimizers.Adam(0.05),
        batchProcessor=Broken(
            trainingData=ex.readings(8),
            evaluationData=ex.readings(4),
            batchSize=2,
            outputDataset=scores,
        ),
        directory=tmp_path / "model",
        commit="abc123",
    )
    with pytest.raises(ValueError, match="bad batch"):
        manager.run(epochs=1)
    assert not scores.exists()
    leftovers = (
        [p for p in (tmp_path / "default").rglob("*") if p.is_file()]
        if (tmp_path / "default").exists()
        else []
    )
    assert leftovers == []
    assert manager.batchProcessor._writer is None  # finalised by finish()


def test_training_from_a_list_exports_without_dataset_checksum(
    tmp_path: Path, ex: ModuleType
) -> None:
    tf = _tf()
    from hypermodel.tf import TensorflowModelManager, load_exported

    manager = TensorflowModelManager(
        model=ex.Scorer(ex.Hidden(4)),
        optimizer=tf.keras.optimizers.Adam(0.05),
        batchProcessor=ex.ScorerBatchProcessor(trainingData=ex.readings(8), batchSize=4),
        directory=tmp_path / "model",
        longName="scorer-test",
    )
    history = manager.run(epochs=2)
    assert len(history["train_loss"]) == 2 and history["evaluation_loss"] == [None, None]
    exported = load_exported(manager.export())
    assert exported.long_name == "scorer-test"
    assert exported.dataset_checksum == "none"


def test_publish_to_the_bucket_then_serve_latest(
    trained: Trained, ex: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypermodel.tf import TensorflowModelContainer

    app = hml.HmlApp("tf-published", root=str(trained.root / "published"))
    reference = TensorflowModelContainer("scorer", ex.ScorerBatchProcessor()).publish(
        trained.export, app, version="v1"
    )
    assert reference["lineage"]["long_name"] == trained.manager.longName
    assert reference["lineage"]["dataset_checksum"] == dataset_checksum(trained.train)

    served = TensorflowModelContainer("scorer", ex.ScorerBatchProcessor())
    app.inference.load_model(served, "latest")
    served.serve(app.inference, "/score", input=ex.Reading, output=ex.Score)
    client = app.inference.build().test_client()
    response = client.post("/score", json=ex.readings(1)[0].to_data())
    assert response.status_code == 200
    assert response.headers["x-model-version"] == "v1"
    assert response.headers["x-model-long-name"] == trained.manager.longName
    assert response.headers["x-model-dataset"] == dataset_checksum(trained.train)

    # "latest" is followed: a new version is switched in by a check, the old one kept on failure
    TensorflowModelContainer("scorer", ex.ScorerBatchProcessor()).publish(
        trained.export, app, version="v2"
    )
    first_copy = served.exported.path
    assert first_copy.is_dir()
    (outcome,) = app.inference.reloader.check()
    assert (outcome.status, outcome.version) == ("reloaded", "v2")
    response = client.post("/score", json=ex.readings(1)[0].to_data())
    assert response.status_code == 200 and response.headers["x-model-version"] == "v2"
    # v1's unpacked copy goes with the last reference to it; v2's stays while it serves
    gc.collect()
    assert not first_copy.exists()
    assert served.exported.path.is_dir() and served.exported.path != first_copy
    TensorflowModelContainer("scorer", ex.ScorerBatchProcessor()).publish(
        trained.export, app, version="v3"
    )
    # files that differ from the tree digest: refused, and the unpacked copy removed each time
    import tempfile

    from hypermodel.tf import export

    monkeypatch.setattr(export, "directory_digest", lambda path: "0" * 64)
    unpacked = set(Path(tempfile.gettempdir()).glob("hml-scorer-*"))
    for _ in range(2):
        (outcome,) = app.inference.reloader.check()
        assert (outcome.status, outcome.version) == ("failed", "v2")
    assert set(Path(tempfile.gettempdir()).glob("hml-scorer-*")) == unpacked
    monkeypatch.undo()
    (trained.root / "published/models/scorer/v3/saved_model.tar").write_bytes(b"truncated")
    (outcome,) = app.inference.reloader.check()
    assert (outcome.status, outcome.version) == ("failed", "v2")
    response = client.post("/score", json=ex.readings(1)[0].to_data())
    assert response.status_code == 200 and response.headers["x-model-version"] == "v2"


def test_published_versions_are_never_overwritten_and_tampering_is_caught(
    trained: Trained, ex: ModuleType
) -> None:
    from hypermodel.errors import AlreadyExistsError
    from hypermodel.serving.errors import ModelIntegrityError
    from hypermodel.tf import TensorflowModelContainer

    app = hml.HmlApp("tf-tamper", root=str(trained.root / "tamper"))
    container = TensorflowModelContainer("scorer", ex.ScorerBatchProcessor(), app=app)
    container.publish(trained.export, version="v1")
    with pytest.raises(AlreadyExistsError, match="already published"):
        container.publish(trained.export, version="v1")
    archive = trained.root / "tamper/models/scorer/v1/saved_model.tar"
    data = bytearray(archive.read_bytes())
    data[-2000] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match the SHA256"):
        TensorflowModelContainer("scorer", ex.ScorerBatchProcessor(), app=app).load("v1")


def test_published_tf_model_on_the_index_and_metrics(trained: Trained, ex: ModuleType) -> None:
    """GET / and GET /metrics of a server with a published TF model (they answered 500:
    the reference was a dict without summary())."""
    from hypermodel.tf import TensorflowModelContainer

    app = hml.HmlApp("tf-index", root=str(trained.root / "index"))
    published = TensorflowModelContainer("scorer", ex.ScorerBatchProcessor()).publish(
        trained.export, app, version="v7"
    )
    assert published["version"] == "v7"  # the reference still reads as a dict
    served = TensorflowModelContainer("scorer", ex.ScorerBatchProcessor())
    app.inference.load_model(served, "latest")
    served.serve(app.inference, "/score", input=ex.Reading, output=ex.Score)
    client = app.inference.build().test_client()

    index = client.get("/")
    assert index.status_code == 200, index.get_data(as_text=True)
    model = index.get_json()["models"]["scorer"]
    assert model["loaded"] is True
    assert model["version"] == "v7"
    assert model["long_name"] == trained.manager.longName
    assert model["datasets"] == [dataset_checksum(trained.train)]
    assert model["commit"] == "abc123"
    assert model["model_sha256"] == published["archive_sha256"]
    assert model["reference"] == "models/scorer/v7/reference.json"

    metrics = client.get("/metrics")
    assert metrics.status_code == 200, metrics.get_data(as_text=True)
    text = metrics.get_data(as_text=True)
    assert 'hml_model_info{digest="' + published["archive_sha256"] in text
    assert f'long_name="{trained.manager.longName}"' in text and 'version="v7"' in text


def test_local_tf_export_on_the_index_and_metrics(trained: Trained, ex: ModuleType) -> None:
    from hypermodel.tf import TensorflowModelContainer

    app = hml.HmlApp("tf-local-index", root=str(trained.root / "local-index"))
    container = TensorflowModelContainer("scorer", ex.ScorerBatchProcessor()).load(trained.export)
    container.serve(app.inference, "/score", input=ex.Reading, output=ex.Score)
    client = app.inference.build().test_client()
    index = client.get("/")
    assert index.status_code == 200, index.get_data(as_text=True)
    model = index.get_json()["models"]["scorer"]
    assert model["long_name"] == trained.manager.longName
    assert model["reference"] == str(trained.export)
    metrics = client.get("/metrics")
    assert metrics.status_code == 200, metrics.get_data(as_text=True)
    assert f'long_name="{trained.manager.longName}"' in metrics.get_data(as_text=True)
