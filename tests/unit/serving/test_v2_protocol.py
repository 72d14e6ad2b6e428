"""The Open Inference Protocol (KServe v2 REST) through Flask's test client: metadata, health,
inference in every input form against ``container.predict``, and every refusal as 4xx JSON."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hypermodel import __version__, hml
from hypermodel.errors import DeclarationError, HypermodelError
from hypermodel.serving.model import ModelContainer
from tests.unit.serving.protocol_models import (
    MIXED_NUMERIC,
    feature_names,
    publish_mixed,
    publish_numeric,
    publish_positional,
    rows,
    serve,
)


@pytest.fixture
def models(app: hml.HmlApp) -> dict[str, ModelContainer]:
    return {
        "wine-num": publish_numeric(app),
        "wine-mixed": publish_mixed(app),
        "wine-pos": publish_positional(app),
    }


@pytest.fixture
def client(app: hml.HmlApp, models: dict[str, ModelContainer]) -> Any:
    return serve(app, *models)


def _matrix(records: list[dict[str, Any]]) -> list[list[float]]:
    return [[r[f] for f in feature_names()] for r in records]


def _per_feature(records: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "shape": [len(records)],
            "datatype": "BYTES" if name == "colour" else "FP64",
            "data": [r[name] for r in records],
        }
        for name in names
    ]


def _infer(client: Any, model: str, body: Any, **kwargs: Any) -> Any:
    return client.post(f"/v2/models/{model}/infer", json=body, **kwargs)


def test_server_metadata_and_health(client: Any) -> None:
    meta = client.get("/v2")
    assert meta.status_code == 200
    assert meta.json["name"] == "hypermodel" and meta.json["extensions"] == []
    assert meta.json["version"] == __version__ and meta.json["app"] == "wines"
    assert client.get("/v2/health/live").json == {"live": True}
    assert client.get("/v2/health/ready").json == {"ready": True}
    assert "x-model-long-name" not in client.get("/v2/health/ready").headers


def test_not_ready_is_503_with_the_reason(app: hml.HmlApp) -> None:
    app.inference.require_models = True
    client = app.inference.flask.test_client()  # initialisers not run: nothing loaded
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 503 and ready.json["ready"] is False
    assert "initialisers have not run" in ready.json["error"]
    assert client.get("/v2/health/live").status_code == 200


def test_model_metadata_derived_from_recorded_features(
    client: Any, models: dict[str, ModelContainer]
) -> None:
    meta = client.get("/v2/models/wine-num")
    assert meta.status_code == 200
    body = meta.json
    reference = models["wine-num"].reference
    assert reference is not None
    assert body["name"] == "wine-num" and body["versions"] == [reference.version]
    assert body["platform"] == "sklearn"
    assert [i["name"] for i in body["inputs"]] == feature_names()
    assert {i["datatype"] for i in body["inputs"]} == {"FP64"}
    assert all(i["shape"] == [-1] for i in body["inputs"])
    assert body["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
    ]
    assert meta.headers["x-model-long-name"] == reference.long_name
    versioned = client.get(f"/v2/models/wine-num/versions/{reference.version}")
    assert versioned.json == body

    mixed = client.get("/v2/models/wine-mixed").json
    assert [(i["name"], i["datatype"]) for i in mixed["inputs"]] == [
        *((n, "FP64") for n in MIXED_NUMERIC),
        ("colour", "BYTES"),
    ]
    positional = client.get("/v2/models/wine-pos").json
    assert positional["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 13]}]


def test_model_ready(client: Any, models: dict[str, ModelContainer]) -> None:
    assert client.get("/v2/models/wine-num/ready").json == {"name": "wine-num", "ready": True}
    version = models["wine-num"].reference.version  # type: ignore[union-attr]
    assert client.get(f"/v2/models/wine-num/versions/{version}/ready").status_code == 200
    assert client.get("/v2/models/nope/ready").status_code == 404


def test_infer_one_input_per_feature_matches_predict(
    client: Any, models: dict[str, ModelContainer]
) -> None:
    records = rows(7, start=40)
    response = _infer(
        client, "wine-num", {"id": "req-1", "inputs": _per_feature(records, feature_names())}
    )
    assert response.status_code == 200, response.json
    expected = models["wine-num"].predict(np.asarray(_matrix(records)))
    reference = models["wine-num"].reference
    assert reference is not None
    assert response.json == {
        "model_name": "wine-num",
        "model_version": reference.version,
        "id": "req-1",
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [7], "data": expected.tolist()}
        ],
    }
    assert response.headers["x-model-long-name"] == reference.long_name
    assert response.headers["x-model-digest"] == f"sha256:{reference.model_sha256}"
    assert response.headers["x-model-dataset"] == "ab" * 20


@pytest.mark.parametrize("nested", [False, True])
def test_infer_one_2d_input_flat_or_nested(
    client: Any, models: dict[str, ModelContainer], nested: bool
) -> None:
    matrix = _matrix(rows(6, start=100))
    data = matrix if nested else [v for row in matrix for v in row]
    body = {"inputs": [{"name": "x", "shape": [6, 13], "datatype": "FP64", "data": data}]}
    for model in ("wine-num", "wine-pos"):
        response = _infer(client, model, body)
        assert response.status_code == 200, response.json
        expected = models[model].predict(np.asarray(matrix)).tolist()
        assert response.json["outputs"][0]["data"] == expected
        assert "id" not in response.json


def test_infer_per_feature_columns_of_shape_rows_by_one(
    client: Any, models: dict[str, ModelContainer]
) -> None:
    records = rows(3, start=10)
    inputs = [
        {"name": n, "shape": [3, 1], "datatype": "FP32", "data": [[r[n]] for r in records]}
        for n in feature_names()
    ]
    response = _infer(client, "wine-num", {"inputs": inputs})
    assert response.status_code == 200, response.json
    expected = models["wine-num"].predict(np.asarray(_matrix(records))).tolist()
    assert response.json["outputs"][0]["data"] == expected


def test_infer_categorical_feature_goes_through_build_features(
    client: Any, models: dict[str, ModelContainer]
) -> None:
    import pandas as pd

    records = rows(9, start=60)
    names = [*MIXED_NUMERIC, "colour"]
    response = _infer(client, "wine-mixed", {"inputs": _per_feature(records, names)})
    assert response.status_code == 200, response.json
    mc = models["wine-mixed"]
    frame = pd.DataFrame([{n: r[n] for n in names} for r in records])
    expected = mc.predict(mc.build_features(frame).to_numpy(dtype="float64")).tolist()
    assert response.json["outputs"][0]["data"] == expected


def test_outputs_choose_predict_proba(client: Any, models: dict[str, ModelContainer]) -> None:
    matrix = _matrix(rows(2))
    body = {
        "inputs": [{"name": "x", "shape": [2, 13], "datatype": "FP64", "data": matrix}],
        "outputs": [{"name": "predict_proba"}, {"name": "predict"}],
    }
    response = _infer(client, "wine-num", body)
    assert response.status_code == 200, response.json
    proba, labels = response.json["outputs"]
    assert proba["name"] == "predict_proba" and proba["shape"] == [2, 3]
    assert proba["datatype"] == "FP64"
    expected = models["wine-num"].model.predict_proba(np.asarray(matrix))
    assert np.allclose(np.asarray(proba["data"]).reshape(2, 3), expected)
    assert labels["name"] == "predict"


def test_versioned_infer_and_unknown_version_or_model(
    client: Any, models: dict[str, ModelContainer]
) -> None:
    version = models["wine-num"].reference.version  # type: ignore[union-attr]
    body = {
        "inputs": [{"name": "x", "shape": [1, 13], "datatype": "FP64", "data": _matrix(rows(1))}]
    }
    ok = client.post(f"/v2/models/wine-num/versions/{version}/infer", json=body)
    assert ok.status_code == 200 and ok.json["model_version"] == version
    wrong = client.post("/v2/models/wine-num/versions/v999/infer", json=body)
    assert wrong.status_code == 404
    assert "no version 'v999'" in wrong.json["error"] and version in wrong.json["error"]
    unknown = _infer(client, "nope", body)
    assert unknown.status_code == 404
    assert "model 'nope' is not served here" in unknown.json["error"]
    assert "wine-num" in unknown.json["error"]


ROW = [13.2, 1.78, 2.14, 11.2, 100.0, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050.0]


def _x(**changes: Any) -> dict[str, Any]:
    tensor = {"name": "x", "shape": [1, 13], "datatype": "FP64", "data": ROW}
    tensor.update(changes)
    return {"inputs": [tensor]}


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (_x(shape=[1, 12], data=ROW[:12]), 400, "(12 columns) but model 'wine-num' takes 13"),
        (_x(shape=[2, 13]), 400, "(26 values) but its data holds 13"),
        (_x(shape=[1, 13], data=[ROW[:6], ROW[6:]]), 400, "does not match shape"),
        (_x(shape="13"), 400, "shape must be a list"),
        (_x(shape=[-1, 13]), 400, "shape must be a list"),
        (_x(shape=[1] * 9), 400, "shape must be a list of 1 to 8"),
        (_x(datatype="FLOAT"), 400, "not a v2 datatype"),
        (_x(datatype="BYTES", data=[str(v) for v in ROW]), 400, "datatype mismatch"),
        (_x(datatype="INT64"), 400, "INT64 data must be integers"),
        (_x(data=[*ROW[:12], "x"]), 400, "FP64 data must be numbers"),
        (_x(data=[*ROW[:12], True]), 400, "FP64 data must be numbers"),
        (_x(datatype="FP32", data=[*ROW[:12], 1e39]), 400, "out of range for FP32"),
        (_x(datatype="INT8", data=[1] * 12 + [300]), 400, "out of range for INT8"),
        (_x(data={"a": 1}), 400, "(13 values) but its data holds 1"),
        (_x(shape=[0, 13], data=[]), 400, "0 rows"),
        (_x(parameters={"binary_data_size": 8}), 400, "binary tensor data"),
        (_x(name=""), 400, 'has no "name"'),
        ({"inputs": [{"name": "x", "shape": [1, 13], "datatype": "FP64"}]}, 400, 'no "data"'),
        ({"inputs": []}, 400, '"inputs" must be a non-empty list'),
        ({"inputs": {"x": ROW}}, 400, '"inputs" must be a non-empty list'),
        ({"inputs": ["x"]}, 400, "inputs[0] is not a tensor"),
        ({}, 400, '"inputs" must be a non-empty list'),
        ([1, 2], 400, "JSON object"),
        ({**_x(), "id": 5}, 400, '"id" must be a string'),
        ({**_x(), "outputs": [{"name": "logits"}]}, 400, "unknown output 'logits'"),
        ({**_x(), "outputs": "predict"}, 400, '"outputs" must be a non-empty list'),
        ({**_x(), "parameters": "fast"}, 400, "must be a JSON object"),
        (_x(data=[*ROW[:12], 1e300]), 400, "1e+300 is out of range"),
        (_x(data=[*ROW[:12], -1e39]), 400, "-1e+39 is out of range"),
    ],
)
def test_refusals_are_4xx_json_naming_the_fix(
    client: Any, body: Any, status: int, says: str
) -> None:
    response = _infer(client, "wine-num", body)
    assert response.status_code == status, response.json
    assert set(response.json) == {"error"}
    assert says in response.json["error"], response.json["error"]
    assert response.headers["x-model-long-name"]  # lineage on refusals too


@pytest.mark.parametrize(
    ("inputs", "says"),
    [
        (
            [{"name": "alcohol", "shape": [1], "datatype": "FP64", "data": [1.0]}],
            "needs the features",
        ),
        (
            [{"name": "bogus", "shape": [1], "datatype": "FP64", "data": [1.0]}],
            "unknown input 'bogus'",
        ),
        (
            [{"name": "alcohol", "shape": [1], "datatype": "BYTES", "data": ["13"]}],
            "datatype mismatch: input 'alcohol' is BYTES but feature 'alcohol' is numeric",
        ),
        (
            [
                {"name": "alcohol", "shape": [1], "datatype": "FP64", "data": [1.0]},
                {"name": "alcohol", "shape": [1], "datatype": "FP64", "data": [1.0]},
            ],
            "given twice",
        ),
        (
            [
                {"name": "alcohol", "shape": [1], "datatype": "FP64", "data": [1.0]},
                {"name": "ash", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
            ],
            "has 2 rows but the inputs before it have 1",
        ),
        (
            [
                {"name": "alcohol", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]},
                {"name": "ash", "shape": [1], "datatype": "FP64", "data": [1.0]},
            ],
            "a feature's input is [rows] or [rows, 1]",
        ),
    ],
)
def test_per_feature_refusals(client: Any, inputs: list[Any], says: str) -> None:
    response = _infer(client, "wine-num", {"inputs": inputs})
    assert response.status_code == 400, response.json
    assert says in response.json["error"]


def test_categorical_model_refuses_a_matrix_and_positional_model_refuses_names(
    client: Any,
) -> None:
    matrix = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}
    mixed = _infer(client, "wine-mixed", matrix)
    assert mixed.status_code == 400 and "send one input per feature" in mixed.json["error"]
    named = _per_feature(rows(1), ["alcohol"])
    positional = _infer(client, "wine-pos", {"inputs": named})
    assert positional.status_code == 400
    assert "records no feature names" in positional.json["error"]
    assert "[rows, 13]" in positional.json["error"]


@pytest.mark.parametrize(
    ("raw", "status", "says"),
    [
        (b"", 400, "request body is empty"),
        (b'{"inputs": [', 400, "malformed JSON"),
        (b"\xff\xfe{}", 400, "malformed JSON"),
        (b"[" * 5000 + b"]" * 5000, 400, "malformed JSON"),
        (
            b'{"inputs": [{"name": "x", "shape": [1, 13], "datatype": "FP64", "data": [NaN'
            + b", 1" * 12
            + b"]}]}",
            400,
            "nan is not a finite number",
        ),
        (b"x" * (2 * 1024 * 1024), 413, "request body too large"),
    ],
)
def test_hostile_bodies(client: Any, raw: bytes, status: int, says: str) -> None:
    response = client.post("/v2/models/wine-num/infer", data=raw, content_type="application/json")
    assert response.status_code == status, response.data[:300]
    assert says in response.json["error"] + str(response.json.get("detail", ""))


def test_huge_shape_with_little_data_is_refused_cheaply(client: Any) -> None:
    body = _x(shape=[10**12, 10**12])
    response = _infer(client, "wine-num", body)
    assert response.status_code == 400 and "but its data holds 13" in response.json["error"]
    many = {
        "inputs": [
            {"name": "x", "shape": [120_000, 1], "datatype": "FP64", "data": [0.0] * 120_000}
        ]
    }
    refused = _infer(client, "wine-num", many)
    assert refused.status_code in (400, 413)


def test_the_models_value_error_is_422(
    client: Any, models: dict[str, ModelContainer], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(features: Any) -> Any:
        raise ValueError("X has a value this model cannot use\nsecond line")

    served = client.application.config["hml_inference_app"].app.models["wine-num"]
    monkeypatch.setattr(served.model, "predict", refuse)
    response = _infer(client, "wine-num", _x())
    assert response.status_code == 422, response.json
    assert response.json == {
        "error": "the model rejected the input: ValueError: X has a value this model cannot use"
    }


def test_non_model_container_is_refused_with_the_fix(app: hml.HmlApp) -> None:
    class Scorer:
        name = "scorer"
        is_loaded = True
        reference = None

        def predict(self, objects: list[Any]) -> list[Any]:
            return objects

    app.register_model("scorer", Scorer())
    app.inference.require_models = False
    client = app.inference.build().test_client()
    response = _infer(client, "scorer", _x())
    assert response.status_code == 400
    assert "not a ModelContainer" in response.json["error"]


def test_protocols_are_switchable(app: hml.HmlApp, models: dict[str, ModelContainer]) -> None:
    app.inference.protocols = ("mlflow",)
    client = serve(app, "wine-num")
    assert client.get("/v2/health/live").status_code == 404
    assert client.get("/v2").json["error"] == "not found"
    assert client.get("/").json["protocols"] == ["mlflow"]


def test_unknown_protocol_is_a_declaration_error(app: hml.HmlApp) -> None:
    app.inference.protocols = ("v2", "grpc")
    with pytest.raises(DeclarationError, match=r"unknown protocol.*'grpc'.*choose from v2"):
        app.inference.flask  # noqa: B018
    assert issubclass(DeclarationError, HypermodelError)


def test_index_and_openapi_list_the_protocols(client: Any) -> None:
    index = client.get("/").json
    assert index["protocols"] == ["v2", "mlflow", "hypergol"]
    assert "routes" in index and "models" in index  # the index keeps its content
    paths = client.get("/openapi.json").json["paths"]
    assert "post" in paths["/v2/models/{name}/infer"]
    assert "get" in paths["/v2/health/ready"]


def test_metrics_count_v2_requests(client: Any) -> None:
    _infer(client, "wine-num", _x())
    text = client.get("/metrics").data.decode()
    assert 'route="/v2/models/<name>/infer"' in text
