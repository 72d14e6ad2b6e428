"""Standard inference protocols served beside the app's own routes, and what they share.

Three protocols, each switchable with ``inference_app.protocols`` (all on by default)::

    app.inference.protocols = ("v2", "mlflow")     # before serving: no Hypergol contract

- ``v2``: the Open Inference Protocol (KServe v2 REST): ``/v2``, ``/v2/health/*``,
  ``/v2/models/<name>[/versions/<v>][/ready|/infer]`` (serving/v2.py).
- ``mlflow``: MLflow's scoring protocol: ``POST /invocations``, ``GET /ping``, ``/health``,
  ``/version`` (serving/mlflow_protocol.py).
- ``hypergol``: Hypergol's serving contract: ``GET /`` also answers ``"model"`` (the long
  name) and ``output_route`` declares a list-in/list-out ``POST /output``
  (serving/hypergol_contract.py).

The v2 and MLflow protocols answer with the models the app loaded: a ``ModelContainer`` whose
recorded features (``features_numeric`` then ``features_categorical``) name the inputs. A
model without recorded features takes positional rows as wide as the estimator's
``n_features_in_``. Rows with categorical features go through ``build_features`` (one-hot
encoding with the values recorded at training); numeric rows go to the estimator as one
float64 matrix.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import DeclarationError
from .errors import RequestError, rejects_input, short
from .schema import FLOAT32_MAX

if TYPE_CHECKING:
    from flask import Flask, Response

    from .app import HmlInferenceApp

log = logging.getLogger("hypermodel.serving")

PROTOCOLS = ("v2", "mlflow", "hypergol")
MAX_ROWS = 100_000  # rows in one request: a 1 MiB body holds fewer; a bound for CSV and shapes
NUMERIC, CATEGORICAL = "numeric", "categorical"


def enabled_protocols(inference_app: HmlInferenceApp) -> tuple[str, ...]:
    """The protocols ``inference_app.protocols`` switches on, checked against PROTOCOLS."""
    chosen = getattr(inference_app, "protocols", PROTOCOLS)
    if isinstance(chosen, str):
        chosen = (chosen,)
    chosen = tuple(chosen or ())
    unknown = [p for p in chosen if p not in PROTOCOLS]
    if unknown:
        raise DeclarationError(
            f"inference app '{inference_app.app.name}': unknown protocol(s) "
            f"{', '.join(map(repr, unknown))} in inference_app.protocols; choose from "
            f"{', '.join(PROTOCOLS)} (or () for none)"
        )
    return chosen


def add_protocols(app: Flask, inference_app: HmlInferenceApp) -> None:
    """Register the switched-on protocols' routes on the Flask app (from create_flask_app)."""
    chosen = enabled_protocols(inference_app)
    served = ServedModels(app, inference_app)
    app.extensions["hypermodel"]["protocols"] = chosen
    paths: dict[str, dict[str, Any]] = {}
    if "v2" in chosen:
        from .v2 import add_v2_routes

        paths.update(add_v2_routes(app, served))
    if "mlflow" in chosen:
        from .mlflow_protocol import add_mlflow_routes

        paths.update(add_mlflow_routes(app, served))
    if chosen:
        _list_in_documents(app, inference_app, chosen, paths)


def add_rule(
    app: Flask, path: str, endpoint: str, view: Callable[..., Any], methods: list[str]
) -> None:
    """A protocol route: its lineage headers are the ones its view sets (none for health)."""
    app.extensions["hypermodel"]["declared"].add(endpoint)
    app.add_url_rule(path, endpoint, view, methods=methods)


def _list_in_documents(
    app: Flask, inference_app: HmlInferenceApp, chosen: tuple[str, ...], paths: dict[str, Any]
) -> None:
    """``/`` names the protocols on (and, for Hypergol's clients, the served model's long
    name as ``"model"``); ``/openapi.json`` lists their paths."""
    from .server import json_response

    index: Any = app.view_functions["hml_index"]
    openapi: Any = app.view_functions["hml_openapi"]

    def index_with_protocols() -> Response:
        response = index()
        body = _json_of(response)
        body["protocols"] = list(chosen)
        if "hypergol" in chosen:
            from .hypergol_contract import served_long_name

            body["model"] = served_long_name(inference_app)
        return json_response(body, response.status_code)

    def openapi_with_protocols() -> Response:
        response = openapi()
        document = _json_of(response)
        for path, operations in paths.items():
            document["paths"].setdefault(path, {}).update(operations)
        return json_response(document, response.status_code)

    app.view_functions["hml_index"] = index_with_protocols
    app.view_functions["hml_openapi"] = openapi_with_protocols


def _json_of(response: Any) -> dict[str, Any]:
    import orjson

    data = orjson.loads(response.get_data())
    return data if isinstance(data, dict) else {"value": data}


def operation(summary: str, request: bool = False) -> dict[str, Any]:
    """A minimal OpenAPI operation for a protocol path."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    found: dict[str, Any] = {
        "summary": summary,
        "tags": ["protocols"],
        "responses": {
            "200": {"description": "success"},
            "400": {"description": "invalid request", **error},
            "404": {"description": "unknown model or version", **error},
        },
    }
    if request:
        found["requestBody"] = {"required": True, "content": {"application/json": {}}}
    return found


# -- the models the protocols serve ---------------------------------------------------------------
@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # NUMERIC or CATEGORICAL
    datatype: str  # the v2 datatype its values take (FP64, INT64, BOOL, BYTES)


class TabularModel:
    """One loaded ModelContainer seen as a table-in, array-out function."""

    def __init__(self, name: str, container: Any) -> None:
        self.name = name
        self.container = container
        estimator = getattr(container, "model", None)
        self.estimator = estimator
        self.names_in = _names_in(estimator)
        numeric = list(getattr(container, "features_numeric", None) or [])
        categorical = list(getattr(container, "features_categorical", None) or [])
        if not numeric and not categorical and self.names_in is not None:
            numeric = list(self.names_in)  # the estimator was fitted on named columns
        self.features = [Feature(n, NUMERIC, "FP64") for n in numeric] + [
            Feature(c, CATEGORICAL, _categorical_datatype(container, c)) for c in categorical
        ]
        self.categorical = bool(categorical)
        width = getattr(estimator, "n_features_in_", None)
        self.width: int | None = len(self.features) or (int(width) if width else None)
        self.named = bool(self.features)
        self.positions = {f.name: i for i, f in enumerate(self.features)}
        self.methods = ["predict"] + (
            ["predict_proba"] if callable(getattr(estimator, "predict_proba", None)) else []
        )

    @property
    def version(self) -> str:
        reference = getattr(self.container, "reference", None)
        return str(getattr(reference, "version", "") or "")

    @property
    def platform(self) -> str:
        module = type(self.estimator).__module__ if self.estimator is not None else "unknown"
        return module.split(".")[0]

    def feature_list(self) -> str:
        if self.named:
            return ", ".join(f.name for f in self.features)
        return f"{self.width} unnamed columns" if self.width else "unknown columns"

    # -- rows in ----------------------------------------------------------------------------------
    def from_columns(self, columns: dict[str, list[Any]], rows: int) -> Any:
        """Named columns (every feature, ``rows`` values each) -> predictions input."""
        missing = [f.name for f in self.features if f.name not in columns]
        if missing:
            raise RequestError(
                f"model '{self.name}' needs the features {', '.join(missing)}: send every "
                f"feature ({self.feature_list()})"
            )
        for feature in self.features:
            _check_values(self, feature, columns[feature.name])
        if self.categorical:
            return self._frame({f.name: columns[f.name] for f in self.features})
        import numpy as np

        matrix = np.empty((rows, len(self.features)), dtype=np.float64)
        for i, feature in enumerate(self.features):
            matrix[:, i] = columns[feature.name]
        return self._numeric(matrix)

    def from_rows(self, rows: list[Any]) -> Any:
        """Positional rows (lists, features in order) -> predictions input."""
        width = self.width
        for i, row in enumerate(rows):
            if type(row) is not list:
                raise RequestError(
                    f"row {i} is {_kind(row)}: send each row as a list of {width or 'the'} "
                    f"values ({self.feature_list()})"
                )
            if width is not None and len(row) != width:
                raise RequestError(
                    f"row {i} has {len(row)} values but model '{self.name}' takes {width} "
                    f"({self.feature_list()})"
                )
        if width is None:
            width = len(rows[0]) if rows else 0
            if any(len(row) != width for row in rows):
                raise RequestError("rows have different lengths: send rows of equal length")
        if self.categorical:
            columns = {f.name: [row[i] for row in rows] for i, f in enumerate(self.features)}
            return self.from_columns(columns, len(rows))
        flat = [value for row in rows for value in row]
        where = "a row" if len(rows) == 1 else "the rows"
        _check_numbers(flat, f"{where} of model '{self.name}'", self.feature_list())
        import numpy as np

        return self._numeric(np.asarray(flat, dtype=np.float64).reshape(len(rows), width))

    def from_matrix(self, matrix: Any) -> Any:
        """A float64 matrix (rows x features, already checked) -> predictions input."""
        if self.categorical:
            columns = {f.name: matrix[:, i].tolist() for i, f in enumerate(self.features)}
            return self.from_columns(columns, len(matrix))
        return self._numeric(matrix)

    def _numeric(self, matrix: Any) -> Any:
        import numpy as np

        if matrix.size and np.abs(matrix).max() > FLOAT32_MAX:
            raise RequestError(_out_of_range(float(matrix.flat[np.abs(matrix).argmax()])))
        if self.names_in is None:
            return matrix
        pd = _pandas()  # fitted on a named frame: sklearn wants the same names back
        return pd.DataFrame(matrix, columns=[f.name for f in self.features] or self.names_in)

    def _frame(self, columns: dict[str, list[Any]]) -> Any:
        pd = _pandas()
        built = self.container.build_features(pd.DataFrame(columns))
        return built if self.names_in is not None else built.to_numpy(dtype="float64")

    # -- predictions out --------------------------------------------------------------------------
    def call(self, features: Any, method: str = "predict") -> Any:
        """The estimator's ``method`` on ``features``; its ValueError is the client's (422)."""
        import numpy as np

        fn = self.container.predict if method == "predict" else getattr(self.estimator, method)
        try:
            return np.asarray(fn(features))
        except ValueError as exc:
            if not rejects_input(exc):
                raise
            detail = short(exc)
            log.info("model '%s' rejected the input: %s", self.name, detail)
            raise RequestError(f"the model rejected the input: {detail}", 422) from None


class ServedModels:
    """The app's loaded models as TabularModels, rebuilt when a model is reloaded."""

    def __init__(self, app: Flask, inference_app: HmlInferenceApp) -> None:
        self.app = app
        self.inference_app = inference_app
        self._cache: dict[str, tuple[Any, Any, TabularModel]] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self.inference_app.app.models)

    def container(self, name: str) -> Any:
        models = self.inference_app.app.models
        if name not in models:
            raise RequestError(
                f"model '{name}' is not served here; models: {', '.join(self.names) or 'none'}",
                404,
            )
        return models[name]

    def tabular(self, name: str) -> TabularModel:
        """The model ``name`` (404 naming the choices when unknown, 503 when not loaded)."""
        container = self.container(name)
        if not getattr(container, "is_loaded", container is not None):
            raise RequestError(
                f"model '{name}' is not loaded yet: retry when /readyz says ready", 503
            )
        if not callable(getattr(container, "build_features", None)):
            raise RequestError(
                f"model '{name}' is a {type(container).__name__}, not a ModelContainer of "
                "feature rows: call the route the app declares for it"
            )
        key = (getattr(container, "model", None), getattr(container, "reference", None))
        cached = self._cache.get(name)
        if cached is not None and cached[0] is key[0] and cached[1] is key[1]:
            return cached[2]
        model = TabularModel(name, container)
        self._cache[name] = (key[0], key[1], model)
        return model

    def set_lineage(self, environ: dict[str, Any], name: str) -> None:
        """The response about model ``name`` carries its lineage headers."""
        lineage = self.app.extensions["hypermodel"]["lineage"]
        environ["hml.lineage"] = lineage.headers((name,))


# -- checks ---------------------------------------------------------------------------------------
_NUMBER_TYPES = frozenset({int, float})
_CATEGORY_TYPES = frozenset({str, int, float, bool, type(None)})


def _check_values(model: TabularModel, feature: Feature, values: list[Any]) -> None:
    if feature.kind == NUMERIC:
        _check_numbers(values, f"feature '{feature.name}'", "numbers")
        return
    if not set(map(type, values)) <= _CATEGORY_TYPES:
        bad = next(v for v in values if type(v) not in _CATEGORY_TYPES)
        raise RequestError(
            f"feature '{feature.name}' is categorical: expected a string or a number, got "
            f"{_kind(bad)}"
        )


def _check_numbers(values: list[Any], where: str, expected: str) -> None:
    """Numbers only (JSON true/false are not numbers), finite."""
    kinds = set(map(type, values))
    if not kinds <= _NUMBER_TYPES:
        bad = next(v for v in values if type(v) not in _NUMBER_TYPES)
        raise RequestError(f"{where}: expected numbers ({expected}), got {_kind(bad)}")
    if float in kinds and not all(map(math.isfinite, values)):
        bad = next(v for v in values if not math.isfinite(v))
        raise RequestError(f"{where}: {bad} is not a finite number: send finite numbers")
    if values and max(map(abs, values)) > FLOAT32_MAX:
        raise RequestError(f"{where}: {_out_of_range(max(values, key=abs))}")


def _out_of_range(value: float) -> str:
    # as the typed routes: scikit-learn computes in float32, so larger numbers are refused
    # here, naming the value, rather than failing inside the model
    return (
        f"{value:g} is out of range: numbers must be within ±{FLOAT32_MAX:g} (float32, what "
        "the model computes in)"
    )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _names_in(estimator: Any) -> list[str] | None:
    names = getattr(estimator, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else None


def _categorical_datatype(container: Any, column: str) -> str:
    values = (getattr(container, "distributions", None) or {}).get("categorical", {}).get(column)
    kinds = {type(v) for v in values or ()}
    if kinds == {bool}:
        return "BOOL"
    if kinds == {int}:
        return "INT64"
    if kinds and kinds <= {int, float}:
        return "FP64"
    return "BYTES"


def _pandas() -> Any:
    from .._lazy import require

    return require("pandas", "dev", "serving models with categorical or named features")
