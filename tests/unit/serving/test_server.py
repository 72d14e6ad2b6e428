"""The inference server through Flask's test client: validation, errors, lineage, metrics, readiness."""

from __future__ import annotations

import logging
from typing import Any

import pydantic
import pytest

from hypermodel import hml
from hypermodel.data.model import BaseData
from hypermodel.errors import DeclarationError, HypermodelError
from hypermodel.serving.app import HmlInferenceDeployment
from hypermodel.serving.errors import RequestError
from hypermodel.serving.model import ModelContainer


class Wine(BaseData):
    features: list[float]
    note: str | None = None


class Prediction(BaseData):
    cultivar: int


class WineIn(pydantic.BaseModel):
    alcohol: float
    proline: float = pydantic.Field(gt=0)


class WineOut(pydantic.BaseModel):
    label: str


def _serve(app: hml.HmlApp, published: ModelContainer) -> Any:
    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        model = inference_app.load_model(ModelContainer("wine-clf"))

        @inference_app.route("/predict", input=Wine, output=Prediction)
        def predict(wine: Wine) -> Prediction:
            if wine.note == "boom":
                raise ValueError("secret internals")
            if wine.note == "reject":
                raise RequestError("note 'reject' is not accepted", 409, field="note")
            if wine.note == "contract":
                return {"cultivar": "three"}  # type: ignore[return-value]
            return Prediction(cultivar=int(model.predict([wine.features])[0]))

        @inference_app.route("/label", input=WineIn, output=WineOut, model="wine-clf")
        def label(wine: WineIn) -> dict[str, str]:
            return {"label": "strong" if wine.alcohol > 13 else "light"}

        @inference_app.route("/echo", methods=["GET", "POST"])
        def echo(payload: Any) -> Any:
            return {"got": payload}

        @inference_app.flask.route("/legacy", methods=["GET"])
        def legacy() -> str:  # the seed's style: a plain Flask route
            return "ok"

    return app.inference.build().test_client()


@pytest.fixture
def client(app: hml.HmlApp, published: ModelContainer) -> Any:
    return _serve(app, published)


@pytest.fixture
def features(wine: Any) -> list[float]:
    return [float(v) for v in wine.data.iloc[0]]


def test_prediction_with_lineage_headers(
    client: Any, published: ModelContainer, features: list[float]
) -> None:
    response = client.post("/predict", json={"features": features})
    assert response.status_code == 200, response.json
    assert "x-request-id" not in response.headers  # only echoed, or on errors
    echoed = client.post("/predict", json={"features": features}, headers={"x-request-id": "abc-1"})
    assert echoed.headers["x-request-id"] == "abc-1"
    bad = client.post("/predict", json={}, headers={"x-request-id": "bad id with spaces"})
    assert bad.status_code == 422 and len(bad.headers["x-request-id"]) == 32
    assert response.json == {"cultivar": int(published.predict([features])[0])}
    ref = published.reference
    assert ref is not None
    assert response.headers["x-model-long-name"] == ref.long_name
    assert response.headers["x-model-digest"] == f"sha256:{ref.model_sha256}"
    assert response.headers["x-model-dataset"] == "0123abcd" * 5
    assert response.headers["x-model-commit"] == ref.commit
    assert response.headers["x-model-version"] == ref.version


def test_lineage_on_declared_model_route_and_seed_style_route(
    client: Any, published: ModelContainer
) -> None:
    ref = published.reference
    assert ref is not None
    assert (
        client.post("/label", json={"alcohol": 14, "proline": 1}).headers["x-model-long-name"]
        == ref.long_name
    )
    legacy = client.get("/legacy")
    assert legacy.data == b"ok" and legacy.headers["x-model-digest"] == f"sha256:{ref.model_sha256}"
    assert "x-model-long-name" not in client.get("/livez").headers


def test_malformed_json_is_400_with_reason(client: Any) -> None:
    response = client.post("/predict", data=b'{"features": [1, 2', content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"] == "malformed JSON" and response.json["detail"]
    empty = client.post("/predict", data=b"", content_type="application/json")
    assert empty.status_code == 400 and "empty" in empty.json["error"]


@pytest.mark.parametrize(
    ("body", "loc", "msg"),
    [
        ({}, "features", "field required"),
        ({"features": "abc"}, "features", "expected an array"),
        ({"features": [1.0, "x"]}, "features.1", "expected number"),
        ({"features": [1.0], "note": 5}, "note", "expected"),
        ([1, 2], "body", "expected a JSON object"),
    ],
)
def test_data_model_validation_is_422_with_problems(
    client: Any, body: Any, loc: str, msg: str
) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert response.json["error"] == "invalid request"
    assert any(p["loc"] == loc and msg in p["msg"] for p in response.json["problems"]), (
        response.json
    )


def test_pydantic_validation_is_422_with_problems(client: Any) -> None:
    response = client.post("/label", json={"alcohol": "strong", "proline": -1})
    assert response.status_code == 422
    locs = {p["loc"]: p["type"] for p in response.json["problems"]}
    assert locs == {"alcohol": "float_parsing", "proline": "greater_than"}
    assert client.post("/label", json={"alcohol": 12.0, "proline": 3}).json == {"label": "light"}


def test_oversized_body_is_413(app: hml.HmlApp, published: ModelContainer) -> None:
    app.inference.max_content_length = 1024
    client = _serve(app, published)
    response = client.post("/predict", json={"features": [1.0] * 1000})
    assert response.status_code == 413
    assert response.json == {"error": "request body too large", "limit_bytes": 1024}


def test_handler_exception_is_500_without_details(
    client: Any, caplog: pytest.LogCaptureFixture, features: list[float]
) -> None:
    with caplog.at_level(logging.ERROR, logger="hypermodel.serving"):
        response = client.post(
            "/predict",
            json={"features": features, "note": "boom"},
            headers={"x-request-id": "req-42"},
        )
    assert response.status_code == 500
    assert response.json == {"error": "internal error", "request_id": "req-42"}
    assert b"secret internals" not in response.data and b"Traceback" not in response.data
    assert "req-42" in caplog.text and "secret internals" in caplog.text


def test_output_contract_violation_is_500(client: Any, features: list[float]) -> None:
    response = client.post("/predict", json={"features": features, "note": "contract"})
    assert response.status_code == 500 and response.json["error"] == "internal error"


def test_request_error_from_handler(client: Any, features: list[float]) -> None:
    response = client.post("/predict", json={"features": features, "note": "reject"})
    assert response.status_code == 409
    assert response.json == {"error": "note 'reject' is not accepted", "field": "note"}
    with pytest.raises(ValueError, match="4xx"):
        RequestError("x", 500)


def test_unknown_route_and_wrong_method_are_json(client: Any) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json["error"] == "not found"
    wrong = client.get("/predict")
    assert wrong.status_code == 405 and wrong.json["error"] == "method not allowed"


def test_route_without_schema_gets_json_or_query(client: Any) -> None:
    assert client.post("/echo", json={"a": [1]}).json == {"got": {"a": [1]}}
    assert client.get("/echo?x=1").json == {"got": {"x": "1"}}


def test_readyz_waits_for_init_and_models(app: hml.HmlApp, published: ModelContainer) -> None:
    client = app.inference.flask.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "initialisers have not run" in response.json["reasons"]
    assert client.get("/livez").status_code == 200
    app.inference.build()  # no initialiser, no model
    assert client.get("/readyz").json["reasons"] == [
        "no model registered (app.register_model or inference_app.load_model)"
    ]
    app.register_model("wine-clf", ModelContainer("wine-clf"))
    assert client.get("/readyz").json["reasons"] == ["model 'wine-clf' is not loaded"]
    app.inference.load_model("wine-clf")
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json == {"status": "ready", "models": ["wine-clf"]}


def _sample(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_metrics_count_requests_errors_and_latency(client: Any, features: list[float]) -> None:
    for _ in range(3):
        client.post("/predict", json={"features": features})
    client.post("/predict", json={})
    client.post("/predict", data=b"{")
    text = client.get("/metrics").data.decode()
    assert _sample(text, "hml_http_requests_total", route="/predict", status="200") == 3
    assert _sample(text, "hml_http_errors_total", route="/predict", status="422") == 1
    assert _sample(text, "hml_http_errors_total", route="/predict", status="400") == 1
    assert _sample(text, "hml_http_request_duration_seconds_count", route="/predict") == 5
    assert _sample(text, "hml_model_info", model="wine-clf") == 1


def test_each_app_has_its_own_metrics(
    tmp_path: Any, published: ModelContainer, client: Any, features: list[float]
) -> None:
    client.post("/predict", json={"features": features})
    other = hml.HmlApp("other", root=str(tmp_path / "other"))
    text = other.inference.flask.test_client().get("/metrics").data.decode()
    assert _sample(text, "hml_http_requests_total", route="/predict") == 0


def test_index_and_openapi(client: Any, published: ModelContainer) -> None:
    index = client.get("/").json
    assert index["app"] == "wines" and index["ready"] is True
    assert index["models"]["wine-clf"]["long_name"] == published.reference.long_name  # type: ignore[union-attr]
    assert {r["path"] for r in index["routes"]} == {"/predict", "/label", "/echo"}
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.")
    post = doc["paths"]["/predict"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Wine"
    }
    wine = doc["components"]["schemas"]["Wine"]
    assert wine["required"] == ["features"]
    assert wine["properties"]["features"] == {"type": "array", "items": {"type": "number"}}
    assert set(post["responses"]) >= {"200", "400", "413", "422", "500"}
    assert "WineIn" in doc["components"]["schemas"]
    assert set(doc["paths"]["/echo"]) == {"get", "post"}


def test_declaration_errors(app: hml.HmlApp) -> None:
    inference = app.inference

    @inference.route("/a")
    def a(x: Any) -> Any:
        return x

    with pytest.raises(DeclarationError, match="already has a route"):
        inference.route("/a")(a)
    with pytest.raises(DeclarationError, match="built-in"):
        inference.route("/metrics")(a)
    with pytest.raises(DeclarationError, match="schema"):
        inference.route("/b", input=dict)(a)
    inference.route("/c", model="missing")(lambda x: x)
    with pytest.raises(DeclarationError, match="uses model 'missing'"):
        inference.build()


def test_failing_initialiser_is_one_clear_error(app: hml.HmlApp) -> None:
    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        raise KeyError("bucket")

    with pytest.raises(HypermodelError, match="initialiser 'init' of app 'wines' failed: KeyError"):
        app.inference.build()
    assert not app.inference.initialised


def test_deployment_config_applies_env_and_configurators(app: hml.HmlApp) -> None:
    app.with_env("LOG_LEVEL", "debug")

    @hml.deploy_inference(app.inference)
    def configure(deployment: HmlInferenceDeployment) -> None:
        deployment.with_replicas(3).with_service_type("NodePort").with_hpa(2, 5).with_empty_dir(
            "tmp", "/tmp"
        )

    cfg = app.inference.deployment_config()
    assert isinstance(cfg, HmlInferenceDeployment)
    assert (cfg.deployment_name, cfg.replicas, cfg.service_type, cfg.port) == (
        "wines-inference",
        3,
        "NodePort",
        8000,
    )
    assert (cfg.hpa_min_replicas, cfg.hpa_max_replicas) == (2, 5)
    assert cfg.env == {"LOG_LEVEL": "debug"} and cfg.volumes[0].mount_path == "/tmp"
    with pytest.raises(DeclarationError):
        cfg.with_service_type("Magic")
    with pytest.raises(DeclarationError):
        cfg.with_hpa(3, 2)


def test_undeclared_output_objects_and_unknown_methods(
    app: hml.HmlApp, published: ModelContainer
) -> None:
    @app.inference.route("/raw")
    def raw(payload: Any) -> Prediction:
        return Prediction(cultivar=2)

    app.inference.load_model(ModelContainer("wine-clf"))
    client = app.inference.build().test_client()
    assert client.post("/raw", json={}).json == {"cultivar": 2}
    assert client.open("/raw", method="BREW").status_code == 405
    text = client.get("/metrics").data.decode()
    assert _sample(text, "hml_http_requests_total", method="OTHER", status="405") == 1
    assert "BREW" not in text


def test_a_container_loaded_in_init_uses_the_app_bucket_and_joins_it(
    app: hml.HmlApp, published: ModelContainer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("HML_ROOT", str(tmp_path / "elsewhere"))  # not where the model is
    mc = ModelContainer("wine-clf")  # declared at module level in an app, no app bound

    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        mc.load("latest")

        @inference_app.route("/predict")
        def predict(payload: Any) -> Any:
            return {"ok": True}

    client = app.inference.build().test_client()
    assert app.models["wine-clf"] is mc
    assert client.get("/readyz").status_code == 200
    assert client.post("/predict", json={}).headers["x-model-long-name"] == mc.reference.long_name  # type: ignore[union-attr]


def test_lineage_header_values_cannot_inject_headers(app: hml.HmlApp, fitted: Any) -> None:
    mc = ModelContainer("wine-clf")
    mc.model = fitted
    mc.add_training_dataset("abc\r\nx-evil: 1")
    mc.publish(app)
    app.inference.load_model(ModelContainer("wine-clf"))
    app.inference.route("/p")(lambda payload: {"ok": True})
    response = app.inference.build().test_client().post("/p", json={})
    assert response.headers["x-model-dataset"] == "abc??x-evil: 1"
    assert "x-evil" not in response.headers
