"""The Open Inference Protocol (KServe v2 REST) for the app's loaded models.

::

    GET  /v2                                            server metadata
    GET  /v2/health/live, /v2/health/ready              200, or 503 with the reasons
    GET  /v2/models/<name>[/versions/<v>]               model metadata: inputs, outputs
    GET  /v2/models/<name>[/versions/<v>]/ready         200, or 503
    POST /v2/models/<name>[/versions/<v>]/infer         inference

An inference request sends tensors ``{"name", "shape", "datatype", "data"}`` (data row-major,
flat or nested as the shape): one input per feature, named like it (shape ``[rows]`` or
``[rows, 1]``), or one 2-D input ``[rows, features]`` whose columns are the features in
order. Outputs are ``predict`` (always) and ``predict_proba`` (a classifier's); ``outputs``
in the request chooses among them. Every error is ``{"error": "..."}`` naming the problem
and the fix: 400 for a malformed request, 404 for an unknown model or version, 422 when the
model refuses the values, 503 while a model is not loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import RequestError
from .payload import read_json
from .protocols import MAX_ROWS, NUMERIC, ServedModels, TabularModel, add_rule, operation

if TYPE_CHECKING:
    from flask import Flask, Response

MAX_DIMS = 8
_FLOATS = {"FP16": 65504.0, "FP32": 3.4028234663852886e38, "FP64": math.inf}
_INTS = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
DATATYPES = ("BOOL", *_INTS, *_FLOATS, "BYTES")
_NUMERIC_TYPES = frozenset((*_INTS, *_FLOATS))
_NUMBER = frozenset({int, float})
_DTYPES = {  # numpy dtype.kind + itemsize -> v2 datatype
    ("b", 1): "BOOL",
    ("i", 1): "INT8",
    ("i", 2): "INT16",
    ("i", 4): "INT32",
    ("i", 8): "INT64",
    ("u", 1): "UINT8",
    ("u", 2): "UINT16",
    ("u", 4): "UINT32",
    ("u", 8): "UINT64",
    ("f", 2): "FP16",
    ("f", 4): "FP32",
    ("f", 8): "FP64",
}


@dataclass
class Tensor:
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]  # flat, row-major


def add_v2_routes(app: Flask, served: ServedModels) -> dict[str, Any]:
    """Register the v2 routes; returns their OpenAPI paths."""
    from flask import request

    from .server import json_response

    inference_app = served.inference_app

    def server_metadata() -> Response:
        from .. import __version__

        return json_response(
            {
                "name": "hypermodel",
                "version": __version__,
                "extensions": [],
                "app": inference_app.app.name,
            }
        )

    def live() -> Response:
        return json_response({"live": True})

    def ready() -> Response:
        reasons = inference_app.not_ready_reasons()
        if reasons:
            return json_response({"ready": False, "error": "; ".join(reasons)}, 503)
        return json_response({"ready": True})

    def resolve(name: str, version: str | None) -> TabularModel:
        if name in inference_app.app.models:
            served.set_lineage(request.environ, name)
        model = served.tabular(name)
        if version is not None and version != model.version:
            raise RequestError(
                f"model '{name}' has no version '{version}' here: this server serves version "
                f"'{model.version}' (/v2/models/{name}/versions/{model.version}, or "
                f"/v2/models/{name} for the one served)",
                404,
            )
        return model

    def model_metadata(name: str, version: str | None = None) -> Response:
        return json_response(metadata(resolve(name, version)))

    def model_ready(name: str, version: str | None = None) -> Response:
        try:
            resolve(name, version)
        except RequestError as exc:
            if exc.status != 503:
                raise
            return json_response({"name": name, "ready": False, "error": str(exc)}, 503)
        return json_response({"name": name, "ready": True})

    def infer(name: str, version: str | None = None) -> Response:
        model = resolve(name, version)
        return json_response(answer(model, _read_body(request)))

    model_path = "/v2/models/<name>"
    versioned = "/v2/models/<name>/versions/<version>"
    for path, endpoint, view, methods in (
        ("/v2", "hml_v2_server", server_metadata, ["GET"]),
        ("/v2/health/live", "hml_v2_live", live, ["GET"]),
        ("/v2/health/ready", "hml_v2_ready", ready, ["GET"]),
        (model_path, "hml_v2_model", model_metadata, ["GET"]),
        (versioned, "hml_v2_model_version", model_metadata, ["GET"]),
        (f"{model_path}/ready", "hml_v2_model_ready", model_ready, ["GET"]),
        (f"{versioned}/ready", "hml_v2_model_version_ready", model_ready, ["GET"]),
        (f"{model_path}/infer", "hml_v2_infer", infer, ["POST"]),
        (f"{versioned}/infer", "hml_v2_infer_version", infer, ["POST"]),
    ):
        add_rule(app, path, endpoint, view, methods)
    model_doc, version_doc = "/v2/models/{name}", "/v2/models/{name}/versions/{version}"
    return {
        "/v2": {"get": operation("v2 server metadata")},
        "/v2/health/live": {"get": operation("v2 liveness")},
        "/v2/health/ready": {"get": operation("v2 readiness")},
        model_doc: {"get": operation("v2 model metadata")},
        version_doc: {"get": operation("v2 model metadata (a version)")},
        f"{model_doc}/ready": {"get": operation("v2 model readiness")},
        f"{version_doc}/ready": {"get": operation("v2 model readiness (a version)")},
        f"{model_doc}/infer": {"post": operation("v2 inference", request=True)},
        f"{version_doc}/infer": {"post": operation("v2 inference (a version)", request=True)},
    }


# -- metadata -------------------------------------------------------------------------------------
def metadata(model: TabularModel) -> dict[str, Any]:
    if model.named:
        inputs = [{"name": f.name, "datatype": f.datatype, "shape": [-1]} for f in model.features]
    else:
        inputs = [{"name": "input-0", "datatype": "FP64", "shape": [-1, model.width or -1]}]
    classes = getattr(model.estimator, "classes_", None)
    outputs = [{"name": "predict", "datatype": _label_datatype(classes), "shape": [-1]}]
    if "predict_proba" in model.methods:
        width = len(classes) if classes is not None else -1
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, width]})
    return {
        "name": model.name,
        "versions": [model.version] if model.version else [],
        "platform": model.platform,
        "inputs": inputs,
        "outputs": outputs,
    }


def _label_datatype(classes: Any) -> str:
    if classes is None:
        return "FP64"
    import numpy as np

    return datatype_of(np.asarray(classes).dtype)


def datatype_of(dtype: Any) -> str:
    return _DTYPES.get((dtype.kind, dtype.itemsize), "BYTES")


# -- inference ------------------------------------------------------------------------------------
def _read_body(request: Any) -> dict[str, Any]:
    raw = request.get_data(cache=False)  # 413 over the app's limit
    if not raw.strip():
        raise RequestError(
            'request body is empty: send an inference request {"inputs": [{"name": ..., '
            '"shape": [...], "datatype": ..., "data": [...]}]}'
        )
    body, _ = read_json(raw)
    if type(body) is not dict:
        raise RequestError(
            'an inference request is a JSON object with "inputs" (a list of tensors)'
        )
    return body  # type: ignore[no-any-return]


def answer(model: TabularModel, body: dict[str, Any]) -> dict[str, Any]:
    """The v2 inference response to ``body`` (RequestError when it is not a valid request)."""
    request_id = body.get("id")
    if request_id is not None and type(request_id) is not str:
        raise RequestError('"id" must be a string: it is echoed in the response')
    _refuse_binary(body.get("parameters"), "the request")
    raw_inputs = body.get("inputs")
    if type(raw_inputs) is not list or not raw_inputs:
        raise RequestError(
            '"inputs" must be a non-empty list of tensors {"name", "shape", "datatype", '
            f"\"data\"}}: model '{model.name}' takes {_expected(model)}"
        )
    methods = _requested_outputs(model, body.get("outputs"))
    features = model_input(model, [tensor(raw, i) for i, raw in enumerate(raw_inputs)])
    outputs = [output_tensor(method, model.call(features, method)) for method in methods]
    found: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
    if request_id is not None:
        found["id"] = request_id
    found["outputs"] = outputs
    return found


def _requested_outputs(model: TabularModel, requested: Any) -> list[str]:
    if requested is None:
        return ["predict"]
    if type(requested) is not list or not requested:
        raise RequestError(
            f'"outputs" must be a non-empty list of {{"name": ...}}; model \'{model.name}\' '
            f"has the outputs {', '.join(model.methods)}"
        )
    names = []
    for i, item in enumerate(requested):
        name = item.get("name") if type(item) is dict else None
        if name not in model.methods:
            shown = repr(name) if type(name) is str else f"outputs[{i}]"
            raise RequestError(
                f"unknown output {shown}: model '{model.name}' has the outputs "
                f"{', '.join(model.methods)}"
            )
        _refuse_binary(item.get("parameters"), f"output '{name}'")
        if name not in names:
            names.append(name)
    return names


def _refuse_binary(parameters: Any, where: str) -> None:
    if parameters is None:
        return
    if type(parameters) is not dict:
        raise RequestError(f'"parameters" of {where} must be a JSON object')
    if any(key.startswith("binary_data") for key in parameters):
        raise RequestError(
            f"{where} asks for binary tensor data, which this server does not support: send "
            "and receive tensors as JSON data"
        )


def tensor(raw: Any, index: int) -> Tensor:
    """``inputs[index]`` checked: name, shape, datatype, and data matching both."""
    if type(raw) is not dict:
        raise RequestError(
            f'inputs[{index}] is not a tensor: send {{"name", "shape", "datatype", "data"}}'
        )
    name = raw.get("name")
    if type(name) is not str or not name:
        raise RequestError(f'inputs[{index}] has no "name": name it like the feature it holds')
    shape = raw.get("shape")
    if (
        type(shape) is not list
        or not 1 <= len(shape) <= MAX_DIMS
        or any(type(d) is not int or d < 0 for d in shape)
    ):
        raise RequestError(
            f"input '{name}': shape must be a list of 1 to {MAX_DIMS} non-negative integers "
            f"(e.g. [rows] or [rows, features]), got {_short_json(shape)}"
        )
    datatype = raw.get("datatype")
    if datatype not in DATATYPES:
        raise RequestError(
            f"input '{name}': datatype {_short_json(datatype)} is not a v2 datatype; use one "
            f"of {', '.join(DATATYPES)}"
        )
    _refuse_binary(raw.get("parameters"), f"input '{name}'")
    if "data" not in raw:
        raise RequestError(f"input '{name}' has no \"data\": send its values, row-major")
    data = _flatten(raw["data"], shape, name)
    count = math.prod(shape)
    if len(data) != count:
        raise RequestError(
            f"input '{name}' has shape {shape} ({count} values) but its data holds "
            f"{len(data)}: make the shape and the data agree"
        )
    _check_datatype(data, datatype, name)
    return Tensor(name, shape, datatype, data)


def _flatten(data: Any, shape: list[int], name: str) -> list[Any]:
    """Row-major values of ``data``: a flat list, a scalar, or lists nested as ``shape``."""
    if type(data) is not list:
        return [data]
    if list not in set(map(type, data)):
        return data  # flat, row-major
    level: list[Any] = [data]
    for depth, size in enumerate(shape):
        below: list[Any] = []
        for item in level:
            if type(item) is not list or len(item) != size:
                raise RequestError(
                    f"input '{name}': nested data does not match shape {shape} (dimension "
                    f"{depth} should hold {size} values): nest the data as the shape says, or "
                    "send it flat, row-major"
                )
            below.extend(item)
        level = below
    if list in set(map(type, level)):
        raise RequestError(
            f"input '{name}': data is nested deeper than shape {shape}: make them agree"
        )
    return level


def _check_datatype(data: list[Any], datatype: str, name: str) -> None:
    kinds = set(map(type, data))
    if datatype in _FLOATS:
        if not kinds <= _NUMBER:
            _mismatch(data, datatype, name, _NUMBER, "numbers")
        limit = _FLOATS[datatype]
        if float in kinds and not all(map(math.isfinite, data)):
            bad = next(v for v in data if not math.isfinite(v))
            raise RequestError(
                f"input '{name}': {bad} is not a finite number: send finite {datatype} values"
            )
        if data and limit != math.inf and max(map(abs, data)) > limit:
            raise RequestError(
                f"input '{name}': {max(data, key=abs)} is out of range for {datatype} "
                f"(|x| <= {limit:g}): send smaller values or a wider datatype (FP64)"
            )
    elif datatype in _INTS:
        if not kinds <= {int}:
            _mismatch(data, datatype, name, {int}, "integers")
        low, high = _INTS[datatype]
        if data and (min(data) < low or max(data) > high):
            bad = min(data) if min(data) < low else max(data)
            raise RequestError(
                f"input '{name}': {bad} is out of range for {datatype} ({low}..{high})"
            )
    elif datatype == "BOOL":
        if not kinds <= {bool}:
            _mismatch(data, datatype, name, {bool}, "true or false")
    elif not kinds <= {str}:  # BYTES: strings in JSON
        _mismatch(data, datatype, name, {str}, "strings")


def _mismatch(data: list[Any], datatype: str, name: str, allowed: Any, what: str) -> None:
    bad = next(v for v in data if type(v) not in allowed)
    raise RequestError(
        f"input '{name}' is {datatype} but holds {_short_json(bad)}: {datatype} data must be "
        f"{what}; fix the data or the datatype"
    )


def model_input(model: TabularModel, tensors: list[Tensor]) -> Any:
    """The estimator's input from the request's tensors (one per feature, or one 2-D)."""
    first = tensors[0]
    width = model.width
    if len(tensors) == 1 and len(first.shape) == 2 and not _is_feature_column(model, first):
        n_rows, n_columns = first.shape
        if width is not None and n_columns != width:
            raise RequestError(
                f"input '{first.name}' has shape {first.shape} ({n_columns} columns) but model "
                f"'{model.name}' takes {width} ({model.feature_list()}): send [rows, {width}]"
            )
        if model.categorical:
            raise RequestError(
                f"model '{model.name}' has categorical features: send one input per feature, "
                f"named like it ({model.feature_list()})"
            )
        if first.datatype not in _NUMERIC_TYPES:
            raise RequestError(
                f"datatype mismatch: input '{first.name}' is {first.datatype} but model "
                f"'{model.name}' takes numbers: send FP64 (or another FP, INT or UINT type)"
            )
        _check_rows(n_rows, first.name)
        import numpy as np

        return model.from_matrix(
            np.asarray(first.data, dtype=np.float64).reshape(n_rows, n_columns)
        )
    if not model.named:
        raise RequestError(
            f"model '{model.name}' records no feature names: send one input of shape "
            f"[rows, {width or 'features'}] (datatype FP64)"
        )
    columns_by_name: dict[str, list[Any]] = {}
    rows: int | None = None
    for t in tensors:
        position = model.positions.get(t.name)
        if position is None:
            raise RequestError(
                f"unknown input '{t.name}': model '{model.name}' takes {_expected(model)}"
            )
        if t.name in columns_by_name:
            raise RequestError(f"input '{t.name}' is given twice: send each feature once")
        if len(t.shape) > 2 or (len(t.shape) == 2 and t.shape[1] != 1):
            raise RequestError(
                f"input '{t.name}' has shape {t.shape}: a feature's input is [rows] or [rows, 1]"
            )
        if rows is not None and t.shape[0] != rows:
            raise RequestError(
                f"input '{t.name}' has {t.shape[0]} rows but the inputs before it have {rows}: "
                "send the same number of rows for every feature"
            )
        rows = t.shape[0]
        feature = model.features[position]
        if feature.kind == NUMERIC and t.datatype not in _NUMERIC_TYPES:
            raise RequestError(
                f"datatype mismatch: input '{t.name}' is {t.datatype} but feature '{t.name}' "
                "is numeric: send FP64 (or another FP, INT or UINT type)"
            )
        columns_by_name[t.name] = t.data
    assert rows is not None
    _check_rows(rows, tensors[0].name)
    return model.from_columns(columns_by_name, rows)


def _is_feature_column(model: TabularModel, t: Tensor) -> bool:
    return t.name in model.positions and t.shape[1] == 1 and len(model.features) > 1


def _check_rows(rows: int, name: str) -> None:
    if not 1 <= rows <= MAX_ROWS:
        raise RequestError(f"input '{name}' has {rows} rows: send 1 to {MAX_ROWS} rows per request")


def _expected(model: TabularModel) -> str:
    if model.named:
        return (
            f"one input per feature ({model.feature_list()}), or one input of shape "
            f"[rows, {len(model.features)}]"
        )
    return f"one input of shape [rows, {model.width or 'features'}]"


def output_tensor(name: str, values: Any) -> dict[str, Any]:
    datatype = datatype_of(values.dtype)
    flat = values.ravel()
    data: Any = flat if datatype != "BYTES" else [_text(v) for v in flat.tolist()]
    return {"name": name, "datatype": datatype, "shape": list(values.shape), "data": data}


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _short_json(value: Any) -> str:
    import orjson

    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
