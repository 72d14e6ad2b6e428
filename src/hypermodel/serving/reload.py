"""Hot reload: a model served by a moving reference (``latest`` or an alias such as
``production``) follows it while the server runs, without dropping a request.

Each such model is *watched*. The reloader resolves the reference (a pointer and a
``reference.json``, never the model file) every ``poll_seconds`` in a background thread, or
when ``POST /-/reload`` asks. When the version or the digest it names differs from the one
serving, the new version is loaded into a fresh container, which verifies both digests (and
the pinned digest, if any) before unpickling. Only then is it switched in: the served state of
a model is an immutable ``Served`` value, and every watched model's value lives in one mapping
that is replaced, never changed, in one assignment. A request takes that mapping once at its
start (``pinned``), so it answers, and names in its lineage headers, the version it started
with; requests arriving after the switch get the new one.

A load that fails (a file changed after publishing, a digest that differs from the pin, a
version that is missing) leaves the old version serving; the reason is on ``/readyz``
(``details``), ``/`` and ``/metrics`` (``hml_model_reload_failures_total``), logged once per
failed attempt, and the next poll tries again, so a later good version recovers.

The served container keeps its identity (the initialiser's closures hold it): its class is
swapped once, when watching starts, for a subclass whose state attributes read the request's
pinned ``Served`` value. Nothing here imports more than the standard library.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import HmlInferenceApp

log = logging.getLogger("hypermodel.serving")

DEFAULT_POLL_SECONDS = 30.0
ADMIN_TOKEN_ENV = "HML_ADMIN_TOKEN"
RELOAD_PATH = "/-/reload"
# The container attributes that make up what a model serves, read through ``Served``; a
# container class names its own in ``SERVED_STATE`` (a TensorFlow export has other ones).
STATE = (
    "model",
    "reference",
    "distributions",
    "features_numeric",
    "features_categorical",
    "target",
    "datasets",
)
_ERROR_CHARS = 500

# The watched models' state as the running request first saw it (see ``Reloader.pinned``).
# A ContextVar, like the initialising app in serving/model.py: per thread of execution, not a
# process-wide registry.
_PINNED: ContextVar[Mapping[Watch, Served] | None] = ContextVar("hml_pinned_models", default=None)


def current_pin() -> Mapping[Watch, Served] | None:
    """The watched models' state the running request pinned (None outside a request)."""
    return _PINNED.get()


@contextmanager
def pinned_to(pin: Mapping[Watch, Served] | None) -> Iterator[None]:
    """Within the block, read the watched models as ``pin`` has them: how a batch worker thread
    answers each request from the version that request started with."""
    token = _PINNED.set(pin)
    try:
        yield
    finally:
        _PINNED.reset(token)


@dataclass(frozen=True)
class Served:
    """What one model serves: the fitted model with the reference and distributions it was
    loaded with. Never changed; a reload makes a new one."""

    values: Mapping[str, Any]  # a read-only mapping: state attribute name -> value

    @classmethod
    def of(cls, container: Any) -> Served:
        return cls(
            MappingProxyType({name: getattr(container, name) for name in state_of(container)})
        )

    def get(self, name: str) -> Any:
        return self.values[name]

    def replace(self, name: str, value: Any) -> Served:
        return Served(MappingProxyType({**self.values, name: value}))

    @property
    def reference(self) -> Any:
        return self.values.get("reference")

    @property
    def version(self) -> str:
        return str(getattr(self.reference, "version", "?"))

    @property
    def digest(self) -> str:
        return str(getattr(self.reference, "model_sha256", ""))


def state_of(container: Any) -> tuple[str, ...]:
    """The attribute names that make up what ``container`` serves."""
    return tuple(getattr(type(container), "SERVED_STATE", STATE))


class Watch:
    """One model followed by a moving reference, and how following it went so far."""

    def __init__(self, name: str, container: Any, ref: str, options: dict[str, Any]) -> None:
        self.name = name
        self.container = container
        self.ref = ref
        self.options = dict(options)
        self.reloads = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_failure: float | None = None  # time.time() of the last failed attempt
        self.last_success = time.time()  # the initial load counts as one
        self.last_check: float | None = None

    def __repr__(self) -> str:
        return f"<Watch {self.name}@{self.ref}>"

    def status(self, served: Served) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "version": served.version,
            "digest": f"sha256:{served.digest}",
            "reloads": self.reloads,
            "reload_failures": self.failures,
            "last_reload": _iso(self.last_success),
            "last_check": _iso(self.last_check),
            **(
                {"last_error": self.last_error, "last_failure": _iso(self.last_failure)}
                if self.last_error
                else {}
            ),
        }


@dataclass(frozen=True)
class Outcome:
    """What one check of one model did."""

    model: str
    ref: str
    status: str  # "reloaded" | "unchanged" | "failed"
    version: str
    previous: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"ref": self.ref, "status": self.status, "version": self.version}
        if self.previous is not None:
            data["previous"] = self.previous
        if self.error is not None:
            data["error"] = self.error
        return data


class Reloader:
    """The watched models of one inference app, their served state, and the poll thread."""

    def __init__(self, inference_app: HmlInferenceApp) -> None:
        self.inference_app = inference_app
        self.watches: dict[str, Watch] = {}
        # Replaced as a whole on every switch, never mutated: readers need no lock.
        self.current: Mapping[Watch, Served] = {}
        self._check_lock = threading.Lock()  # one check at a time (poll thread, admin)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return bool(self.current)

    # -- watching ------------------------------------------------------------------------------
    def watch(self, name: str, container: Any, ref: str, options: dict[str, Any]) -> Watch:
        """Follow ``ref`` for the loaded ``container``; its state is read through ``Served``
        from now on."""
        watch = Watch(name, container, ref, options)
        served = Served.of(container)
        _serve_through(container, self, watch)
        self.watches[name] = watch
        self.current = {**self.current, watch: served}
        return watch

    def served(self, watch: Watch) -> Served:
        """The state a reader sees now: the request's pinned one, else the current one."""
        pinned = _PINNED.get()
        if pinned is not None:
            found = pinned.get(watch)
            if found is not None:
                return found
        return self.current[watch]

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Within the block, every watched model reads the state current when it began."""
        token = _PINNED.set(self.current)
        try:
            yield
        finally:
            _PINNED.reset(token)

    def pin(self) -> Any:
        """``pinned()`` for the WSGI hot path: the token to pass to ``unpin``."""
        return _PINNED.set(self.current)

    @staticmethod
    def unpin(token: Any) -> None:
        _PINNED.reset(token)

    def _set_attribute(self, watch: Watch, name: str, value: Any) -> None:
        # Someone assigned to a served container (``container.load(...)`` by hand): the new
        # value becomes the current state.
        with self._check_lock:
            served = self.current[watch]
            self.current = {**self.current, watch: served.replace(name, value)}

    # -- checking ------------------------------------------------------------------------------
    def check(self, names: list[str] | None = None) -> list[Outcome]:
        """Resolve each watched model's reference; load and switch to what moved."""
        with self._check_lock:
            return [self._check(self.watches[name]) for name in names or list(self.watches)]

    def _check(self, watch: Watch) -> Outcome:
        served = self.current[watch]
        watch.last_check = time.time()
        try:
            target = resolve(watch)
            if target.version == served.version and target.model_sha256 == served.digest:
                return Outcome(watch.name, watch.ref, "unchanged", served.version)
            fresh = load_fresh(watch)
        except Exception as exc:  # every failure keeps the old version serving
            return self._failed(watch, served, exc)
        new = Served.of(fresh)
        if new.version == served.version and new.digest == served.digest:
            return Outcome(watch.name, watch.ref, "unchanged", served.version)
        self.current = {**self.current, watch: new}  # the switch: one assignment
        watch.reloads += 1
        watch.last_success = time.time()
        watch.last_error = None
        log.info(
            "model '%s' now serves version %s (sha256:%s, was %s) following '%s'",
            watch.name,
            new.version,
            new.digest[:12],
            served.version,
            watch.ref,
        )
        return Outcome(watch.name, watch.ref, "reloaded", new.version, previous=served.version)

    def _failed(self, watch: Watch, served: Served, exc: Exception) -> Outcome:
        text = (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__).splitlines()
        error = text[0][:_ERROR_CHARS]
        watch.failures += 1
        watch.last_failure = time.time()
        watch.last_error = error
        log.error(
            "model '%s': reloading '%s' failed, version %s keeps serving: %s",
            watch.name,
            watch.ref,
            served.version,
            error,
        )
        return Outcome(watch.name, watch.ref, "failed", served.version, error=error)

    # -- the poll thread -----------------------------------------------------------------------
    def start(self, poll_seconds: float) -> None:
        """Check every ``poll_seconds`` in a daemon thread (0: only when asked)."""
        if poll_seconds <= 0 or not self.watches or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._poll, args=(poll_seconds,), name="hml-model-reload", daemon=True
        )
        self._thread.start()
        log.info(
            "following %s every %gs",
            ", ".join(f"model '{w.name}' at '{w.ref}'" for w in self.watches.values()),
            poll_seconds,
        )

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10)

    def _poll(self, poll_seconds: float) -> None:
        while not self._stop.wait(poll_seconds):
            try:
                self.check()
            except Exception:  # pragma: no cover - _check catches; never let the thread die
                log.exception("model reload check failed")

    # -- reporting -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        current = self.current
        return {w.name: w.status(current[w]) for w in self.watches.values()}

    def collect(self) -> Iterator[Any]:
        """Prometheus families (a custom collector of the server's registry)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        failures = CounterMetricFamily(
            "hml_model_reload_failures",
            "Failed attempts to load a new version of a model served by a moving reference",
            labels=["model"],
        )
        reloads = CounterMetricFamily(
            "hml_model_reloads", "Switches to a new version while serving", labels=["model"]
        )
        last = GaugeMetricFamily(
            "hml_model_last_reload_timestamp_seconds",
            "When the version serving was loaded (Unix time)",
            labels=["model"],
        )
        failing = GaugeMetricFamily(
            "hml_model_reload_failing",
            "1 while the last attempt to load a new version failed (the old one serves)",
            labels=["model"],
        )
        for watch in self.watches.values():
            failures.add_metric([watch.name], watch.failures)
            reloads.add_metric([watch.name], watch.reloads)
            last.add_metric([watch.name], watch.last_success)
            failing.add_metric([watch.name], 1.0 if watch.last_error else 0.0)
        yield from (failures, reloads, last, failing)


def is_moving(ref: Any, loaded_version: str | None) -> bool:
    """Whether ``ref`` can name another version later: ``latest`` or an alias (a plain name
    that is not the version it resolved to). Versions, keys, paths and references are fixed."""
    if not isinstance(ref, str) or "/" in ref or ref.endswith(".json"):
        return False
    return ref == "latest" or ref != loaded_version


def resolve(watch: Watch) -> Any:
    """The reference ``watch.ref`` names now (a pointer and a reference read, never the model
    file)."""
    from ..models.store import ModelStore

    return ModelStore(storage_of(watch)).resolve(watch.name, watch.ref)


def load_fresh(watch: Watch) -> Any:
    """Load what ``watch.ref`` names into a new container: the served one is left alone until
    the load has verified everything."""
    fresh = watch.container.blank()
    fresh.load(watch.ref, **watch.options)
    return fresh


def storage_of(watch: Watch) -> Any:
    from ..storage import Storage, open_storage

    target = watch.options.get("storage")
    if isinstance(target, Storage):
        return target
    if isinstance(target, str):
        return open_storage(target)
    if target is not None and callable(getattr(target, "storage", None)):
        return target.storage()
    app = getattr(watch.container, "app", None)
    if app is None:
        from ..storage import resolve_storage

        return resolve_storage()
    return app.storage()


def _serve_through(container: Any, reloader: Reloader, watch: Watch) -> None:
    """Make ``container``'s state attributes read ``reloader.served(watch)``: its class becomes
    a subclass (same name) with a property per attribute of its served state."""
    base = type(container)

    def attribute(name: str) -> property:
        def get(self: Any) -> Any:
            return reloader.served(watch).get(name)

        def set_(self: Any, value: Any) -> None:
            reloader._set_attribute(watch, name, value)

        return property(get, set_, doc=f"the served {name} (follows '{watch.ref}')")

    names = state_of(container)
    namespace: dict[str, Any] = {name: attribute(name) for name in names}
    namespace.update(__module__=base.__module__, __qualname__=base.__qualname__)
    container.__class__ = type(base.__name__, (base,), namespace)
    for name in names:  # the properties answer now; stale copies would only mislead
        container.__dict__.pop(name, None)


def check_admin_token(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (compared in constant
    time)."""
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
