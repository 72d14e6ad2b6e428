"""Model references on every bucket backend (local, GCS, S3): publish, load latest, refuse tampering."""

from __future__ import annotations

from typing import Any

import pytest

from hypermodel import hml
from hypermodel.serving.model import ModelContainer, ModelIntegrityError
from hypermodel.storage import Storage


@pytest.fixture(scope="module")
def fitted() -> Any:
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    data = load_wine()
    return DecisionTreeClassifier(max_depth=2, random_state=0).fit(data.data, data.target)


def test_publish_load_and_tamper_on_bucket(storage: Storage, fitted: Any) -> None:
    mc = ModelContainer("clf")
    mc.model = fitted
    mc.add_training_dataset("c" * 40)
    first = mc.publish(storage, version="v1")
    second = mc.publish(storage, version="v2")
    assert ModelContainer("clf").load("latest", storage).reference == second
    assert ModelContainer("clf").load("v1", storage).reference == first
    assert ModelContainer("clf").versions(storage) == ["v1", "v2"]

    key = "models/clf/v2/model.joblib"
    storage.write_bytes(key, storage.read_bytes(key)[:-1] + b"X")
    with pytest.raises(ModelIntegrityError, match=r"v2/model\.joblib has SHA256"):
        ModelContainer("clf").load("latest", storage)
    assert ModelContainer("clf").load("v1", storage).is_loaded


def test_server_loads_from_the_app_bucket(storage_url: str, fitted: Any) -> None:
    app = hml.HmlApp("svc", root=storage_url)
    mc = ModelContainer("clf")
    mc.model = fitted
    ref = mc.publish(app)

    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        inference_app.load_model(ModelContainer("clf"))

        @inference_app.route("/predict")
        def predict(payload: Any) -> Any:
            return {"cultivar": int(inference_app.get_model("clf").predict([payload])[0])}

    client = app.inference.build().test_client()
    response = client.post(
        "/predict",
        json=[13.2, 1.78, 2.14, 11.2, 100, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050],
    )
    assert response.status_code == 200
    assert response.headers["x-model-digest"] == f"sha256:{ref.model_sha256}"
