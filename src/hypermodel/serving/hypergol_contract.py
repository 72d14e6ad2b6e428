"""Hypergol's serving contract: ``GET /`` answers the model's long name, and ``POST /output``
takes a JSON list of input records and answers the list of outputs.

A Hypergol client keeps working against this server::

    long_name = requests.get(url).json()["model"]
    response = requests.post(f"{url}/output", data=json.dumps([v.to_data() for v in values]))
    outputs = [ExampleOutput.from_data(v) for v in response.json()]
    response.headers["x-model-long-name"]

``output_route`` declares ``/output`` in an initialiser, from what a ported Hypergol project
has: a model with its batch processor (``TensorflowModelContainer``), a list-in/list-out
function (``inference_app.batch(...)``, any ``fn(list) -> list``), a ``ModelContainer``
(feature records in, predictions out), or a decorated function of the whole list::

    output_route(inference_app, scorer, input=Reading, output=Score)

    @output_route(inference_app, input=Reading, output=Score, model="scorer")
    def outputs(readings: list[Reading]) -> list[Score]:
        ...

Each record is validated against ``input`` (a 422 names the record and the field: ``3.value``),
each output checked against ``output``. One record sent as a JSON object (not in a list) is
answered with one output object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import DeclarationError
from .errors import RequestError
from .schema import ProblemList, SchemaError, Validator, check_schema

if TYPE_CHECKING:
    from .app import HmlInferenceApp

DEFAULT_PATH = "/output"


def served_long_name(inference_app: HmlInferenceApp) -> str | None:
    """What ``GET /`` answers as ``"model"``: the long name of the model ``/output`` uses, else
    of the app's only model; the long names joined by ``;`` for several; null before loading."""
    models = inference_app.app.models
    names: Sequence[str] = next(
        (r.models for r in inference_app.routes.values() if r.extra.get("hypergol") and r.models),
        (),
    )
    names = list(names) or list(models)
    long_names = []
    for name in names:
        reference = getattr(models.get(name), "reference", None)
        long_name = getattr(reference, "long_name", None)
        if long_name:
            long_names.append(str(long_name))
    return ";".join(long_names) or None


def output_route(
    inference_app: HmlInferenceApp,
    process: Any = None,
    *,
    input: Any = None,
    output: Any = None,
    model: str | None = None,
    path: str = DEFAULT_PATH,
    name: str | None = None,
) -> Any:
    """Declare ``POST <path>`` (``/output``): a JSON list of records in, the list of what
    ``process`` answers for them out, with the model's lineage headers.

    ``process``: a model with a batch processor (``TensorflowModelContainer``), a
    ``ModelContainer``, a batch (``inference_app.batch(fn)``: ``fn`` is called in chunks of
    its ``max_batch_size``) or any function of a list that returns one output per item.
    Without it, decorate the function: ``@output_route(inference_app, input=..., output=...)``.
    ``input``/``output``: data models (BaseData) or pydantic models each record and output
    must match; without them records and outputs are plain JSON. ``model``: the model named
    in the lineage headers and on ``/`` (by default the container's, else the app's only one).
    """
    if process is None:

        def decorate(fn: Callable[[list[Any]], Sequence[Any]]) -> Callable[..., Any]:
            output_route(
                inference_app, fn, input=input, output=output, model=model, path=path, name=name
            )
            return fn

        return decorate
    _check_switched_on(inference_app, path)
    call, model_name, what = _processor(inference_app, process, model)
    inputs = Validator(check_schema(input, f"route {path} input"))
    outputs = Validator(check_schema(output, f"route {path} output"), check_numbers=False)
    endpoint = name or f"hypergol_output_{path.strip('/').replace('/', '_') or 'root'}"

    def handler(payload: Any) -> Any:
        single = type(payload) is dict
        if payload is None or not (single or type(payload) is list):
            raise RequestError(
                f"send a JSON list of input records to {path} (or one record as an object)"
            )
        records = [payload] if single else payload
        if not records:
            return []
        items = _parse(inputs, records, single) if input is not None else records
        results = call(items)
        _check_count(results, len(items), what)
        dumped = [_dump(outputs, result, output, what) for result in results]
        return dumped[0] if single else dumped

    handler.__name__ = endpoint
    inference_app.route(
        path,
        model=model_name,
        name=endpoint,
        summary=f"Hypergol contract: a list of {_name(input, 'records')} in, the list of "
        f"{_name(output, 'outputs')} out",
    )(handler)
    inference_app.routes[path].extra["hypergol"] = True
    return process


def _check_switched_on(inference_app: HmlInferenceApp, path: str) -> None:
    from .protocols import enabled_protocols

    if "hypergol" not in enabled_protocols(inference_app):
        raise DeclarationError(
            f"route {path}: the hypergol protocol is switched off in inference_app.protocols "
            f"({', '.join(enabled_protocols(inference_app)) or 'none'}): add 'hypergol' or "
            "remove the output_route declaration"
        )


def _processor(
    inference_app: HmlInferenceApp, process: Any, model: str | None
) -> tuple[Callable[[list[Any]], Sequence[Any]], str | None, str]:
    """(list -> outputs, the model for lineage, a name for errors) of what was given."""
    from .batching import Batcher

    models = inference_app.app.models
    container_name = getattr(process, "name", None) if _is_model(process) else None
    if container_name is not None and models.get(container_name) is not process:
        raise DeclarationError(
            f"model '{container_name}' is not one of app '{inference_app.app.name}''s loaded "
            "models: load it with inference_app.load_model(...) before declaring its route"
        )
    model_name = model or container_name or (next(iter(models)) if len(models) == 1 else None)
    if hasattr(process, "batchProcessor"):
        return process.predict, model_name, f"model '{container_name}'"
    if callable(getattr(process, "build_features", None)):
        return _tabular(inference_app, process), model_name, f"model '{container_name}'"
    if isinstance(process, Batcher):
        return _chunked(process), model_name, f"batch '{process.name}'"
    if callable(process):
        return process, model_name, getattr(process, "__name__", "the output function")
    raise DeclarationError(
        f"output_route needs a model with a batch processor, a ModelContainer, a batch "
        f"(inference_app.batch) or a function of a list; got {type(process).__name__}"
    )


def _is_model(process: Any) -> bool:
    return hasattr(process, "batchProcessor") or callable(getattr(process, "build_features", None))


def _tabular(inference_app: HmlInferenceApp, container: Any) -> Callable[[list[Any]], Any]:
    """Feature records (objects) or rows (lists) of a ModelContainer -> its predictions."""
    from .protocols import TabularModel

    # (the estimator, its reference, their TabularModel): one tuple, read and replaced whole,
    # so a request never pairs one version's feature layout with another's estimator
    box: list[tuple[Any, Any, TabularModel] | None] = [None]

    def predict(records: list[Any]) -> list[Any]:
        estimator, reference = container.model, container.reference  # the request's version
        entry = box[0]
        if entry is None or entry[0] is not estimator or entry[1] is not reference:
            entry = (estimator, reference, TabularModel(container.name, container))
            box[0] = entry
        model = entry[2]
        if all(type(r) is dict for r in records):
            columns = {}
            for f in model.features:
                missing = [i for i, r in enumerate(records) if f.name not in r]
                if missing:
                    raise RequestError(
                        f"record {missing[0]} lacks '{f.name}': send every feature "
                        f"({model.feature_list()})",
                        422,
                    )
                columns[f.name] = [r[f.name] for r in records]
            features = model.from_columns(columns, len(records))
        else:
            features = model.from_rows(records)
        return model.call(features).tolist()  # type: ignore[no-any-return]

    return predict


def _chunked(batcher: Any) -> Callable[[list[Any]], list[Any]]:
    def call(items: list[Any]) -> list[Any]:
        found: list[Any] = []
        size = batcher.max_batch_size
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            results = batcher.fn(chunk)
            _check_count(results, len(chunk), f"batch '{batcher.name}'")
            found.extend(results)
        return found

    return call


def _parse(inputs: Validator, records: list[Any], single: bool) -> list[Any]:
    problems = ProblemList()
    items = []
    for i, record in enumerate(records):
        try:
            items.append(inputs.parse(record))
        except SchemaError as exc:
            prefix = "" if single else f"{i}."
            problems.add([{**p, "loc": f"{prefix}{p['loc']}"} for p in exc.problems])
            problems.more += exc.more
    if problems or problems.more:
        body = SchemaError(problems).body()
        raise RequestError(body.pop("error"), 422, **body)
    return items


def _check_count(results: Any, count: int, what: str) -> None:
    try:
        found = len(results)
    except TypeError:
        raise RuntimeError(
            f"{what} must return one output per record (a list), got {type(results).__name__}"
        ) from None
    if found != count:
        raise RuntimeError(f"{what} returned {found} outputs for {count} records")


def _dump(outputs: Validator, result: Any, schema: Any, what: str) -> Any:
    try:
        return outputs.dump(result)
    except SchemaError as exc:  # the processor broke its own contract: a server bug
        raise RuntimeError(
            f"{what} returned an output that does not match {_name(schema, 'its output')}: {exc}"
        ) from exc


def _name(schema: Any, default: str) -> str:
    return str(getattr(schema, "__name__", default))
