"""Hypergol's serving contract: ``GET /`` answers ``"model"`` (the long name) and ``POST
/output`` answers a list of outputs for a list of records, as a Hypergol client reads them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hypermodel import hml
from hypermodel.data.model import BaseData
from hypermodel.errors import DeclarationError
from hypermodel.serving.hypergol_contract import output_route
from hypermodel.serving.model import ModelContainer
from tests.unit.serving.protocol_models import feature_names, publish_numeric, rows, serve


class Reading(BaseData):
    features: list[float]


class Score(BaseData):
    cultivar: int


@pytest.fixture
def numeric(app: hml.HmlApp) -> ModelContainer:
    return publish_numeric(app)


def _matrix(count: int) -> list[list[float]]:
    return [[r[f] for f in feature_names()] for r in rows(count, start=20)]


def test_decorated_list_in_list_out_as_a_hypergol_client_reads_it(
    app: hml.HmlApp, numeric: ModelContainer
) -> None:
    def declare(inference_app: hml.HmlInferenceApp) -> None:
        model = inference_app.get_model("wine-num")

        @output_route(inference_app, input=Reading, output=Score)
        def outputs(readings: list[Reading]) -> list[Score]:
            labels = model.predict(np.asarray([r.features for r in readings]))
            return [Score(cultivar=int(label)) for label in labels]

    client = serve(app, "wine-num", declare=declare)
    reference = numeric.reference
    assert reference is not None
    index = client.get("/", headers={"accept": "application/json"}).json
    assert index["model"] == reference.long_name
    assert index["app"] == "wines" and "routes" in index  # the index keeps its content
    values = [Reading(features=row).to_data() for row in _matrix(6)]
    response = client.post("/output", json=values)
    assert response.status_code == 200, response.json
    expected = numeric.predict(np.asarray(_matrix(6))).tolist()
    assert [Score.from_data(v).cultivar for v in response.json] == expected
    assert response.headers["x-model-long-name"] == reference.long_name
    one = client.post("/output", json=values[0])  # one record: one output
    assert one.json == {"cultivar": expected[0]}
    assert client.post("/output", json=[]).json == []


def test_batch_and_model_container_processors(app: hml.HmlApp, numeric: ModelContainer) -> None:
    def declare(inference_app: hml.HmlInferenceApp) -> None:
        model = inference_app.get_model("wine-num")
        batch = inference_app.batch(model.model.predict, max_batch_size=4)
        output_route(inference_app, batch)
        output_route(inference_app, model, path="/records")

    client = serve(app, "wine-num", declare=declare)
    expected = numeric.predict(np.asarray(_matrix(9))).tolist()
    assert client.post("/output", json=_matrix(9)).json == expected  # chunks of 4
    records = [{f: r[f] for f in feature_names()} for r in rows(9, start=20)]
    assert client.post("/records", json=records).json == expected


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ("x", 400, "send a JSON list of input records"),
        (None, 400, "send a JSON list"),
        ([{"features": "x"}], 422, "invalid request"),
        ([{"features": [1.0]}, {}], 422, "invalid request"),
    ],
)
def test_refusals(
    app: hml.HmlApp, numeric: ModelContainer, body: Any, status: int, says: str
) -> None:
    def declare(inference_app: hml.HmlInferenceApp) -> None:
        output_route(inference_app, lambda items: [1 for _ in items], input=Reading)

    client = serve(app, "wine-num", declare=declare)
    response = client.post("/output", json=body)
    assert response.status_code == status, response.json
    assert says in response.json["error"]
    if status == 422:
        assert any(p["loc"].startswith(("0.", "1.")) for p in response.json["problems"])


def test_switched_off_refuses_the_declaration(app: hml.HmlApp, numeric: ModelContainer) -> None:
    app.inference.protocols = ("v2",)

    def declare(inference_app: hml.HmlInferenceApp) -> None:
        output_route(inference_app, lambda items: items)

    with pytest.raises(DeclarationError, match="hypergol protocol is switched off"):
        serve(app, "wine-num", declare=declare)
