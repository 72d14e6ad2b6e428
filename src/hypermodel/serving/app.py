"""HmlInferenceApp: the inference side of one app. Flask is imported only when serving starts.

::

    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        model = inference_app.load_model(ModelContainer("wine-classifier"))

        @inference_app.route("/predict", input=Wine, output=Prediction)
        def predict(wine: Wine) -> Prediction:
            return Prediction(cultivar=int(model.predict([wine.features])[0]))

The seed's style still works: ``@inference_app.flask.route("/predict")`` on the Flask app.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..dsl.config import ContainerConfig
from ..errors import DeclarationError, HypermodelError

if TYPE_CHECKING:
    from flask import Flask

    from ..app import HmlApp
    from .batching import Batcher
    from .drift import DriftMonitor
    from .reload import Reloader

DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024  # 1 MiB: a prediction request, not an upload
BUILTIN_PATHS = ("/", "/livez", "/readyz", "/metrics", "/openapi.json", "/-/reload")
IMAGE_PULL_POLICIES = ("Always", "IfNotPresent", "Never")


CONTAINER_NAME = "inference"  # the container's name in the Deployment's pod


@dataclass(frozen=True)
class InferenceContainer:
    """A read-only view of the inference server's container (``deployment.k8s_container``)."""

    name: str
    image: str | None
    command: list[str] | None
    args: list[str]
    env: dict[str, str]
    ports: list[int]
    image_pull_policy: str | None = None


@dataclass
class HmlInferenceDeployment(ContainerConfig):
    """How the inference server runs on Kubernetes (``@hml.deploy_inference`` configures it).

    The container settings (env, secrets, volumes, resources, image...) come from
    ContainerConfig; the fields below describe the Deployment, Service, Ingress and HPA.
    """

    namespace: str = "default"
    replicas: int = 1
    port: int = 8000
    service_type: str = "ClusterIP"  # ClusterIP | NodePort | LoadBalancer
    node_port: int | None = None
    ingress_host: str | None = None
    ingress_path: str = "/"
    ingress_class: str | None = None
    ingress_tls_secret: str | None = None
    hpa_min_replicas: int | None = None
    hpa_max_replicas: int | None = None
    hpa_cpu_percent: int = 80
    threads: int = 8
    image_pull_policy: str | None = (
        None  # Always | IfNotPresent | Never (None: Kubernetes' default)
    )
    host_root: str | None = None  # a node directory mounted read-only as the bucket root
    drain_seconds: int = 5  # after SIGTERM: keep serving (readyz 503) while endpoints update
    model_versions: dict[str, str] = field(default_factory=dict)  # run-prod --model NAME=VERSION

    @property
    def deployment_name(self) -> str:
        return self.name or "inference"

    def server_args(self) -> list[str]:
        """The server container's arguments (the image's ENTRYPOINT is the app's script)."""
        return [
            "inference",
            "run-prod",
            "--host",
            "0.0.0.0",
            "--port",
            str(self.port),
            "--threads",
            str(self.threads),
            *(
                a
                for m in sorted(self.model_versions)
                for a in ("--model", f"{m}={self.model_versions[m]}")
            ),
        ]

    @property
    def k8s_container(self) -> InferenceContainer:
        """Hyper Model's ``deployment.k8s_container``: the server container as configured so
        far (``.image``, ``.args``, ``.command``, ``.env``, ``.ports``); read-only, change it
        with the ``with_*`` methods."""
        return InferenceContainer(
            name=CONTAINER_NAME,
            image=self.image,
            command=list(self.command) if self.command else None,
            args=self.server_args(),
            env=dict(self.env),
            ports=[self.port],
            image_pull_policy=self.image_pull_policy,
        )

    def with_replicas(self, replicas: int) -> HmlInferenceDeployment:
        self.replicas = int(replicas)
        return self

    def with_port(self, port: int) -> HmlInferenceDeployment:
        self.port = int(port)
        return self

    def with_namespace(self, namespace: str) -> HmlInferenceDeployment:
        self.namespace = namespace
        return self

    def with_service_type(
        self, service_type: str, node_port: int | None = None
    ) -> HmlInferenceDeployment:
        if service_type not in ("ClusterIP", "NodePort", "LoadBalancer"):
            raise DeclarationError(
                f"service type {service_type!r} is not one of ClusterIP, NodePort, LoadBalancer"
            )
        self.service_type = service_type
        self.node_port = node_port
        return self

    def with_ingress(
        self,
        host: str,
        path: str = "/",
        ingress_class: str | None = None,
        tls_secret: str | None = None,
    ) -> HmlInferenceDeployment:
        self.ingress_host, self.ingress_path = host, path
        self.ingress_class, self.ingress_tls_secret = ingress_class, tls_secret
        return self

    def with_hpa(
        self, min_replicas: int, max_replicas: int, cpu_percent: int = 80
    ) -> HmlInferenceDeployment:
        if not 1 <= min_replicas <= max_replicas:
            raise DeclarationError(
                f"HPA needs 1 <= min_replicas <= max_replicas, got {min_replicas}..{max_replicas}"
            )
        self.hpa_min_replicas, self.hpa_max_replicas, self.hpa_cpu_percent = (
            min_replicas,
            max_replicas,
            cpu_percent,
        )
        return self

    def with_threads(self, threads: int) -> HmlInferenceDeployment:
        self.threads = int(threads)
        return self

    def with_connection_limits(
        self, connection_limit: int | None = None, channel_timeout: int | None = None
    ) -> HmlInferenceDeployment:
        """The server's ``--connection-limit`` (open connections, idle ones included) and
        ``--channel-timeout`` (seconds before an idle connection is closed), passed as
        ``HML_CONNECTION_LIMIT`` / ``HML_CHANNEL_TIMEOUT`` in the pod's env. Unset, run-prod's
        defaults apply (1000 and 75 s: see docs/serving.md)."""
        for env, value in (
            ("HML_CONNECTION_LIMIT", connection_limit),
            ("HML_CHANNEL_TIMEOUT", channel_timeout),
        ):
            if value is not None:
                if int(value) < 1:
                    raise DeclarationError(f"{env} must be 1 or more, got {value}")
                self.with_env(env, str(int(value)))
        return self

    def with_image_pull_policy(self, policy: str) -> HmlInferenceDeployment:
        """``Always``, ``IfNotPresent`` or ``Never``. Unset, Kubernetes pulls ``:latest`` (and
        untagged) images always and others only when absent; a locally built image that is in
        no registry needs ``IfNotPresent`` or ``Never``."""
        if policy not in IMAGE_PULL_POLICIES:
            raise DeclarationError(
                f"image pull policy {policy!r} is not one of {', '.join(IMAGE_PULL_POLICIES)}"
            )
        self.image_pull_policy = policy
        return self

    def with_host_root(self, path: str) -> HmlInferenceDeployment:
        """Mount the node directory ``path`` read-only into the pods (a hostPath volume, at the
        same path) and point ``HML_ROOT`` at it. For a single-node cluster (kind, minikube, a
        test node) or a directory every node mounts, e.g. over NFS."""
        if not path.startswith("/"):
            raise DeclarationError(f"the host root must be an absolute path, got {path!r}")
        self.host_root = path.rstrip("/") or "/"
        return self

    def with_drain_seconds(self, seconds: int) -> HmlInferenceDeployment:
        """How long a pod keeps serving after Kubernetes asks it to stop (SIGTERM), with
        ``/readyz`` 503, so that no request is routed to it once it exits: the Service's
        endpoints and kube-proxy's rules need a moment to drop it. 0 exits at once."""
        if seconds < 0:
            raise DeclarationError(f"drain seconds must be 0 or more, got {seconds}")
        self.drain_seconds = int(seconds)
        return self

    def with_model_version(self, model: str, version: str) -> HmlInferenceDeployment:
        """Serve ``version`` of ``model`` instead of its latest (``run-prod --model``)."""
        from ..names import check_name

        self.model_versions[check_name(model, "model")] = check_name(version, "model version")
        return self

    def with_model_sha256(self, digest: str, model: str | None = None) -> HmlInferenceDeployment:
        """Pin the digest the server accepts for ``model`` (for every model when None, which
        suits an app with one model): a published model with another digest is refused, and
        the pod stays not ready with the reason."""
        from ..names import check_name
        from .model import PIN_ENV, normalise_digest, pin_env_name

        if model is not None:
            check_name(model, "model")
        where = f"the digest pinned for model '{model}'" if model else "the pinned model digest"
        self.with_env(pin_env_name(model) if model else PIN_ENV, normalise_digest(digest, where))
        return self


@dataclass
class Route:
    """A declared prediction route: validated input, checked output, the models it uses."""

    path: str
    handler: Callable[..., Any]
    methods: tuple[str, ...] = ("POST",)
    input: Any = None
    output: Any = None
    models: tuple[str, ...] = ()
    endpoint: str = ""
    summary: str = ""
    takes_argument: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "methods": list(self.methods),
            "endpoint": self.endpoint,
            "input": _schema_name(self.input) if self.input else None,
            "output": _schema_name(self.output) if self.output else None,
            "models": list(self.models),
        }


class HmlInferenceApp:
    """Initialisers, routes and deploy configurators of one app's inference server."""

    def __init__(self, app: HmlApp) -> None:
        self.app = app
        self._initialisers: list[Callable[[HmlInferenceApp], Any]] = []
        self._deploy_configurators: list[Callable[[ContainerConfig], Any]] = []
        self.routes: dict[str, Route] = {}
        self.batchers: dict[str, Batcher] = {}
        self.max_content_length = DEFAULT_MAX_CONTENT_LENGTH
        self.require_models = True  # /readyz says 503 until at least one model is loaded
        self.initialised = False
        self.draining = False  # set on SIGTERM by `run-prod --drain-seconds`: /readyz says 503
        # What each model was loaded with ({name: (ref, load options)}), by load_model.
        self.model_refs: dict[str, tuple[Any, dict[str, Any]]] = {}
        # Refs that replace what the initialisers ask for (`run-prod --model NAME=REF`).
        self.ref_overrides: dict[str, str] = {}
        self.model_poll_seconds = 30.0  # follow moving refs this often (0: only /-/reload)
        self.drift_threshold = 3.0  # training standard deviations
        self.drift_min_samples = 100
        self.drift_unseen_threshold = 0.05  # share of a categorical feature's values
        self.admin_token: str | None = None  # enables POST /-/reload; never logged or shown
        self._flask: Flask | None = None
        self._state: Any = None  # per-server metrics, set by server.create_flask_app
        # standard protocols served beside the routes (serving/protocols.py); set before serving
        self.protocols: tuple[str, ...] = ("v2", "mlflow", "hypergol")
        self._reloader: Reloader | None = None
        self._drift: DriftMonitor | None = None

    def on_init(self, fn: Callable[[HmlInferenceApp], Any]) -> Callable[[HmlInferenceApp], Any]:
        self._initialisers.append(fn)
        return fn

    def on_deploy(self, fn: Callable[[ContainerConfig], Any]) -> Callable[[ContainerConfig], Any]:
        self._deploy_configurators.append(fn)
        return fn

    def get_model(self, name: str) -> Any:
        return self.app.get_model(name)

    # -- models --------------------------------------------------------------------------------
    def load_model(self, model: Any, ref: Any = "latest", **options: Any) -> Any:
        """Register a ModelContainer with the app (if new) and load ``ref`` from the app's bucket.

        ``ref`` is ``latest``, a version, or an alias (``production``); ``run-prod --model
        NAME=REF`` replaces it. While serving, a model loaded by ``latest`` or an alias follows
        it (see serving/reload.py).
        """
        name = model if isinstance(model, str) else model.name
        ref = self.ref_overrides.get(name, ref)
        if isinstance(model, str):
            model = self.get_model(model)
        elif model.name not in self.app.models:
            self.app.register_model(model.name, model)
        elif self.app.models[model.name] is not model:
            raise DeclarationError(
                f"app '{self.app.name}' already has another model named '{model.name}'"
            )
        if getattr(model, "app", None) is None:
            model.app = self.app
        from .model import LOADING_FOR_APP

        token = LOADING_FOR_APP.set(True)
        try:
            loaded = model.load(ref, **options)
        finally:
            LOADING_FOR_APP.reset(token)
        self.model_refs[name] = (ref, dict(options))
        return loaded

    def configure(
        self,
        *,
        models: dict[str, str] | None = None,
        poll_seconds: float | None = None,
        drift_threshold: float | None = None,
        drift_min_samples: int | None = None,
        drift_unseen_threshold: float | None = None,
        admin_token: str | None = None,
    ) -> HmlInferenceApp:
        """Serving settings, set once before serving (the CLI passes its options here)."""
        from ..names import check_name

        for name, ref in (models or {}).items():
            check_name(name, "model")
            if not isinstance(ref, str) or not ref.strip():
                raise DeclarationError(
                    f"model '{name}' needs a reference to load: 'latest', a version or an alias"
                )
            self.ref_overrides[name] = ref.strip()
        if poll_seconds is not None:
            if poll_seconds < 0:
                raise DeclarationError(f"model poll seconds must be 0 or more, got {poll_seconds}")
            self.model_poll_seconds = float(poll_seconds)
        if drift_threshold is not None:
            if not drift_threshold > 0:
                raise DeclarationError(
                    f"the drift threshold must be above 0, got {drift_threshold}"
                )
            self.drift_threshold = float(drift_threshold)
        if drift_min_samples is not None:
            if drift_min_samples < 1:
                raise DeclarationError(
                    f"the drift minimum sample count must be 1 or more, got {drift_min_samples}"
                )
            self.drift_min_samples = int(drift_min_samples)
        if drift_unseen_threshold is not None:
            if not 0 < drift_unseen_threshold <= 1:
                raise DeclarationError(
                    "the drift threshold of unseen categories is a share of the live values, "
                    f"above 0 and at most 1, got {drift_unseen_threshold}"
                )
            self.drift_unseen_threshold = float(drift_unseen_threshold)
        if admin_token is not None:
            self.admin_token = admin_token or None
        return self

    @property
    def reloader(self) -> Reloader:
        """The models followed by a moving reference (``latest``, an alias) while serving."""
        if self._reloader is None:
            from .reload import Reloader

            self._reloader = Reloader(self)
        return self._reloader

    @property
    def drift(self) -> DriftMonitor:
        """Running statistics of the live inputs against the models' training distributions."""
        if self._drift is None:
            from .drift import DriftMonitor

            self._drift = DriftMonitor(
                self.drift_threshold, self.drift_min_samples, self.drift_unseen_threshold
            )
        return self._drift

    @property
    def started_reloader(self) -> Reloader | None:
        """The reloader if one was made (a model follows a moving reference), else None."""
        return self._reloader

    @property
    def started_drift(self) -> DriftMonitor | None:
        """The drift monitor if one was made (a route counts inputs), else None."""
        return self._drift

    def model_lineage(self, name: str) -> dict[str, str]:
        model = self.get_model(name)
        reference = getattr(model, "reference", None)
        if reference is not None and callable(getattr(reference, "lineage_headers", None)):
            return reference.lineage_headers()  # type: ignore[no-any-return]
        headers = getattr(model, "lineage_headers", None)
        return dict(headers()) if callable(headers) else {}

    def not_ready_reasons(self) -> list[str]:
        """Why ``/readyz`` says 503 (empty when ready)."""
        reasons = []
        if self.draining:
            reasons.append("shutting down: draining before exit")
        if not self.initialised:
            reasons.append("initialisers have not run")
        if self.require_models and not self.app.models:
            reasons.append("no model registered (app.register_model or inference_app.load_model)")
        for name, model in self.app.models.items():
            if not getattr(model, "is_loaded", model is not None):
                reasons.append(f"model '{name}' is not loaded")
        return reasons

    # -- routes --------------------------------------------------------------------------------
    def route(
        self,
        path: str,
        *,
        input: Any = None,
        output: Any = None,
        methods: Iterable[str] = ("POST",),
        model: str | Iterable[str] | None = None,
        name: str | None = None,
        summary: str | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare a prediction route with a validated ``input`` and checked ``output`` schema.

        The handler receives the parsed input (a schema instance, or the decoded JSON when no
        input schema is declared) and returns a schema instance, a dict/list, or a Flask response.
        """
        if not path.startswith("/") or path in BUILTIN_PATHS:
            raise DeclarationError(
                f"route {path!r} must start with '/' and not be a built-in route "
                f"({', '.join(BUILTIN_PATHS)})"
            )
        models = (model,) if isinstance(model, str) else tuple(model or ())
        from .schema import check_schema  # imported when routes are declared, not at app import

        input_schema = check_schema(input, f"route {path} input")
        output_schema = check_schema(output, f"route {path} output")

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            endpoint = name or fn.__name__
            if path in self.routes or any(r.endpoint == endpoint for r in self.routes.values()):
                raise DeclarationError(
                    f"inference app '{self.app.name}' already has a route {path!r} "
                    f"or an endpoint named '{endpoint}'"
                )
            route = Route(
                path=path,
                handler=fn,
                methods=tuple(m.upper() for m in methods),
                input=input_schema,
                output=output_schema,
                models=models,
                endpoint=endpoint,
                summary=summary or (inspect.getdoc(fn) or "").split("\n")[0],
                takes_argument=_takes_argument(fn),
            )
            self.routes[path] = route
            if self._flask is not None:
                from .server import add_route

                add_route(self, self._flask, route)
            return fn

        return decorate

    def batch(
        self,
        fn: Callable[[list[Any]], Sequence[Any]],
        *,
        max_batch_size: int = 32,
        max_latency_ms: float = 0.0,
        timeout_s: float = 60.0,
        name: str | None = None,
    ) -> Batcher:
        """``fn`` (a list of items in, one result per item out) as a function of one item
        whose concurrent calls are answered by one call of ``fn`` (see serving/batching.py).

        ``max_batch_size`` bounds a batch; ``max_latency_ms`` (default 0: never wait) lets the
        worker wait that long for more items; a caller waits at most ``timeout_s``. Batch sizes
        appear on ``/metrics`` as ``hml_batch_size`` and on ``/``.
        """
        from .batching import Batcher

        key = name or getattr(fn, "__name__", None) or "batch"
        if key in self.batchers:
            raise DeclarationError(
                f"inference app '{self.app.name}' already has a batch named '{key}': "
                "pass name=... to tell them apart"
            )
        batcher = Batcher(
            fn,
            name=key,
            max_batch_size=max_batch_size,
            max_latency_ms=max_latency_ms,
            timeout_s=timeout_s,
            on_batch=self._observe_batch,
        )
        self.batchers[key] = batcher
        return batcher

    def _observe_batch(self, name: str, size: int) -> None:
        if self._state is not None:
            self._state.observe_batch(name, size)

    # -- the server ----------------------------------------------------------------------------
    @property
    def flask(self) -> Flask:
        """The Flask app (built-in routes included), created on first use."""
        if self._flask is None:
            from .server import create_flask_app

            self._flask = create_flask_app(self)
        return self._flask

    def build(self) -> Flask:
        """Create the Flask app and run the ``@hml.inference`` initialisers once.

        When an initialiser raises, what the attempt registered (models, routes, and the Flask
        app if this attempt created it) is undone, so ``build()`` can simply be called again.
        """
        from .model import INITIALISING_APP

        if self.initialised:
            return self.flask
        fresh = self._flask is None
        models, routes, batchers = dict(self.app.models), dict(self.routes), dict(self.batchers)
        refs = dict(self.model_refs)
        flask_app = self.flask
        token = INITIALISING_APP.set(self.app)
        try:
            for fn in self._initialisers:
                self._run_initialiser(fn)
            self._check_route_models()
            self._check_overrides()
        except BaseException:
            self.app.models.clear()
            self.app.models.update(models)
            self.routes = routes
            self.batchers = batchers
            self.model_refs = refs
            if fresh:  # a Flask app that served no request yet: the next attempt starts anew
                self._flask, self._state = None, None
            raise
        finally:
            INITIALISING_APP.reset(token)
        self._follow_moving_refs()
        self.initialised = True
        return flask_app

    def _check_overrides(self) -> None:
        unused = sorted(set(self.ref_overrides) - set(self.model_refs))
        if unused:
            raise DeclarationError(
                f"--model {unused[0]}=...: app '{self.app.name}' loads no model named "
                f"'{unused[0]}' with inference_app.load_model (models it loads: "
                f"{', '.join(sorted(self.model_refs)) or 'none'}); fix the name or drop the option"
            )

    def _follow_moving_refs(self) -> None:
        from .reload import is_moving

        for name, (ref, options) in self.model_refs.items():
            container = self.app.models.get(name)
            reference = getattr(container, "reference", None)
            if container is None or name in self.reloader.watches or reference is None:
                continue
            if is_moving(ref, getattr(reference, "version", None)):
                self.reloader.watch(name, container, ref, options)

    def _run_initialiser(self, fn: Callable[[HmlInferenceApp], Any]) -> None:
        try:
            fn(self)
        except HypermodelError:
            raise
        except Exception as exc:
            raise HypermodelError(
                f"inference initialiser '{getattr(fn, '__name__', fn)}' of app "
                f"'{self.app.name}' failed: {type(exc).__name__}: {exc}"
            ) from exc

    def _check_route_models(self) -> None:
        for route in self.routes.values():
            for name in route.models:
                if name not in self.app.models:
                    raise DeclarationError(
                        f"route {route.path} uses model '{name}', which app "
                        f"'{self.app.name}' does not have (models: {', '.join(self.app.models) or 'none'})"
                    )

    def deployment_config(self) -> HmlInferenceDeployment:
        """The Deployment's settings: app env and image, then every ``@hml.deploy_inference``."""
        cfg = HmlInferenceDeployment(
            name=f"{self.app.name}-inference",
            image=self.app.image_url,
            env=dict(self.app.env),
            namespace=self.app.k8s_namespace,
            port=self.app.inference_port,
        )
        for configurator in self._deploy_configurators:
            result = configurator(cfg)
            cfg = result if isinstance(result, HmlInferenceDeployment) else cfg
        return cfg


def _takes_argument(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )


def _schema_name(schema: Any) -> str:
    from .schema import schema_name

    return schema_name(schema)
