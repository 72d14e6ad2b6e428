"""Input a hostile client sends, through the Flask test client and the schema directly: numbers
beyond what the model computes in, NaN and Infinity, the model's own ValueError, bodies that
would make huge 422s, deep nesting, and waitress's own refusals as JSON."""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any

import pydantic
import pytest

from hypermodel import hml
from hypermodel.data.model import BaseData
from hypermodel.serving import prod
from hypermodel.serving.model import ModelContainer
from hypermodel.serving.payload import MAX_DEPTH, read_json
from hypermodel.serving.schema import (
    FLOAT32_MAX,
    MAX_PROBLEMS,
    MAX_TEXT,
    Number,
    SchemaError,
    Validator,
    json_schema,
)


class Wine(BaseData):
    features: list[float]
    note: str | None = None


class Ranged(BaseData):
    alcohol: Annotated[float, Number(ge=0, le=20)]
    raw: Annotated[list[float], Number(finite=False)] = []
    count: int = 0
    weights: dict[str, float] = {}
    maybe: Annotated[float | None, Number(gt=0)] = None
    small: Annotated[float, Number(lt=1)] = 0.0


class Cellar(BaseData):
    wines: list[Wine]


class Strict(pydantic.BaseModel):
    x: float


class Loose(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(allow_inf_nan=True)
    x: float


class Out(BaseData):
    score: float


def _serve(app: hml.HmlApp) -> Any:
    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        model = inference_app.load_model(ModelContainer("wine-clf"))
        too_many = inference_app.batch(lambda items: [0] * (len(items) + 1), name="broken")

        @inference_app.route("/predict", input=Wine)
        def predict(wine: Wine) -> dict[str, int]:
            if wine.note == "broken batch":
                return {"cultivar": too_many(wine.features)}
            if wine.note == "pydantic":
                Strict(x="nope")  # type: ignore[arg-type]  # a handler bug, not the client's
            return {"cultivar": int(model.predict([wine.features])[0])}

        @inference_app.route("/cellar", input=Cellar, model="wine-clf")
        def cellar(c: Cellar) -> dict[str, int]:
            return {"n": len(c.wines)}

        @inference_app.route("/strict", input=Strict, model="wine-clf")
        def strict(s: Strict) -> dict[str, float]:
            return {"x": s.x}

        @inference_app.route("/loose", input=Loose, model="wine-clf")
        def loose(s: Loose) -> dict[str, Any]:
            return {"nan": math.isnan(s.x)}

        @inference_app.route("/echo", model="wine-clf")
        def echo(payload: Any) -> Any:
            return {"got": payload}

        @inference_app.route("/nan-out", output=Out, model="wine-clf")
        def nan_out(payload: Any) -> Out:
            return Out(score=float("nan"))

    return app.inference.build().test_client()


@pytest.fixture
def client(app: hml.HmlApp, published: ModelContainer) -> Any:
    return _serve(app)


@pytest.fixture
def features(wine: Any) -> list[float]:
    return [float(v) for v in wine.data.iloc[0]]


def _post(client: Any, path: str, raw: bytes) -> Any:
    return client.post(path, data=raw, content_type="application/json")


# -- numbers: decided by the schema ------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "msg"),
    [
        (b"1.7e308", "1.7e+308 is out of range: must be <= 3.40282e+38"),
        (b"-1.7e308", "-1.7e+308 is out of range: must be >= -3.40282e+38"),
        (b"1e39", "1e+39 is out of range"),
        (b"1" + b"0" * 39, "1e+39 is out of range"),  # an integer literal beyond 64 bits
        (b"1e400", "expected a finite number, got Infinity"),
        (b"NaN", "expected a finite number, got NaN"),
        (b"Infinity", "expected a finite number, got Infinity"),
        (b"-Infinity", "expected a finite number, got -Infinity"),
    ],
)
def test_non_finite_and_out_of_range_numbers_are_422_naming_the_field(
    client: Any, features: list[float], raw: bytes, msg: str
) -> None:
    body = b'{"features": [1.0, ' + raw + b"" + b", 1.0" * 11 + b"]}"
    response = _post(client, "/predict", body)
    assert response.status_code == 422, response.data
    assert response.json["problems"] == [
        {"loc": "features.1", "msg": response.json["problems"][0]["msg"]}
    ]
    assert msg in response.json["problems"][0]["msg"]


def test_the_largest_float32_and_plain_numbers_pass(client: Any, features: list[float]) -> None:
    edge = [FLOAT32_MAX, -FLOAT32_MAX, *features[2:]]
    assert client.post("/predict", json={"features": edge}).status_code == 200
    assert client.post("/predict", json={"features": [int(v) for v in features]}).status_code == 200


def test_number_options_on_fields() -> None:
    v = Validator(Ranged)

    def problems(payload: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            v.parse({"alcohol": 10.0, **payload})
        except SchemaError as exc:
            return exc.problems
        return []

    assert problems({}) == []
    assert problems({"alcohol": -1}) == [
        {"loc": "alcohol", "msg": "-1 is out of range: must be >= 0"}
    ]
    assert problems({"alcohol": 21.5})[0]["msg"] == "21.5 is out of range: must be <= 20"
    assert problems({"alcohol": math.nan})[0]["msg"] == "expected a finite number, got NaN"
    # finite=False lifts the defaults: NaN, Infinity and float64 numbers pass
    assert problems({"raw": [math.nan, math.inf, 1.7e308, -1e300]}) == []
    assert problems({"count": 2**63})[0] == {
        "loc": "count",
        "msg": "9223372036854775808 is out of range: must be <= 9223372036854775807",
    }
    assert problems({"count": -(2**63)}) == []
    assert problems({"weights": {"a": 1.0, "b": math.inf}}) == [
        {"loc": "weights.b", "msg": "expected a finite number, got Infinity"}
    ]
    assert problems({"weights": {"a": "x"}})[0]["msg"] == "expected number, got string"
    assert problems({"maybe": None}) == [] and problems({"maybe": 0.5}) == []
    assert problems({"maybe": 0})[0] == {"loc": "maybe", "msg": "0 is out of range: must be > 0"}
    assert problems({"small": 1})[0]["msg"] == "1 is out of range: must be < 1"
    assert problems({"small": -math.inf})[0]["msg"] == "expected a finite number, got -Infinity"
    # a list is checked in a few passes over it: NaN or Infinity anywhere is still found
    wine = Validator(Wine)
    for bad, where in (
        ([5.0, math.nan], 1),
        ([math.nan, 5.0], 0),
        ([1, math.inf], 1),
        ([-math.inf, 1.0], 0),
        ([2.0, 1e39, 3], 1),
    ):
        with pytest.raises(SchemaError) as caught:
            wine.parse({"features": bad})
        assert [p["loc"] for p in caught.value.problems] == [f"features.{where}"]
    assert wine.parse({"features": []}).features == []
    # outputs are type-checked only
    assert Validator(Out, check_numbers=False).dump({"score": math.nan}) == {"score": math.nan}


def test_number_options_in_openapi() -> None:
    components: dict[str, Any] = {}
    json_schema(Ranged, components)
    props = components["Ranged"]["properties"]
    assert props["alcohol"] == {"type": "number", "minimum": 0, "maximum": 20}
    assert props["maybe"] == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "nullable": True,
    }
    assert props["raw"] == {"type": "array", "items": {"type": "number"}}
    assert (
        "alcohol" in components["Ranged"]["required"]
        and "maybe" not in components["Ranged"]["required"]
    )
    assert hml.Number is Number


def test_nan_without_a_schema_and_with_pydantic(client: Any) -> None:
    response = _post(client, "/echo", b'{"a": [1, NaN], "b": {"c": -Infinity}}')
    assert response.status_code == 422
    assert response.json["problems"] == [
        {"loc": "a.1", "msg": "expected a finite number, got NaN"},
        {"loc": "b.c", "msg": "expected a finite number, got -Infinity"},
    ]
    assert _post(client, "/strict", b'{"x": NaN}').json["problems"][0]["loc"] == "x"
    # a pydantic model that allows them in its config decides for itself
    assert _post(client, "/loose", b'{"x": NaN}').json == {"nan": True}
    # output fields are not range-checked: the model's NaN is the handler's to answer
    assert client.post("/nan-out", json={}).status_code == 200


# -- the model's own ValueError ----------------------------------------------------------------
def test_the_models_value_error_is_422(
    client: Any, features: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="hypermodel.serving"):
        response = client.post("/predict", json={"features": features[:12]})
    assert response.status_code == 422, response.json
    assert response.json == {
        "error": "the model rejected the input",
        "detail": "ValueError: X has 12 features, but DecisionTreeClassifier is expecting 13 "
        "features as input.",
    }
    assert len(response.headers["x-request-id"]) == 32 and response.headers["x-model-digest"]
    assert "the model rejected the input" in caplog.text and "Traceback" not in caplog.text


def test_value_errors_of_hypermodel_or_pydantic_are_500(client: Any, features: list[float]) -> None:
    for note in ("broken batch", "pydantic"):
        response = client.post("/predict", json={"features": features, "note": note})
        assert response.status_code == 500, (note, response.json)


def test_a_500_logs_one_line_and_the_traceback_once(
    client: Any, features: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="hypermodel.serving"):
        for i in range(3):
            response = client.post(
                "/predict",
                json={"features": features, "note": "broken batch"},
                headers={"x-request-id": f"req-{i}"},
            )
            assert response.json == {"error": "internal error", "request_id": f"req-{i}"}
    records = [r for r in caplog.records if r.name == "hypermodel.serving"]
    assert len(records) == 3
    assert [r.exc_info is not None for r in records] == [True, False, False]
    for i, record in enumerate(records):
        message = record.getMessage()
        assert f"req-{i}" in message and "returned 2 results for 1 items" in message
        assert "\n" not in message and len(message) < 600


# -- 422 amplification ----------------------------------------------------------------------------
def test_a_422_lists_20_problems_and_counts_the_rest(client: Any) -> None:
    body = b'{"features": [' + b",".join([b"{}"] * 340_000) + b"]}"
    assert len(body) < 1024 * 1024
    response = _post(client, "/predict", body)
    assert response.status_code == 422 and len(response.data) < 4096
    assert len(response.json["problems"]) == MAX_PROBLEMS
    assert response.json["more_problems"] == 340_000 - MAX_PROBLEMS
    nested = _post(
        client,
        "/cellar",
        b'{"wines": [' + b",".join([b"[]", b'{"features": "x"}'] * 40_000) + b"]}",
    )
    assert nested.status_code == 422 and len(nested.data) < 4096
    assert nested.json["more_problems"] == 80_000 - MAX_PROBLEMS
    many = client.post("/strict", json={"x": [1] * 1})  # pydantic: one problem, no count
    assert many.status_code == 422 and "more_problems" not in many.json


def test_problem_text_is_cut() -> None:
    long_key = "k" * 5000
    error = SchemaError([{"loc": long_key, "msg": "m" * 5000}] * 30)
    assert error.more == 10 and len(error.problems) == MAX_PROBLEMS
    assert all(len(p["loc"]) <= MAX_TEXT and len(p["msg"]) <= MAX_TEXT for p in error.problems)
    assert error.body()["more_problems"] == 10


def test_pydantic_problems_are_capped() -> None:
    class Many(pydantic.BaseModel):
        xs: list[int]

    with pytest.raises(SchemaError) as caught:
        Validator(Many).parse({"xs": ["a"] * 1000})
    assert len(caught.value.problems) == MAX_PROBLEMS and caught.value.more == 1000 - MAX_PROBLEMS


# -- early refusals ---------------------------------------------------------------------------
def test_deep_nesting_is_400_json(client: Any) -> None:
    for path, raw in (
        ("/echo", b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)),
        ("/echo", b"[" * 5000 + b"]" * 5000),
        ("/predict", b'{"features": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
        ("/echo", b"[NaN, " + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"]"),
    ):
        response = _post(client, path, raw)
        assert response.status_code == 400, response.data
        assert response.json == {
            "error": "malformed JSON",
            "detail": f"nested deeper than {MAX_DEPTH} levels",
        }
    deep_ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert _post(client, "/echo", deep_ok).status_code == 200


def test_the_lenient_parser_reads_only_what_it_must() -> None:
    assert read_json(b"[1, 2]") == ([1, 2], False)
    value, lenient = read_json(b'[NaN, 1e400, 18446744073709551615, 18446744073709551616, "x"]')
    assert lenient and math.isnan(value[0]) and value[1] == math.inf
    assert value[2] == 2**64 - 1 and type(value[3]) is float and value[4] == "x"
    for raw in (b"[NaN, ", b'[NaN, "\\ud800"]', b'{"\\udfff": NaN}', b"\xff NaN", b"[nan]"):
        with pytest.raises(hml.RequestError) as caught:
            read_json(raw)
        assert caught.value.status == 400 and caught.value.body()["error"] == "malformed JSON"


def test_waitress_refusals_are_the_documented_json() -> None:
    assert prod.error_body(413, "Request Entity Too Large", "exceeds max_body", 1024) == {
        "error": "request body too large",
        "limit_bytes": 1024,
    }
    assert prod.error_body(400, "Bad Request", "Start line is invalid", 1024) == {
        "error": "bad request",
        "detail": "Start line is invalid",
    }
    assert prod.error_body(431, "Request Header Fields Too Large", "x", 1)["limit_bytes"] == (
        prod.MAX_HEADER_BYTES
    )
    assert prod.error_body(500, "Internal Server Error", "trace", 1) == {"error": "internal error"}


def test_waitress_options_are_safe_for_slow_clients(app: hml.HmlApp) -> None:
    options = prod.waitress_options(app.inference, threads=4)
    assert options["connection_limit"] == prod.DEFAULT_CONNECTION_LIMIT >= 1000
    assert options["channel_timeout"] == prod.DEFAULT_CHANNEL_TIMEOUT > 60
    assert options["cleanup_interval"] <= 10 and options["asyncore_use_poll"] is True
    assert options["max_request_body_size"] > app.inference.max_content_length
    import waitress.adjustments

    waitress.adjustments.Adjustments(**options)  # every name is one waitress knows


def test_run_prod_takes_connection_limits_from_options_or_env(
    app: hml.HmlApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from hypermodel.serving import server

    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(server, "serve_prod", lambda *args, **kwargs: seen.append(kwargs))
    cli = app.cli()
    result = CliRunner().invoke(cli, ["inference", "run-prod"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert seen[-1]["connection_limit"] == prod.DEFAULT_CONNECTION_LIMIT
    assert seen[-1]["channel_timeout"] == prod.DEFAULT_CHANNEL_TIMEOUT
    result = CliRunner().invoke(
        cli,
        ["inference", "run-prod", "--channel-timeout", "5"],
        env={"HML_CONNECTION_LIMIT": "50"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert (seen[-1]["connection_limit"], seen[-1]["channel_timeout"]) == (50, 5)
    bad = CliRunner().invoke(cli, ["inference", "run-prod", "--connection-limit", "0"])
    assert bad.exit_code == 2 and "--connection-limit" in bad.output


def test_serve_prod_gives_waitress_the_limits_and_json_errors(
    app: hml.HmlApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import waitress
    from waitress.channel import HTTPChannel

    from hypermodel.serving import server

    app.inference.require_models = False
    created: dict[str, Any] = {}

    class FakeServer:
        channel_class = HTTPChannel

        def print_listen(self, text: str) -> None:
            pass

        def run(self) -> None:
            created["channel"] = self.channel_class

    def create_server(wsgi: Any, **options: Any) -> FakeServer:
        created.update(options)
        return FakeServer()

    monkeypatch.setattr(waitress, "create_server", create_server)
    monkeypatch.setattr(
        prod, "raise_open_files_limit", lambda limit: created.setdefault("fds", limit)
    )
    # off the main thread: serve_prod installs no signal handlers there
    thread = threading.Thread(
        target=server.serve_prod,
        args=(app.inference, "127.0.0.1", 0, 2),
        kwargs={"connection_limit": 300, "channel_timeout": 9},
    )
    thread.start()
    thread.join(timeout=30)
    assert created["connection_limit"] == 300 and created["fds"] == 300
    assert created["channel_timeout"] == 9 and created["cleanup_interval"] == 9
    assert created["threads"] == 2 and created["asyncore_use_poll"] is True
    channel = created["channel"]
    assert issubclass(channel, HTTPChannel) and channel is not HTTPChannel
    assert channel.error_task_class.__name__ == "JsonErrorTask"


def test_the_deployment_passes_connection_limits_to_the_server(app: hml.HmlApp) -> None:
    from hypermodel.errors import DeclarationError
    from hypermodel.k8s.manifests import build_manifests

    @hml.deploy_inference(app.inference)
    def configure(deployment: hml.HmlInferenceDeployment) -> None:
        deployment.with_image("registry.example.com/wines:1")
        deployment.with_connection_limits(connection_limit=2000, channel_timeout=620)

    deployment = next(m for m in build_manifests(app) if m["kind"] == "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["HML_CONNECTION_LIMIT"] == "2000" and env["HML_CHANNEL_TIMEOUT"] == "620"
    with pytest.raises(DeclarationError, match="HML_CHANNEL_TIMEOUT"):
        app.inference.deployment_config().with_connection_limits(channel_timeout=0)
