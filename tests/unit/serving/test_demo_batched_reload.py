"""The demo's batched /predict follows a hot reload: each request's rows go to the model version
it started with, so a reload changes what the route answers (binding the fitted model's
predict_proba at startup would keep the first version for good)."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

from hypermodel import hml
from hypermodel.models.store import ModelStore
from hypermodel.serving.model import ModelContainer
from tests.support import require_module

require_module("wines")  # the demo app: skipped on a laptop without it, fails under CI
wines_inference = importlib.import_module("wines.inference")

ROW = [13.2, 1.78, 2.14, 11.2, 100.0, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050.0]


def constant(wine: Any, answer: int) -> Any:
    """A classifier that answers ``answer`` for every wine (probability 1)."""
    from sklearn.dummy import DummyClassifier

    return DummyClassifier(strategy="constant", constant=answer).fit(
        wine.data.values, wine.target.values
    )


def publish(app: hml.HmlApp, wine: Any, version: str, answer: int) -> None:
    mc = ModelContainer(wines_inference.MODEL)
    mc.model = constant(wine, answer)
    mc.publish(app, version=version)


def predict(client: Any) -> tuple[int, str]:
    response = client.post("/predict", json={"features": ROW})
    assert response.status_code == 200, response.json
    return int(response.json["cultivar"]), str(response.headers["x-model-version"])


@pytest.mark.parametrize("ref", ["latest", "production"])
def test_a_reload_changes_what_the_batched_route_answers(
    app: hml.HmlApp, wine: Any, ref: str
) -> None:
    publish(app, wine, "v1", 0)
    store = ModelStore(app.storage())
    store.set_alias(wines_inference.MODEL, "production", "v1")
    wines_inference.declare(app)
    app.inference.configure(models={wines_inference.MODEL: ref})
    client = app.inference.build().test_client()
    assert predict(client) == (0, "v1")
    assert app.inference.batchers["predict_proba"].items == 1  # the route is the batched one

    publish(app, wine, "v2", 2)  # latest moves
    store.set_alias(wines_inference.MODEL, "production", "v2")  # and so does the alias
    (outcome,) = app.inference.reloader.check()
    assert (outcome.status, outcome.version) == ("reloaded", "v2")
    assert predict(client) == (2, "v2")  # the new version answers, and says so

    store.rollback(wines_inference.MODEL, "production")
    publish(app, wine, "v3", 1)
    (outcome,) = app.inference.reloader.check()
    expected = (1, "v3") if ref == "latest" else (0, "v1")
    assert (outcome.status, outcome.version) == ("reloaded", expected[1])
    assert predict(client) == expected
    assert app.inference.batchers["predict_proba"].items == 3


def test_a_batch_across_a_reload_answers_each_row_with_its_own_model(wine: Any) -> None:
    old, new = constant(wine, 0), constant(wine, 2)
    calls: list[int] = []

    class Counting:
        def __init__(self, model: Any) -> None:
            self.model = model

        def predict_proba(self, rows: list[list[float]]) -> Any:
            calls.append(len(rows))
            return self.model.predict_proba(np.asarray(rows))

    first, second = Counting(old), Counting(new)
    items = [(first, ROW), (second, ROW), (first, ROW), (second, ROW), (second, ROW)]
    results = wines_inference.predict_proba_by_model(items)
    assert [int(np.argmax(r)) for r in results] == [0, 2, 0, 2, 2]
    assert sorted(calls) == [2, 3]  # one call per model, not per row
