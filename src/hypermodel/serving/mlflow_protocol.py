"""MLflow's scoring protocol for the app's loaded models: what an MLflow client sends to
``mlflow models serve`` works against this server.

::

    POST /invocations      application/json: exactly one of
                             {"dataframe_split": {"columns": [...], "data": [[...], ...]}}
                             {"dataframe_records": [{"alcohol": 13.2, ...}, ...]}
                             {"instances": [[...], ...] or [{...}, ...]}
                             {"inputs": {"alcohol": [13.2, ...], ...} or [[...], ...]}
                           text/csv: a header row naming the columns, then one row per line
                           -> {"predictions": [...]}
    GET  /ping, /health    200 once the models are loaded, else 503 with the reasons
    GET  /version          the server's version

With several models, ``?model=<name>`` or the ``x-model-name`` header chooses one. Errors are
``{"error": ..., "error_code": ..., "message": ...}``: ``error`` as on every route of this
server, ``error_code`` and ``message`` as MLflow's clients read them.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from .errors import RequestError
from .payload import read_json
from .protocols import MAX_ROWS, ServedModels, TabularModel, add_rule, operation

if TYPE_CHECKING:
    from flask import Flask, Response

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_CODES = {404: "RESOURCE_DOES_NOT_EXIST", 413: "BAD_REQUEST", 415: "BAD_REQUEST"}


def add_mlflow_routes(app: Flask, served: ServedModels) -> dict[str, Any]:
    """Register /invocations, /ping, /health and /version; returns their OpenAPI paths."""
    from flask import Response, request

    from .server import json_response

    inference_app = served.inference_app

    def invocations() -> Response:
        try:
            name = choose_model(
                served, request.args.get("model") or request.headers.get("x-model-name")
            )
            served.set_lineage(request.environ, name)
            model = served.tabular(name)
            features = read_table(model, request)
            predictions = model.call(features)
        except RequestError as exc:
            raise mlflow_error(exc) from None
        return json_response({"predictions": predictions.tolist()})

    def ping() -> Response:
        reasons = inference_app.not_ready_reasons()
        if reasons:
            return json_response({"error": "not ready", "reasons": reasons}, 503)
        return Response("\n", status=200, mimetype="application/json")

    def version() -> Response:
        from .. import __version__

        return Response(__version__, status=200, mimetype="text/plain")

    add_rule(app, "/invocations", "hml_mlflow_invocations", invocations, ["POST"])
    add_rule(app, "/ping", "hml_mlflow_ping", ping, ["GET"])
    add_rule(app, "/health", "hml_mlflow_health", ping, ["GET"])
    add_rule(app, "/version", "hml_mlflow_version", version, ["GET"])
    return {
        "/invocations": {"post": operation("MLflow scoring", request=True)},
        "/ping": {"get": operation("MLflow health")},
        "/health": {"get": operation("MLflow health")},
        "/version": {"get": operation("server version")},
    }


def mlflow_error(exc: RequestError) -> RequestError:
    """``exc`` with MLflow's ``error_code`` and ``message`` beside ``error``."""
    detail = exc.detail.get("detail")
    message = f"{exc}: {detail}" if detail else str(exc)
    code = _CODES.get(exc.status, "BAD_REQUEST" if exc.status < 500 else "INTERNAL_ERROR")
    found = RequestError(str(exc), exc.status)
    # set directly: "message" is also the name of RequestError's first parameter
    found.detail = {**exc.detail, "error_code": code, "message": message}
    return found


def choose_model(served: ServedModels, wanted: str | None) -> str:
    names = served.names
    if wanted:
        served.container(wanted)  # 404 naming the choices
        return wanted
    if len(names) == 1:
        return names[0]
    if not names:
        raise RequestError("no model is loaded yet: retry when /ping answers 200", 503)
    raise RequestError(
        f"this server serves several models ({', '.join(names)}): choose one with "
        "?model=<name> or the x-model-name header"
    )


# -- request bodies -------------------------------------------------------------------------------
def read_table(model: TabularModel, request: Any) -> Any:
    """The estimator's input from an /invocations request (JSON or CSV)."""
    mimetype = request.mimetype
    if mimetype not in ("application/json", "text/csv", ""):
        raise RequestError(
            f"content type {mimetype!r} is not supported: send application/json (with "
            f"{', '.join(FORMATS)}) or text/csv",
            415,
        )
    raw = request.get_data(cache=False)  # 413 over the app's limit
    if not raw.strip():
        raise RequestError(
            "request body is empty: send a JSON object with one of "
            f"{', '.join(FORMATS)}, or CSV with a header row"
        )
    if mimetype == "text/csv":
        return from_csv(model, raw)
    body, _ = read_json(raw)
    legacy = request.mimetype_params.get("format")  # MLflow 1's "format=pandas-split"
    if legacy in ("pandas-split", "pandas-records"):
        body = {"dataframe_" + legacy.removeprefix("pandas-"): body}
    return from_json(model, body)


def from_json(model: TabularModel, body: Any) -> Any:
    given = [key for key in FORMATS if type(body) is dict and key in body]
    if len(given) != 1:
        found = f"got {', '.join(given)}" if given else "got none of them"
        raise RequestError(f"send a JSON object with exactly one of {', '.join(FORMATS)} ({found})")
    if body.get("params"):
        raise RequestError(
            f"model '{model.name}' takes no params: send the rows only (remove \"params\")"
        )
    key = given[0]
    value = body[key]
    if key == "dataframe_split":
        return _from_split(model, value)
    if key == "dataframe_records":
        if type(value) is not list:
            raise RequestError('"dataframe_records" must be a list of records (objects)')
        return _from_records(model, value, key)
    if key == "inputs" and type(value) is dict:
        return _from_columns(model, value)
    if type(value) is not list:
        raise RequestError(
            f'"{key}" must be a list of rows (lists) or records (objects)'
            + (", or an object of columns" if key == "inputs" else "")
        )
    return _from_list(model, value, key)


def _from_split(model: TabularModel, split: Any) -> Any:
    if type(split) is not dict or type(split.get("data")) is not list:
        raise RequestError(
            '"dataframe_split" must be an object {"columns": [...], "data": [[...], ...]}'
        )
    rows = split["data"]
    _check_count(len(rows), "dataframe_split.data")
    columns = split.get("columns")
    if columns is None:
        return model.from_rows(rows)
    if type(columns) is not list or not all(type(c) is str for c in columns):
        raise RequestError('"dataframe_split.columns" must be a list of column names')
    records = []
    for i, row in enumerate(rows):
        if type(row) is not list or len(row) != len(columns):
            raise RequestError(
                f"dataframe_split.data[{i}] must be a list of {len(columns)} values, one per column"
            )
        records.append(dict(zip(columns, row, strict=True)))
    return _from_records(model, records, "dataframe_split")


def _from_list(model: TabularModel, items: list[Any], key: str) -> Any:
    _check_count(len(items), key)
    kinds = set(map(type, items))
    if kinds == {dict}:
        return _from_records(model, items, key)
    if kinds == {list}:
        return model.from_rows(items)
    if list not in kinds and dict not in kinds and model.width == 1:
        return model.from_rows([[item] for item in items])
    raise RequestError(
        f'"{key}" must hold rows (lists of {model.width or "the"} values) or records '
        "(objects by feature name), all alike; one row is [[...]]"
    )


def _from_records(model: TabularModel, records: list[Any], key: str) -> Any:
    _check_count(len(records), key)
    if not model.named:
        raise RequestError(
            f"model '{model.name}' records no feature names: send rows as lists "
            "(dataframe_split without columns, or instances as lists)"
        )
    for i, record in enumerate(records):
        if type(record) is not dict:
            raise RequestError(f"{key}[{i}] is not a record: send an object by feature name")
        unknown = [column for column in record if column not in model.positions]
        if unknown:
            raise RequestError(
                f"{key}[{i}] has unknown column(s) {', '.join(map(repr, unknown[:5]))}: model "
                f"'{model.name}' takes {model.feature_list()}"
            )
        missing = [f.name for f in model.features if f.name not in record]
        if missing:
            raise RequestError(
                f"{key}[{i}] lacks {', '.join(missing[:5])}: send every feature "
                f"({model.feature_list()})"
            )
    columns = {f.name: [record[f.name] for record in records] for f in model.features}
    return model.from_columns(columns, len(records))


def _from_columns(model: TabularModel, columns: dict[str, Any]) -> Any:
    if not model.named:
        raise RequestError(
            f"model '{model.name}' records no feature names: send \"inputs\" as a list of rows"
        )
    unknown = [column for column in columns if column not in model.positions]
    if unknown:
        raise RequestError(
            f'unknown column(s) {", ".join(map(repr, unknown[:5]))} in "inputs": model '
            f"'{model.name}' takes {model.feature_list()}"
        )
    lengths = {len(v) if type(v) is list else -1 for v in columns.values()}
    if -1 in lengths or len(lengths) > 1:
        raise RequestError(
            '"inputs" as columns must map each feature to a list of values, all of one length'
        )
    rows = lengths.pop() if lengths else 0
    _check_count(rows, "inputs")
    return model.from_columns(columns, rows)


def from_csv(model: TabularModel, raw: bytes) -> Any:
    """CSV with a header row: named columns for a model with feature names, else positional."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RequestError("the CSV body is not UTF-8: send UTF-8 text") from None
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise RequestError(f"malformed CSV: {exc}") from None
    if len(lines) < 2:
        raise RequestError("CSV needs a header row naming the columns, then one row per line")
    header, rows = lines[0], [row for row in lines[1:] if row]
    _check_count(len(rows), "the CSV")
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise RequestError(
                f"CSV row {i + 1} has {len(row)} values but the header names {len(header)} columns"
            )
    categorical = {f.name for f in model.features if f.kind != "numeric"}
    if model.named:
        records = [
            {
                column: value if column in categorical else _number(value, i + 1, column)
                for column, value in zip(header, row, strict=True)
            }
            for i, row in enumerate(rows)
        ]
        return _from_records(model, records, "CSV row")
    numbers = [
        [_number(value, i + 1, header[j]) for j, value in enumerate(row)]
        for i, row in enumerate(rows)
    ]
    return model.from_rows(numbers)


def _number(text: str, row: int, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise RequestError(
            f"CSV row {row}, column {column[:60]!r}: {shown!r} is not a number"
        ) from None


def _check_count(rows: int, where: str) -> None:
    if not 1 <= rows <= MAX_ROWS:
        raise RequestError(f"{where} has {rows} rows: send 1 to {MAX_ROWS} rows per request")
