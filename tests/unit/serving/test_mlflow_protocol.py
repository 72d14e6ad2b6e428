"""MLflow's scoring protocol through Flask's test client: every input format answers what
``container.predict`` answers on the same rows; choosing among models; refusals as 4xx JSON."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pytest

from hypermodel import __version__, hml
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
def numeric(app: hml.HmlApp) -> ModelContainer:
    return publish_numeric(app)


@pytest.fixture
def client(app: hml.HmlApp, numeric: ModelContainer) -> Any:
    return serve(app, "wine-num")


def _expected(mc: ModelContainer, records: list[dict[str, Any]]) -> list[Any]:
    return mc.predict(np.asarray([[r[f] for f in feature_names()] for r in records])).tolist()


def _numeric_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{f: r[f] for f in feature_names()} for r in records]


def _bodies(records: list[dict[str, Any]]) -> dict[str, Any]:
    names = feature_names()
    matrix = [[r[f] for f in names] for r in records]
    return {
        "dataframe_split": {"dataframe_split": {"columns": names, "data": matrix}},
        "dataframe_split without columns": {"dataframe_split": {"data": matrix}},
        "dataframe_split with index": {
            "dataframe_split": {"columns": names, "data": matrix, "index": list(range(len(matrix)))}
        },
        "dataframe_records": {"dataframe_records": _numeric_records(records)},
        "instances as rows": {"instances": matrix},
        "instances as records": {"instances": _numeric_records(records)},
        "inputs as rows": {"inputs": matrix},
        "inputs as columns": {"inputs": {f: [r[f] for r in records] for f in names}},
    }


@pytest.mark.parametrize("form", list(_bodies(rows(1))))
def test_every_json_format_matches_predict(client: Any, numeric: ModelContainer, form: str) -> None:
    records = rows(8, start=50)
    response = client.post("/invocations", json=_bodies(records)[form])
    assert response.status_code == 200, response.json
    assert response.json == {"predictions": _expected(numeric, records)}
    reference = numeric.reference
    assert reference is not None
    assert response.headers["x-model-long-name"] == reference.long_name


def _csv(records: list[dict[str, Any]], names: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(names)
    writer.writerows([[r[n] for n in names] for r in records])
    return out.getvalue().encode()


def test_csv_matches_predict(client: Any, numeric: ModelContainer) -> None:
    records = rows(12, start=120)
    body = _csv(records, feature_names())
    response = client.post("/invocations", data=body, content_type="text/csv")
    assert response.status_code == 200, response.json
    assert response.json == {"predictions": _expected(numeric, records)}
    reordered = _csv(records, list(reversed(feature_names())))  # columns by name, any order
    again = client.post("/invocations", data=reordered, content_type="text/csv; charset=utf-8")
    assert again.json == response.json


def test_legacy_pandas_split_content_type(client: Any, numeric: ModelContainer) -> None:
    records = rows(2)
    split = {"columns": feature_names(), "data": [[r[f] for f in feature_names()] for r in records]}
    response = client.post(
        "/invocations", json=split, content_type="application/json; format=pandas-split"
    )
    assert response.status_code == 200, response.json
    assert response.json == {"predictions": _expected(numeric, records)}


def test_categorical_and_positional_models(app: hml.HmlApp) -> None:
    import pandas as pd

    mixed, positional = publish_mixed(app), publish_positional(app)
    client = serve(app, "wine-mixed", "wine-pos")
    records = rows(6, start=30)
    names = [*MIXED_NUMERIC, "colour"]
    body = {"dataframe_records": [{n: r[n] for n in names} for r in records]}
    response = client.post("/invocations?model=wine-mixed", json=body)
    assert response.status_code == 200, response.json
    frame = pd.DataFrame([{n: r[n] for n in names} for r in records])
    expected = mixed.predict(mixed.build_features(frame).to_numpy(dtype="float64")).tolist()
    assert response.json == {"predictions": expected}
    as_csv = client.post(
        "/invocations?model=wine-mixed", data=_csv(records, names), content_type="text/csv"
    )
    assert as_csv.json == {"predictions": expected}

    matrix = [[r[f] for f in feature_names()] for r in records]
    by_header = client.post(
        "/invocations", json={"instances": matrix}, headers={"x-model-name": "wine-pos"}
    )
    assert by_header.status_code == 200, by_header.json
    assert by_header.json == {"predictions": positional.predict(np.asarray(matrix)).tolist()}
    csv_rows = client.post(
        "/invocations?model=wine-pos",
        data=_csv(records, feature_names()),  # the header names nothing the model knows
        content_type="text/csv",
    )
    assert csv_rows.json == by_header.json


def test_several_models_need_a_choice_naming_them(app: hml.HmlApp) -> None:
    publish_numeric(app)
    publish_positional(app)
    client = serve(app, "wine-num", "wine-pos")
    body = {"instances": [[1.0] * 13]}
    response = client.post("/invocations", json=body)
    assert response.status_code == 400
    assert "several models (wine-num, wine-pos)" in response.json["error"]
    assert "?model=<name>" in response.json["error"]
    assert response.json["error_code"] == "BAD_REQUEST"
    assert response.json["message"] == response.json["error"]
    unknown = client.post("/invocations?model=nope", json=body)
    assert unknown.status_code == 404 and "wine-num, wine-pos" in unknown.json["error"]
    assert unknown.json["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_ping_health_and_version(client: Any, app: hml.HmlApp) -> None:
    for path in ("/ping", "/health"):
        response = client.get(path)
        assert response.status_code == 200 and response.data == b"\n"
        assert response.mimetype == "application/json"
        assert "x-model-long-name" not in response.headers
    assert client.get("/version").data.decode() == __version__


def test_ping_before_the_models_load_is_503(app: hml.HmlApp) -> None:
    client = app.inference.flask.test_client()
    response = client.get("/ping")
    assert response.status_code == 503 and response.json["error"] == "not ready"
    assert response.json["reasons"]


ROW = [13.2, 1.78, 2.14, 11.2, 100.0, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050.0]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "exactly one of dataframe_split, dataframe_records, instances, inputs (got none"),
        ({"instances": [ROW], "inputs": [ROW]}, "(got instances, inputs)"),
        ([ROW], "exactly one of"),
        ({"instances": [ROW[:12]]}, "row 0 has 12 values but model 'wine-num' takes 13"),
        ({"instances": ROW}, "must hold rows"),
        ({"instances": [ROW, {"alcohol": 1}]}, "all alike"),
        ({"instances": "rows"}, "must be a list of rows"),
        ({"instances": []}, "has 0 rows"),
        ({"instances": [[*ROW[:12], "x"]]}, "expected numbers"),
        ({"instances": [[*ROW[:12], None]]}, "got null"),
        ({"instances": [[*ROW[:12], True]]}, "got a boolean"),
        ({"instances": [[*ROW[:12], 1e39]]}, "1e+39 is out of range"),
        ({"dataframe_split": [ROW]}, '"dataframe_split" must be an object'),
        ({"dataframe_split": {"columns": ["a"], "data": [ROW]}}, "must be a list of 1 values"),
        ({"dataframe_split": {"columns": [1], "data": [[1]]}}, "list of column names"),
        ({"dataframe_records": {"alcohol": 1}}, "must be a list of records"),
        ({"dataframe_records": [{"alcohol": 1.0}]}, "lacks malic_acid"),
        ({"dataframe_records": [{**dict.fromkeys(feature_names(), 1.0), "bogus": 1}]}, "'bogus'"),
        ({"dataframe_records": [ROW]}, "is not a record"),
        ({"inputs": {"alcohol": [1.0], "ash": [1.0, 2.0]}}, "all of one length"),
        ({"inputs": {"bogus": [1.0]}}, "unknown column(s) 'bogus'"),
        ({"inputs": {"alcohol": [1.0]}}, "needs the features malic_acid"),
        ({"instances": [ROW], "params": {"temperature": 1}}, "takes no params"),
    ],
)
def test_json_refusals_are_400_naming_the_fix(client: Any, body: Any, says: str) -> None:
    response = client.post("/invocations", json=body)
    assert response.status_code == 400, response.json
    assert says in response.json["error"], response.json["error"]
    assert response.json["error_code"] == "BAD_REQUEST" and response.json["message"]


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "says"),
    [
        (b"", "application/json", 400, "request body is empty"),
        (b'{"instances": [', "application/json", 400, "malformed JSON"),
        (
            b'{"instances": [[NaN' + b", 1" * 12 + b"]]}",
            "application/json",
            400,
            "nan is not a finite number",
        ),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, "malformed JSON"),
        (b'{"instances": [[1]]}', "image/png", 415, "content type 'image/png' is not supported"),
        (b"a=1", "application/x-www-form-urlencoded", 415, "send application/json"),
        (b"alcohol\n", "text/csv", 400, "CSV needs a header row"),
        (b"\xff\xfe", "text/csv", 400, "not UTF-8"),
        (b"alcohol,ash\n1,2,3\n", "text/csv", 400, "row 1 has 3 values"),
        (
            ",".join(feature_names()).encode() + b"\n" + b"x," * 12 + b"1\n",
            "text/csv",
            400,
            "'x' is not a number",
        ),
        (
            ",".join(feature_names()).encode() + b"\n" + b"nan," * 12 + b"1\n",
            "text/csv",
            400,
            "not a finite number",
        ),
        (b"bogus\n1\n", "text/csv", 400, "unknown column(s) 'bogus'"),
        (b"a\n" + b"1\n" * 200_000, "text/csv", 400, "rows per request"),
        (b"x" * (2 * 1024 * 1024), "text/csv", 413, "request body too large"),
    ],
)
def test_hostile_bodies(client: Any, raw: bytes, content_type: str, status: int, says: str) -> None:
    response = client.post("/invocations", data=raw, content_type=content_type)
    assert response.status_code == status, response.data[:300]
    assert says in response.json["error"] + str(response.json.get("detail", "")), response.json


def test_switched_off(app: hml.HmlApp, numeric: ModelContainer) -> None:
    app.inference.protocols = ("v2", "hypergol")
    client = serve(app, "wine-num")
    assert client.post("/invocations", json={"instances": [ROW]}).status_code == 404
    assert client.get("/ping").status_code == 404
    assert "/invocations" not in client.get("/openapi.json").json["paths"]
