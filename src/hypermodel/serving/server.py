"""The Flask app factory and the two ways to serve it (waitress for prod, Flask's server for dev).

Built-in routes: ``/livez``, ``/readyz``, ``/metrics`` (Prometheus, a registry per app), ``/``
(app, models, lineage, routes) and ``/openapi.json``. Every response of a prediction route
carries the lineage headers of the model(s) it uses. Errors are JSON: 4xx with the reason,
500 as ``{"error": "internal error", "request_id": ...}`` with one line in the server log (and
the traceback the first time its raise site fails). A ValueError the model raises on the input
is a 422 (``errors.rejects_input``); numbers are checked by the schema (``schema.Number``).
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson

from .._lazy import require
from .errors import FailureLog, RequestError, rejects_input, short
from .payload import read_json
from .reload import ADMIN_TOKEN_ENV, RELOAD_PATH, check_admin_token
from .schema import SchemaError, Validator, json_schema, non_finite_numbers

if TYPE_CHECKING:
    from flask import Flask, Response

    from .app import HmlInferenceApp, Route

log = logging.getLogger("hypermodel.serving")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
_BUILTIN_ENDPOINTS = frozenset(
    {"hml_index", "hml_livez", "hml_readyz", "hml_metrics", "hml_openapi", "hml_reload", "static"}
)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Metric labels take only known methods: a client inventing methods must not grow the registry.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Prometheus metrics of one server, in its own registry (two apps never share counters)."""

    def __init__(self) -> None:
        prom = require("prometheus_client", "serve", "the inference server's /metrics")
        self.registry = prom.CollectorRegistry()
        self.requests = prom.Counter(
            "hml_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.errors = prom.Counter(
            "hml_http_errors",
            "HTTP responses with status >= 400 by route",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = prom.Histogram(
            "hml_http_request_duration_seconds",
            "Request latency by route",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_info = prom.Gauge(
            "hml_model_info",
            "Loaded models and their lineage (value 1)",
            ["model", "version", "long_name", "digest"],
            registry=self.registry,
        )
        self.batch_size = prom.Histogram(
            "hml_batch_size",
            "Items per model call of each adaptive batch (inference_app.batch)",
            ["batch"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.registry.register(_LiveCollector(self))
        self.inference_app: HmlInferenceApp | None = None
        self._prom = prom
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        # Label children are looked up once per (route, method, status): labels() validates and
        # locks on every call, and this runs on every request. Routes, methods and statuses are
        # bounded sets, so the dict is too.
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            errors = self.errors.labels(route, str(status)) if status >= 400 else None
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
                errors,
            )
            self._children[key] = children
        requests, latency, errors = children
        requests.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()

    def observe_batch(self, name: str, size: int) -> None:
        self.batch_size.labels(name).observe(size)

    def render(self, inference_app: HmlInferenceApp) -> bytes:
        self.model_info.clear()
        for name, model in inference_app.app.models.items():
            ref = getattr(model, "reference", None)
            if ref is not None:
                self.model_info.labels(name, ref.version, ref.long_name, ref.model_sha256).set(1)
        return self._prom.generate_latest(self.registry)  # type: ignore[no-any-return]


class _LiveCollector:
    """Hot reload and drift families, read from the app's reloader and drift monitor when
    ``/metrics`` is rendered (the state lives there, not in a second set of counters)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Any:
        inference_app = self.metrics.inference_app
        if inference_app is None:
            return
        reloader = inference_app.started_reloader
        if reloader is not None and reloader.watches:
            yield from reloader.collect()
        drift = inference_app.started_drift
        if drift is not None and drift.models:
            yield from drift.collect()


def json_response(
    data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None
) -> Response:
    from flask import Response

    body = orjson.dumps(
        data, default=_to_jsonable, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    )
    return Response(body, status=status, content_type="application/json", headers=headers)


def _to_jsonable(value: Any) -> Any:
    for attr in ("to_data", "model_dump", "tolist", "item", "to_dict"):
        fn = getattr(value, attr, None)
        if callable(fn):
            return fn()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def create_flask_app(inference_app: HmlInferenceApp) -> Flask:
    """A Flask app with the built-in routes, JSON errors, metrics and lineage headers."""
    flask = require("flask", "serve", "the inference server")
    app = flask.Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = inference_app.max_content_length
    app.config["hml_inference_app"] = inference_app
    metrics = Metrics()
    metrics.inference_app = inference_app
    inference_app._state = metrics
    app.extensions["hypermodel"] = {"lineage": Lineage(inference_app), "declared": set()}
    _add_builtin_routes(app, inference_app, metrics)
    _add_hooks(app, inference_app, metrics)
    from .protocols import add_protocols  # v2, MLflow, Hypergol: switched by .protocols

    add_protocols(app, inference_app)
    for route in inference_app.routes.values():
        add_route(inference_app, app, route)
    return app


def _add_builtin_routes(app: Flask, inference_app: HmlInferenceApp, metrics: Metrics) -> None:
    from flask import Response

    def livez() -> Response:
        return json_response({"status": "ok"})

    def readyz() -> Response:
        reasons = inference_app.not_ready_reasons()
        reloader = inference_app.started_reloader
        # A failed reload leaves the old version serving: still ready, and details say why.
        details = (
            {"details": reloader.status()} if reloader is not None and reloader.watches else {}
        )
        if reasons:
            return json_response({"status": "not ready", "reasons": reasons, **details}, 503)
        body = {"status": "ready", "models": sorted(inference_app.app.models), **details}
        return json_response(body)

    def reload_view() -> Response:
        return admin_reload(inference_app)

    def metrics_view() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(
            metrics.render(inference_app), mimetype=None, content_type=CONTENT_TYPE_LATEST
        )

    def index() -> Response:
        return json_response(describe(inference_app))

    def openapi() -> Response:
        return json_response(openapi_document(inference_app))

    for path, endpoint, view in (
        ("/livez", "hml_livez", livez),
        ("/readyz", "hml_readyz", readyz),
        ("/metrics", "hml_metrics", metrics_view),
        ("/", "hml_index", index),
        ("/openapi.json", "hml_openapi", openapi),
    ):
        app.add_url_rule(path, endpoint, view, methods=["GET"])
    app.add_url_rule(RELOAD_PATH, "hml_reload", reload_view, methods=["POST"])


def admin_reload(inference_app: HmlInferenceApp) -> Response:
    """``POST /-/reload[?model=NAME]``: check the moving references now (bearer token of
    ``$HML_ADMIN_TOKEN``; without one configured the path does not exist)."""
    from flask import request
    from werkzeug.exceptions import NotFound

    token = inference_app.admin_token
    if not token:
        raise NotFound()  # the same answer as any unknown path
    if not check_admin_token(request.headers.get("Authorization"), token):
        body: dict[str, Any] = {
            "error": "unauthorized",
            "detail": f"send 'Authorization: Bearer <token>' with the server's {ADMIN_TOKEN_ENV}",
        }
        return json_response(body, 401, headers=[("WWW-Authenticate", 'Bearer realm="hml"')])
    reloader = inference_app.reloader
    names = request.args.getlist("model") or None
    unknown = [n for n in names or () if n not in reloader.watches]
    if unknown:
        following = ", ".join(sorted(reloader.watches)) or "none"
        body = {
            "error": f"model '{unknown[0]}' is not served by a moving reference",
            "detail": f"models following 'latest' or an alias: {following}",
        }
        return json_response(body, 404)
    outcomes = reloader.check(names)
    body = {"models": {o.model: o.to_dict() for o in outcomes}}
    if not outcomes:
        body["detail"] = "no model is loaded by 'latest' or an alias: nothing to reload"
    failed = [o.model for o in outcomes if o.status == "failed"]
    if failed:
        body["error"] = f"reload failed for {', '.join(failed)}: the previous versions keep serving"
        return json_response(body, 409)
    return json_response(body)


def _add_hooks(app: Flask, inference_app: HmlInferenceApp, metrics: Metrics) -> None:
    from flask import request
    from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

    lineage: Lineage = app.extensions["hypermodel"]["lineage"]
    declared: set[str] = app.extensions["hypermodel"]["declared"]

    # The start time is taken by a WSGI wrapper rather than a before_request hook: cheaper, and
    # it also covers requests that fail before Flask dispatches them.
    inner = app.wsgi_app

    def timed(environ: dict[str, Any], start_response: Any) -> Any:
        environ["hml.t0"] = time.perf_counter()

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # Our headers join the WSGI list here, already validated once (werkzeug's Headers
            # re-validates every value on every request, which showed in profiles).
            headers.extend(environ.get("hml.headers", ()))
            return start_response(status, headers, exc_info)

        reloader = inference_app.started_reloader
        if reloader is None or not reloader.current:
            return inner(environ, start)
        # Models that may switch version: the request sees the versions current at its start
        # (the prediction and its lineage headers agree even when a switch happens meanwhile).
        token = reloader.pin()
        try:
            return inner(environ, start)
        finally:
            reloader.unpin(token)

    app.wsgi_app = timed  # type: ignore[method-assign]

    @app.after_request
    def finish(response: Response) -> Response:
        req = request._get_current_object()  # type: ignore[attr-defined]  # resolved once
        environ = req.environ
        # The id is echoed when the client sent one or something went wrong (the body of a 500
        # quotes it); a plain success skips generating one: every header costs on the hot path.
        status = response.status_code
        given = "hml.request_id" in environ or "HTTP_X_REQUEST_ID" in environ
        extra = [("x-request-id", request_id(environ))] if given or status >= 400 else []
        endpoint = req.endpoint
        if endpoint in declared:
            extra += environ.get("hml.lineage", ())  # set by the route's view
        elif endpoint and endpoint not in _BUILTIN_ENDPOINTS:
            extra += lineage.headers(())  # a plain Flask route: the app's only model
        environ["hml.headers"] = extra
        method = req.method
        metrics.observe(
            req.url_rule.rule if req.url_rule is not None else "<unmatched>",
            method if method in _METHODS else "OTHER",
            status,
            time.perf_counter() - environ.get("hml.t0", time.perf_counter()),
        )
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> Response:
        limit = app.config["MAX_CONTENT_LENGTH"]
        return json_response({"error": "request body too large", "limit_bytes": limit}, 413)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        body = {"error": (exc.name or "error").lower(), "detail": exc.description}
        return json_response(body, exc.code or 500)

    @app.errorhandler(RequestError)
    def request_error(exc: RequestError) -> Response:
        return json_response(exc.body(), exc.status)

    failures = FailureLog(log)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        rid = request_id(request.environ)
        # One line in the server log (the traceback the first time); the client gets the id.
        failures.failed(rid, request.method, request.path, exc)
        return json_response({"error": "internal error", "request_id": rid}, 500)


def _header_value(value: str) -> str:
    """Header-safe text: a dataset checksum is a user string and must not inject headers."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in value)


def request_id(environ: dict[str, Any]) -> str:
    """The client's ``x-request-id`` when it is a safe token, else a new one; one per request."""
    rid: str | None = environ.get("hml.request_id")
    if rid is None:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        environ["hml.request_id"] = rid
    return rid


class Lineage:
    """The lineage headers of a set of models, rebuilt only when a model's reference changes."""

    def __init__(self, inference_app: HmlInferenceApp) -> None:
        self.inference_app = inference_app
        self._cache: dict[tuple[str, ...], tuple[tuple[Any, ...], list[tuple[str, str]]]] = {}

    def headers(self, names: tuple[str, ...]) -> list[tuple[str, str]]:
        """Headers for ``names``, or for the app's only model when ``names`` is empty."""
        models = self.inference_app.app.models
        if not names:
            if len(models) != 1:
                return []
            names = tuple(models)
        refs = tuple(getattr(models.get(name), "reference", None) for name in names)
        cached = self._cache.get(names)
        if (
            cached is not None
            and all(a is b for a, b in zip(cached[0], refs, strict=True))
            and None not in refs
        ):
            return cached[1]
        merged: dict[str, list[str]] = {}
        for name in names:
            for header, value in self.inference_app.model_lineage(name).items():
                merged.setdefault(header, []).append(value)
        found = [(header, _header_value(";".join(values))) for header, values in merged.items()]
        self._cache[names] = (refs, found)
        return found


def add_route(inference_app: HmlInferenceApp, app: Flask, route: Route) -> None:
    from flask import Response, request

    inputs, outputs = Validator(route.input), Validator(route.output, check_numbers=False)
    lineage: Lineage = app.extensions["hypermodel"]["lineage"]
    drift = inference_app.drift
    models = inference_app.app.models
    app.extensions["hypermodel"]["declared"].add(route.endpoint)

    def view() -> Response:
        payload, lenient = _read_payload(route, request)
        try:
            if route.input is not None:
                argument = inputs.parse(payload, lenient)
            elif lenient and (found := non_finite_numbers(payload)):
                raise SchemaError(found)  # no schema to allow NaN or Infinity: refused
            else:
                argument = payload
        except SchemaError as exc:
            request.environ["hml.lineage"] = lineage.headers(route.models)
            return json_response(exc.body(), 422)
        drift.observe(models, route.models, argument)
        try:
            result = route.handler(argument) if route.takes_argument else route.handler()
        except ValueError as exc:
            if not rejects_input(exc, route.handler):
                raise
            # the model refused the input (scikit-learn: too few features, beyond float32...)
            detail = short(exc)
            log.info(
                "request %s %s %s: the model rejected the input: %s",
                request_id(request.environ),
                request.method,
                route.path,
                detail,
            )
            request.environ["hml.lineage"] = lineage.headers(route.models)
            return json_response({"error": "the model rejected the input", "detail": detail}, 422)
        if isinstance(result, Response):
            if "x-model-long-name" not in result.headers:
                request.environ["hml.lineage"] = lineage.headers(route.models)
            return result
        try:
            data = outputs.dump(result)
        except SchemaError as exc:  # the handler broke its own contract: a server bug
            raise RuntimeError(
                f"route {route.path} returned data that does not match "
                f"{getattr(route.output, '__name__', route.output)}: {exc}"
            ) from exc
        request.environ["hml.lineage"] = lineage.headers(route.models)
        return json_response(data)

    view.__name__ = route.endpoint
    app.add_url_rule(route.path, route.endpoint, view, methods=list(route.methods))


def _read_payload(route: Route, request: Any) -> tuple[Any, bool]:
    """(the request's JSON body or query, whether the body needed the lenient parser)."""
    if request.method not in _BODY_METHODS:
        return request.args.to_dict(), False
    raw = request.get_data(cache=False)  # raises RequestEntityTooLarge over MAX_CONTENT_LENGTH
    if not raw.strip():
        if route.input is None:
            return None, False
        raise RequestError("request body is empty: send a JSON document", 400)
    return read_json(raw)  # RequestError 400 when it is not JSON


def describe(inference_app: HmlInferenceApp) -> dict[str, Any]:
    models = {}
    reloader = inference_app.started_reloader
    following = reloader.status() if reloader is not None else {}
    for name, model in inference_app.app.models.items():
        ref = getattr(model, "reference", None)
        models[name] = {
            "loaded": bool(getattr(model, "is_loaded", model is not None)),
            **(ref.summary() if ref is not None else {}),
            **({"following": following[name]} if name in following else {}),
        }
    drift = inference_app.started_drift.report() if inference_app.started_drift is not None else {}
    return {
        "app": inference_app.app.name,
        "ready": not inference_app.not_ready_reasons(),
        "models": models,
        "routes": [r.describe() for r in inference_app.routes.values()],
        "builtin": ["/livez", "/readyz", "/metrics", "/openapi.json"],
        **({"drift": drift} if drift else {}),
        **(
            {"batches": {k: b.describe() for k, b in inference_app.batchers.items()}}
            if inference_app.batchers
            else {}
        ),
    }


def openapi_document(inference_app: HmlInferenceApp) -> dict[str, Any]:
    components: dict[str, Any] = {
        "Error": {
            "type": "object",
            "properties": {"error": {"type": "string"}, "problems": {"type": "array"}},
            "required": ["error"],
        }
    }
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    paths: dict[str, Any] = {}
    for route in inference_app.routes.values():
        ok: dict[str, Any] = {"description": "prediction, with x-model-* lineage headers"}
        if route.output is not None:
            ok["content"] = {"application/json": {"schema": json_schema(route.output, components)}}
        for method in route.methods:
            op: dict[str, Any] = {
                "operationId": route.endpoint,
                "summary": route.summary,
                "responses": {
                    "200": ok,
                    "400": {"description": "malformed JSON", **error},
                    "413": {"description": "request body too large", **error},
                    "422": {"description": "the body does not match the input schema", **error},
                    "500": {"description": "internal error", **error},
                },
            }
            if route.input is not None and method in _BODY_METHODS:
                op["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": json_schema(route.input, components)}
                    },
                }
            paths.setdefault(_openapi_path(route.path), {})[method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": f"{inference_app.app.name} inference", "version": "1"},
        "paths": paths,
        "components": {"schemas": components},
    }


def _openapi_path(path: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", path)


# -- serving --------------------------------------------------------------------------------------
def serve_prod(
    inference_app: HmlInferenceApp,
    host: str,
    port: int,
    threads: int = 8,
    fail_fast: bool = False,
    drain_seconds: float = 0.0,
    connection_limit: int | None = None,
    channel_timeout: int | None = None,
) -> None:
    """Serve with waitress (multi-threaded, production).

    ``connection_limit`` open connections at most, each closed after ``channel_timeout``
    seconds idle (defaults and the other waitress limits: see ``prod``); waitress's own
    refusals are JSON like the app's.

    A failing initialiser does not stop the server unless ``fail_fast``: it serves ``/livez``
    and a 503 ``/readyz`` with the reason and retries the initialisers (see ``startup``).

    On SIGTERM (Kubernetes deleting the pod) the server keeps serving for ``drain_seconds``
    with ``/readyz`` 503, so that requests routed to it while the Service's endpoints and
    kube-proxy's rules catch up still succeed, then stops (the requests in flight finish); with
    0 it stops at once. Ctrl-C (SIGINT) always stops at once.
    """
    from . import prod
    from .startup import Startup

    waitress = require("waitress", "serve", "inference run-prod")
    wsgi = Startup(inference_app, fail_fast=fail_fast).start()
    options = prod.waitress_options(
        inference_app,
        threads,
        connection_limit=connection_limit or prod.DEFAULT_CONNECTION_LIMIT,
        channel_timeout=channel_timeout or prod.DEFAULT_CHANNEL_TIMEOUT,
    )
    log.info(
        "serving %s on http://%s:%d with waitress (%d threads, %d connections, "
        "idle connections closed after %ds)",
        inference_app.app.name,
        host,
        port,
        threads,
        options["connection_limit"],
        options["channel_timeout"],
    )
    prod.raise_open_files_limit(options["connection_limit"])
    server = waitress.create_server(wsgi, host=host, port=port, **options)
    prod.json_errors(server, inference_app)
    _drain_on_sigterm(inference_app, drain_seconds)
    server.print_listen("Serving on http://{}:{}")
    server.run()  # returns on SystemExit/KeyboardInterrupt, after the worker threads finish
    log.info("server of %s stopped", inference_app.app.name)


def _drain_on_sigterm(inference_app: HmlInferenceApp, drain_seconds: float) -> None:
    """SIGTERM: drain for ``drain_seconds`` (see serve_prod), then stop the server."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread (e.g. a test's thread)

    def stop(signo: int, frame: Any) -> None:
        raise SystemExit(0)  # waitress's loop catches it and shuts its worker threads down

    def on_term(signo: int, frame: Any) -> None:
        if inference_app.draining:
            return
        if drain_seconds <= 0:
            log.info("SIGTERM: stopping")
            raise SystemExit(0)
        inference_app.draining = True
        log.info("SIGTERM: draining for %gs (readyz 503), then stopping", drain_seconds)
        # the alarm interrupts waitress's loop in this (main) thread, like SIGTERM itself
        signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, drain_seconds)

    signal.signal(signal.SIGTERM, on_term)


def serve_dev(
    inference_app: HmlInferenceApp,
    host: str,
    port: int,
    reload: bool = True,
    fail_fast: bool = False,
) -> None:
    """Serve with Flask's development server; ``reload`` restarts it when code changes."""
    from werkzeug.serving import run_simple

    from .startup import Startup

    in_reloader_parent = reload and os.environ.get("WERKZEUG_RUN_MAIN") != "true"
    # With the reloader, the parent only watches files: models load in the serving child.
    wsgi: Any = (
        inference_app.flask
        if in_reloader_parent
        else Startup(inference_app, fail_fast=fail_fast).start()
    )
    run_simple(host, port, wsgi, use_reloader=reload, threaded=True)
