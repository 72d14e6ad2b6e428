"""``hml.Run``: one tracked run in the app's bucket, and ``hml.current_run()`` inside an op.

A run is created by name, or attached to when the name exists. Attaching to a run created by
someone else is read-only: writes raise :class:`ReadOnlyRunError`. If the bucket cannot be
reached when the run starts, the run is *dry*: it warns once and records nothing, so a
training script never fails because of tracking. Every write is buffered and written in the
background by a :class:`~hypermodel.tracking.writer.Writer` as append-only objects.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar, Token
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import HypermodelError, UsageError
from ..names import check_name
from ..redact import redact
from ..storage import Storage
from ..storage import base as storage_base
from . import identity, registry
from .config import Config
from .store import STATES, run_prefix
from .writer import FORKS, Report, Writer, WriterSettings

log = logging.getLogger("hypermodel.tracking")

_time = time.time

# The run of the op being executed (set by tracking.auto.op_scope) or entered with ``with Run``.
_CURRENT_RUN: ContextVar[Run | None] = ContextVar("hml_current_run", default=None)

WRITE, READ_ONLY, DRY = "write", "read-only", "dry"


class ReadOnlyRunError(UsageError):
    """A write to a run attached read-only (it belongs to another author)."""


def current_run() -> Run:
    """The run of the op being executed (or of the innermost ``with Run(...)``)."""
    run = _CURRENT_RUN.get()
    if run is None:
        raise HypermodelError(
            "hml.current_run() was called outside a running op; inside an op the runner sets it "
            "up, elsewhere create one with `run = hml.Run(name=...)` (or `with hml.Run(...) as run:`)"
        )
    return run


def maybe_current_run() -> Run | None:
    return _CURRENT_RUN.get()


@contextlib.contextmanager
def current_run_scope(run: Run | None) -> Iterator[Run | None]:
    """``run`` is ``current_run()`` inside the block (None: leave the current one as it is)."""
    token = _CURRENT_RUN.set(run) if run is not None else None
    try:
        yield run
    finally:
        if token is not None:
            _CURRENT_RUN.reset(token)


class Run:
    """``Run(name, root=..., project=...)``: create the run, or attach to it if it exists."""

    def __init__(
        self,
        name: str,
        *,
        root: str | None = None,
        storage: Storage | None = None,
        project: str | None = None,
        start_timeout: float | None = None,
        connect_timeout: float | None = None,
        settings: WriterSettings | None = None,
    ) -> None:
        from ..context import maybe_context

        ctx = maybe_context()
        project = project or os.environ.get("HML_PROJECT") or (ctx.app if ctx else "default")
        self._setup(
            name,
            project,
            _storage_for(root, storage, ctx),
            {},
            owned=False,
            start_timeout=start_timeout,
            settings=settings,
            connect_timeout=connect_timeout,
        )

    @classmethod
    def open_owned(
        cls,
        name: str,
        project: str,
        storage: Storage | Any,
        extra: dict[str, Any],
        *,
        owned: bool,
        start_timeout: float | None = None,
    ) -> Run:
        """Used by the runner: ``owned`` runs are writable by any process of the pipeline run."""
        run = cls.__new__(cls)
        run._setup(
            name, project, storage, extra, owned=owned, start_timeout=start_timeout, settings=None
        )
        return run

    _create = open_owned  # the name tests and older callers use

    def _setup(
        self,
        name: str,
        project: str,
        storage: Storage | Any,
        extra: dict[str, Any],
        *,
        owned: bool,
        start_timeout: float | None,
        settings: WriterSettings | None,
        connect_timeout: float | None = None,
    ) -> None:
        self.name = name
        self.prefix = run_prefix(name)  # validates the run's name
        self.project = check_name(project, "project")
        self.author = identity.author()
        self.meta: dict[str, Any] = {}
        self._w: Writer | None = None
        self._log_handlers: dict[str, tuple[logging.Handler, int]] = {}
        self._log_line_open = False  # the last recorded log message ended with '\r'
        self._tokens: list[Token[Run | None]] = []
        self._closed = False
        self._warned_closed = False
        meta = {
            "run_id": name,
            "project": project,
            "author": self.author,
            "created": _time(),
            **identity.machine(),
            "pid": os.getpid(),
            **extra,
        }
        if isinstance(storage, BaseException):
            self._go_dry(storage, getattr(storage, "url", "the bucket"))
            self.storage: Storage | None = None
            return
        self.storage = storage
        timeout = (
            start_timeout
            if start_timeout is not None
            else float(os.environ.get("HML_TRACKING_START_TIMEOUT", 15))
        )
        probe = getattr(storage, "unreachable", None)
        # a dead endpoint is told by one connection in milliseconds (at most connect_timeout,
        # $HML_CONNECT_TIMEOUT, 2 s by default), not after the client's retries
        reason = probe(storage_base.connect_timeout(connect_timeout)) if callable(probe) else None
        if reason is not None:
            self._go_dry(ConnectionError(reason), storage.url)
            return
        try:
            existing = _open_run(storage, f"{self.prefix}/run.json", meta, timeout)
        except Exception as exc:
            self._go_dry(exc, storage.url)
            return
        self.meta = existing or meta
        self.created = existing is None  # False: attached to an existing run
        owner = self.meta.get("author")
        if existing is not None and owner != self.author and not owned:
            self.mode = READ_ONLY
            log.info("tracking: run %r belongs to %s; attached read-only", name, owner)
            return
        self.mode = WRITE
        self._w = Writer(storage, self.prefix, name, settings)

    def _go_dry(self, exc: BaseException, url: str) -> None:
        self.mode = DRY
        log.warning(
            "tracking: cannot reach %s (%s: %s); run %r continues without recording (dry mode)",
            url,
            type(exc).__name__,
            str(exc)[:200],
            self.name,
        )

    # -- identity -----------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.name

    @property
    def read_only(self) -> bool:
        return self.mode == READ_ONLY

    @property
    def dry(self) -> bool:
        return self.mode == DRY

    def __repr__(self) -> str:
        return f"<Run {self.name} ({self.mode})>"

    # -- the write path -----------------------------------------------------------------------
    def _writer(self, what: str) -> Writer | None:
        w = self._w
        if w is not None:
            if w.ready != FORKS[0]:
                w.ensure()
            return w
        self._not_recording(what)
        return None

    def _not_recording(self, what: str) -> None:
        if self.mode == READ_ONLY:
            raise ReadOnlyRunError(
                f"run '{self.name}' was created by {self.meta.get('author')} and is attached read-only "
                f"(you are {self.author}); {what} is not allowed. Create your own run with another name."
            )
        if self._closed and not self._warned_closed:
            self._warned_closed = True
            log.warning(
                "tracking: run %r is closed; %s and later writes are ignored", self.name, what
            )

    def add_metrics(self, key: str, value: float, step: int | None = None) -> None:
        """Buffered; written in the background. Costs well under a microsecond here."""
        w = self._w
        if w is None:
            self._not_recording("add_metrics")
            return
        if w.ready != FORKS[0]:  # first call, or a forked child
            w.ensure()
        w.metrics.append((key, value, step, _time()))
        if len(w.metrics) >= w.settings.flush_size:
            w.kick()

    def set_metrics_cache_settings(
        self,
        flush_size: int | None = None,
        interval: float | None = None,
        max_pending: int | None = None,
    ) -> None:
        w = self._w
        if w is not None:
            s = w.settings
            s.flush_size = flush_size or s.flush_size
            s.interval = interval or s.interval
            s.max_pending = max_pending or s.max_pending

    def _event(self, kind: str, what: str, /, **data: Any) -> None:
        w = self._writer(what)
        if w is not None:
            w.events.append({"type": kind, "t": _time(), "writer": w.writer_id, **data})

    def _record(self, kind: str, /, **data: Any) -> None:
        """Buffer an event without starting the background thread (the runner flushes itself)."""
        w = self._w
        if w is not None and not w.forked:
            w.events.append({"type": kind, "t": _time(), "writer": w.writer_id, **data})

    def add_config(self, config: dict[str, Any] | Config) -> None:
        """Store a (nested) config; later calls add keys and override the ones they repeat."""
        data = config.to_dict() if isinstance(config, Config) else Config(config).to_dict()
        self._event("config", "add_config", config=redact(data))

    def add_params(self, params: dict[str, Any]) -> None:
        """Store params; values of secret-looking names (``password``, ``api_key``...) as ``***``."""
        self._event("params", "add_params", params=redact(dict(params)))

    def set_note(self, text: str) -> None:
        self._event("note", "set_note", text=str(text))

    def add_meta(self, key: str, value: Any) -> None:
        self._event("meta", "add_meta", key=str(key), value=redact({key: value})[key])

    def add_tag(self, name: str, description: str | None = None, color: str | None = None) -> None:
        self._event("tag", "add_tag", name=str(name), description=description, color=color)

    def add_lineage(
        self, inputs: list[Any] | None = None, outputs: list[Any] | None = None
    ) -> None:
        """Datasets/models this run read (``inputs``) and produced (``outputs``)."""
        self._event(
            "lineage",
            "add_lineage",
            inputs=[_lineage_entry(i) for i in inputs or []],
            outputs=[_lineage_entry(o) for o in outputs or []],
        )

    # -- states ----------------------------------------------------------------------------------
    def set_state(self, state: str, error: str | None = None, **extra: Any) -> None:
        if state not in STATES:
            raise UsageError(f"unknown run state {state!r}; use one of: {', '.join(STATES)}")
        self._event("state", f"set_state({state!r})", state=state, error=error, **extra)

    def pending(self) -> None:
        self.set_state("pending")

    def running(self) -> None:
        self.set_state("running")

    def training(self) -> None:
        self.set_state("training")

    def completed(self) -> None:
        self.set_state("completed")

    def failed(self, error: str | None = None) -> None:
        self.set_state("failed", error)

    def stopped(self) -> None:
        self.set_state("stopped")

    # -- artifacts -------------------------------------------------------------------------------
    def add_artifact(
        self, path: str | os.PathLike[str], step: int | None = None, name: str | None = None
    ) -> None:
        """A file (or a directory, as a zip), uploaded in the background; same name overwrites."""
        w = self._writer("add_artifact")
        if w is None:
            return
        import hashlib

        try:
            default, data, kind = registry.read_artifact(path)
        except (OSError, HypermodelError) as exc:
            log.warning("tracking: run %r: artifact %s not recorded: %s", self.name, path, exc)
            return
        name = check_name(name or default, "artifact")
        sub = "artifacts" if step is None else f"artifacts/step-{int(step)}"
        key = f"{self.prefix}/{sub}/{name}"
        w.files.append((key, data))
        w.events.append(
            {
                "type": "artifact",
                "t": _time(),
                "writer": w.writer_id,
                "name": name,
                "step": step,
                "key": key,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "kind": kind,
            }
        )
        w.kick()

    add_directory_as_zip_artifact = add_artifact

    def add_tf_model_as_artifact(
        self, model: Any, filename: str, step: int | None = None
    ) -> str | None:
        """A Keras/TensorFlow model's weights (``model.save_weights``) as an artifact.

        Keras 3 saves weights only to ``*.weights.h5`` files, so that suffix is added to a
        ``filename`` without it; a save that writes several files (TensorFlow's checkpoint
        format) is stored as ``<filename>.zip``. Returns the artifact's name (None when the
        run records nothing). ``step`` makes it a step artifact, as for ``add_artifact``.
        """
        if self._writer("add_tf_model_as_artifact") is None:
            return None
        import tempfile

        name = check_name(Path(filename).name, "artifact")
        with tempfile.TemporaryDirectory(prefix="hml-weights-") as tmp:
            target = Path(tmp) / "weights"
            target.mkdir()
            try:
                path = target / name
                try:
                    model.save_weights(str(path))
                except ValueError as exc:  # Keras 3: "filepath must end in .weights.h5"
                    if ".weights.h5" not in str(exc):
                        raise
                    name = f"{name}.weights.h5"
                    model.save_weights(str(target / name))
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                log.warning(
                    "tracking: run %r: weights of %s not recorded: %s: %s",
                    self.name,
                    type(model).__name__,
                    type(exc).__name__,
                    exc,
                )
                return None
            files = [p for p in target.rglob("*") if p.is_file()]
            if len(files) == 1 and files[0].name == name:
                self.add_artifact(files[0], step=step, name=name)
                return name
            zipped = check_name(f"{name}.zip", "artifact")
            self.add_artifact(target, step=step, name=zipped)
            return zipped

    def add_current_notebook(self, path: str | os.PathLike[str] | None = None) -> str | None:
        """The notebook this code runs in, as an artifact (its last saved state: save first).

        Found from ``path``, else ``$HML_NOTEBOOK``, else the notebook path Jupyter gives its
        kernels (``$JPY_SESSION_NAME``), else VS Code's ``__vsc_ipynb_file__``. Outside a
        notebook it logs a warning and records nothing. Returns the artifact's name.
        """
        if self._writer("add_current_notebook") is None:
            return None
        notebook = Path(path) if path is not None else _current_notebook()
        if notebook is None:
            log.warning(
                "tracking: run %r: add_current_notebook: not running in a notebook that can "
                "be found (no $JPY_SESSION_NAME, $HML_NOTEBOOK or VS Code notebook); "
                "pass its path",
                self.name,
            )
            return None
        if not notebook.is_file():
            log.warning(
                "tracking: run %r: add_current_notebook: %s is not a file", self.name, notebook
            )
            return None
        name = check_name(notebook.name, "artifact")
        self.add_artifact(notebook, name=name)
        return name

    def add_shared_artifact(
        self, path: str | os.PathLike[str], name: str | None = None
    ) -> str | None:
        """A project-level artifact (``hml artifacts pull NAME``); written now, returns its name."""
        if self._writer("add_shared_artifact") is None or self.storage is None:
            return None
        return self._safely(
            "add_shared_artifact", registry.push_shared, self.storage, self.project, path, name
        )

    def pull_shared_artifact(self, name: str, dest: str | os.PathLike[str] | None = None) -> Path:
        if self.storage is None:
            raise HypermodelError(
                f"run '{self.name}' is in dry mode: the bucket could not be reached"
            )
        return registry.pull_shared(self.storage, self.project, name, dest)

    # -- models and datasets -----------------------------------------------------------------------
    def add_mlmodel(
        self, source: Any, name: str, version: str, short_description: str | None = None
    ) -> dict[str, Any] | None:
        """Publish a model version: a path (files stored once by content) or a model reference."""
        return self._publish("models", source, name, version, short_description)

    def add_dataset(
        self, source: Any, name: str, version: str, short_description: str | None = None
    ) -> dict[str, Any] | None:
        """Publish a dataset version: a Dataset (its checksum), a reference dict or a path."""
        return self._publish("datasets", source, name, version, short_description)

    def _publish(
        self, kind: str, source: Any, name: str, version: str, description: str | None
    ) -> dict[str, Any] | None:
        if self._writer(f"add_{kind[:-1]}") is None or self.storage is None:
            return None
        record = self._safely(
            f"add {kind[:-1]}",
            registry.publish_version,
            self.storage,
            self.project,
            kind,
            source,
            name,
            version,
            description=description,
            run_id=self.name,
            author=self.author,
        )
        if record is not None:
            entry = {"kind": kind[:-1], "name": name, "version": version, **_ref_summary(record)}
            self._event("lineage", f"add_{kind[:-1]}", inputs=[], outputs=[entry])
        return record

    def download_mlmodel(
        self, name: str, version: str, save_path: str | os.PathLike[str] = "."
    ) -> Path | dict[str, Any]:
        return self._download("models", name, version, save_path)

    def download_dataset(
        self, name: str, version: str, save_path: str | os.PathLike[str] = "."
    ) -> Path | dict[str, Any]:
        return self._download("datasets", name, version, save_path)

    def _download(
        self, kind: str, name: str, version: str, save_path: str | os.PathLike[str]
    ) -> Path | dict[str, Any]:
        if self.storage is None:
            raise HypermodelError(
                f"run '{self.name}' is in dry mode: the bucket could not be reached"
            )
        record = registry.get_version(self.storage, self.project, kind, name, version)
        if self._w is not None:  # reading a version is lineage: this run used it
            self._event(
                "lineage",
                f"download_{kind[:-1]}",
                outputs=[],
                inputs=[
                    {"kind": kind[:-1], "name": name, "version": version, **_ref_summary(record)}
                ],
            )
        return registry.download_version(self.storage, record, save_path)

    # -- code and environment ------------------------------------------------------------------------
    def add_package_versions(self, globals_: dict[str, Any] | None = None) -> None:
        """Versions of the imported packages, the machine and the app's git state."""
        if self._writer("add_package_versions") is None:
            return
        names = None
        if (
            globals_ is not None
        ):  # the seed's ``add_package_versions(globals())``: just those modules
            from importlib import metadata

            mapping = metadata.packages_distributions()
            tops = {
                getattr(v, "__name__", "").split(".")[0]
                for v in globals_.values()
                if hasattr(v, "__name__")
            }
            names = sorted({d for t in tops for d in mapping.get(t, [])})
        self._event(
            "packages",
            "add_package_versions",
            packages=identity.package_versions(names),
            machine=identity.machine(),
        )
        self.add_git_state()

    def add_git_state(self, path: str | os.PathLike[str] | None = None) -> None:
        """Commit, branch, dirty flag and remote (no credentials) of the app's work tree."""
        state = identity.git_state(path or app_dir(), full=True)
        if state:
            self._event("git", "add_git_state", name="app", state=state)

    def add_package_repo_state(self, package: str) -> None:
        """Git state of an external package's source tree, if it is a git work tree."""
        state = self._safely("add_package_repo_state", identity.package_repo_state, package)
        if state:
            self._event("git", "add_package_repo_state", name=package, state=state)

    # -- logs --------------------------------------------------------------------------------------
    def start_recording_logs(self, name: str | None = None) -> RecordingLogger:
        """Capture a logger (default: the root logger) into the run; returns that logger, as a
        :class:`RecordingLogger`: every ``logging.Logger`` method and attribute works on it, and
        ``logger.stop_recording_logs()`` stops the capture (as ``run.stop_recording_logs(name)``).

        A message that ends with ``"\\r"`` cancels its line break: the next message continues the
        same line without a new time/level/logger prefix (``"Progress \\r"`` then ``"-\\r"`` ten
        times reads ``... Progress ----------``)."""
        logger = logging.getLogger(name)
        recording = RecordingLogger(self, logger, name)
        key = name or ""
        if key in self._log_handlers or self._writer("start_recording_logs") is None:
            return recording
        handler = _RunLogHandler(self)
        level = logger.level
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)  # record info messages as the seed's example expects
        logger.addHandler(handler)
        self._log_handlers[key] = (handler, level)
        return recording

    def stop_recording_logs(self, name: str | None = None) -> None:
        found = self._log_handlers.pop(name or "", None)
        if found is not None:
            handler, level = found
            logger = logging.getLogger(name)
            logger.removeHandler(handler)
            logger.setLevel(level)

    def _log_line(self, line: str) -> None:
        w = self._w
        if w is not None:
            if w.ready != FORKS[0]:
                w.ensure()
            w.logs.append(line)

    # -- lifecycle ---------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything buffered now (in this thread). Never raises."""
        if self._w is not None:
            self._w.flush()

    def close(self) -> Report:
        """Flush and stop the background writer; returns what was written and dropped."""
        for key in list(self._log_handlers):
            self.stop_recording_logs(key or None)
        self._closed = True
        w, self._w = self._w, None
        return w.close() if w is not None else Report()

    def __enter__(self) -> Run:
        self._tokens.append(_CURRENT_RUN.set(self))
        if self.mode == WRITE:
            self.running()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tokens:
            _CURRENT_RUN.reset(self._tokens.pop())
        if self.mode == WRITE:
            if exc is None:
                self.completed()
            else:
                self.failed(f"{type(exc).__name__}: {exc}"[:2000])
        self.close()

    def _safely(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Storage failures are logged, never raised; usage errors (bad names, conflicts) raise."""
        from ..errors import AlreadyExistsError, NotFoundError, StorageError

        try:
            return fn(*args, **kwargs)
        except (UsageError, AlreadyExistsError, NotFoundError, ImportError):
            raise
        except (StorageError, OSError, Exception) as exc:
            log.warning(
                "tracking: run %r: %s failed: %s: %s",
                self.name,
                what,
                type(exc).__name__,
                str(exc)[:300],
            )
            return None


if TYPE_CHECKING:
    _Adapter = logging.LoggerAdapter[logging.Logger]
else:
    _Adapter = logging.LoggerAdapter


class RecordingLogger(_Adapter):
    """What ``run.start_recording_logs(name)`` returns: the captured ``logging.Logger`` (its
    methods and attributes, ``handlers``, ``setLevel``... all reach it) with
    ``stop_recording_logs()``, which stops recording it into the run."""

    def __init__(self, run: Run, logger: logging.Logger, name: str | None) -> None:
        super().__init__(logger, {})
        self.run = run
        self.recorded_name = name

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs  # the caller's extra= is kept (the default would replace it)

    def stop_recording_logs(self) -> None:
        """Stop recording this logger into the run (``run.stop_recording_logs(name)``)."""
        self.run.stop_recording_logs(self.recorded_name)

    def __getattr__(self, attribute: str) -> Any:
        logger = self.__dict__.get("logger")
        if logger is None or attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(logger, attribute)

    def __repr__(self) -> str:
        level = logging.getLevelName(self.logger.getEffectiveLevel())
        return f"<RecordingLogger {self.logger.name} ({level}) of run {self.run.name!r}>"


class _RunLogHandler(logging.Handler):
    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            continued = message.endswith("\r")  # '\r' cancels the line break
            with _LINE_LOCK:
                if self.run._log_line_open:  # the previous message asked to stay on its line
                    text = message
                else:
                    text = self.format(record)
                self.run._log_line_open = continued
                self.run._log_line(text.rstrip("\r") + ("" if continued else "\n"))
        except Exception:
            self.handleError(record)


_LINE_LOCK = threading.Lock()


def _storage_for(root: str | None, storage: Storage | None, ctx: Any) -> Storage | BaseException:
    """The bucket to write to; an exception (kept, not raised) puts the run in dry mode."""
    if storage is not None:
        return storage
    try:
        from ..storage import resolve_storage

        return resolve_storage(root or None)
    except UsageError:
        raise
    except Exception as exc:
        return exc


def _open_run(
    storage: Storage, key: str, meta: dict[str, Any], timeout: float
) -> dict[str, Any] | None:
    """Create ``run.json`` if absent; return the existing meta otherwise. Bounded by ``timeout``."""
    from ..storage.local import LocalStorage

    def attempt() -> dict[str, Any] | None:
        if storage.put_if_absent(key, orjson.dumps(meta, default=str)):
            return None
        return orjson.loads(storage.read_bytes(key))  # type: ignore[no-any-return]

    if isinstance(storage, LocalStorage):
        return attempt()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = attempt()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="hml-tracking-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout:.0f}s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _current_notebook() -> Path | None:
    """The path of the notebook whose kernel runs this code, where it can be found."""
    candidates = [os.environ.get("HML_NOTEBOOK"), os.environ.get("JPY_SESSION_NAME")]
    try:  # VS Code's notebooks put the file's path in the user namespace
        from IPython import get_ipython  # type: ignore[import-not-found,unused-ignore]

        shell = get_ipython()
        if shell is not None:
            candidates.append(shell.user_ns.get("__vsc_ipynb_file__"))
    except ImportError:
        pass
    for candidate in candidates:
        if candidate and str(candidate).endswith(".ipynb"):
            path = Path(str(candidate)).expanduser()
            if path.is_file():
                return path
    return None


def app_dir() -> str:
    """Where the app's code state is read: the working directory, as datasets and models do,
    so that a run, the datasets it wrote and the model it published name the same commit."""
    return os.getcwd()


def _lineage_entry(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return dict(item)
    if isinstance(item, str):
        return {"kind": "dataset", "name": item}
    described = registry.describe_source(item)
    ref = described.get("reference", {})
    return {"kind": "dataset", "name": ref.get("name", str(item)), "checksum": ref.get("checksum")}


def _ref_summary(record: dict[str, Any]) -> dict[str, Any]:
    ref = record.get("reference") or {}
    out: dict[str, Any] = {}
    if "checksum" in ref:
        out["checksum"] = ref["checksum"]
    if "files" in record:
        out["files"] = len(record["files"])
    return out
