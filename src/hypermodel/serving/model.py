"""ModelContainer: a fitted model with its feature distributions, published with its lineage.

A training op fills a container and publishes it; the inference server loads it back::

    mc = ModelContainer("wine-classifier")
    mc.model = clf
    mc.analyze_distributions(df, numeric=[...], categorical=[...])
    mc.add_training_dataset(train_ds)
    ref = mc.publish(app)                      # models/wine-classifier/<version>/...

    mc.load("latest", app)                     # verifies both digests before unpickling
    mc.load("production", app)                 # an alias (see hypermodel.models)

Layout in the bucket (keys relative to the storage root)::

    models/<name>/<version>/model.joblib
    models/<name>/<version>/distributions.json
    models/<name>/<version>/reference.json     # digests, datasets, commit, run id, long name
    models/<name>/latest.json                  # pointer, written last

The reference schema, the aliases and the store of every published model live in
``hypermodel.models``; the names below are re-exported from there.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import secrets
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._lazy import require
from ..errors import AlreadyExistsError, NotFoundError, StorageError, UsageError
from ..models.reference import DISTRIBUTIONS_FILE as DISTRIBUTIONS_FILE
from ..models.reference import LATEST_FILE as LATEST_FILE
from ..models.reference import MODEL_FILE as MODEL_FILE
from ..models.reference import REFERENCE_FILE as REFERENCE_FILE
from ..models.reference import SHA256, check_location, short_error
from ..models.reference import ModelReference as ModelReference
from ..models.reference import latest_reference_key as latest_reference_key
from ..models.reference import sha256_hex as sha256_hex
from ..models.reference import unreadable_error as unreadable_error
from ..models.reference import version_reference_key as version_reference_key
from ..names import check_name
from .errors import ModelIntegrityError, ModelNotLoadedError

if TYPE_CHECKING:
    from ..storage import Storage

# The app whose @hml.inference initialisers are running (set by HmlInferenceApp.build): a
# container loaded there without a target reads that app's bucket and joins its models.
INITIALISING_APP: ContextVar[Any] = ContextVar("hml_initialising_app", default=None)
# True while ``inference_app.load_model`` loads a container (its own load() call).
LOADING_FOR_APP: ContextVar[bool] = ContextVar("hml_loading_for_app", default=False)


def through_app(container: Any, ref: Any, options: dict[str, Any]) -> Any:
    """A container loaded by hand (``container.load(ref)``) inside an initialiser goes through
    ``inference_app.load_model``, like one loaded there: ``run-prod --model NAME=REF`` replaces
    its ref, and a moving ref (``latest``, an alias) is followed. None elsewhere (the caller
    then loads it itself)."""
    serving = INITIALISING_APP.get()
    if serving is None or LOADING_FOR_APP.get():
        return None
    return serving.inference.load_model(container, ref, **options)


__all__ = ["ModelContainer", "ModelIntegrityError", "ModelReference"]


class ModelContainer:
    """A model plus what is known about its inputs: numeric summaries and categorical values."""

    def __init__(
        self,
        name: str,
        *,
        app: Any = None,
        features_numeric: list[str] | None = None,
        features_categorical: list[str] | None = None,
        target: str | None = None,
    ) -> None:
        self.name = check_name(name, "model")
        self.app = app
        self.features_numeric = list(features_numeric or [])
        self.features_categorical = list(features_categorical or [])
        self.target = target
        self.model: Any = None
        self.distributions: dict[str, Any] = {"numeric": {}, "categorical": {}}
        self.datasets: list[str] = []
        self.metrics: dict[str, float] = {}  # recorded in the reference when published
        self.params: dict[str, Any] = {}
        self.reference: ModelReference | None = None

    def __repr__(self) -> str:
        state = (
            self.reference.long_name
            if self.reference
            else ("fitted" if self.model is not None else "empty")
        )
        return f"<ModelContainer {self.name}: {state}>"

    @property
    def is_loaded(self) -> bool:
        return self.model is not None

    def blank(self) -> ModelContainer:
        """A new, unloaded container declared like this one (a reload loads into it)."""
        return ModelContainer(
            self.name,
            app=self.app,
            features_numeric=self.features_numeric,
            features_categorical=self.features_categorical,
            target=self.target,
        )

    # -- distributions -------------------------------------------------------------------------
    def analyze_distributions(
        self, frame: Any, numeric: list[str] | None = None, categorical: list[str] | None = None
    ) -> dict[str, Any]:
        """Record summaries of numeric columns and the distinct values of categorical ones."""
        pd = require("pandas", "dev", "ModelContainer.analyze_distributions")
        df = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
        if numeric is not None:
            self.features_numeric = list(numeric)
        if categorical is not None:
            self.features_categorical = list(categorical)
        missing = [
            c for c in (*self.features_numeric, *self.features_categorical) if c not in df.columns
        ]
        if missing:
            raise UsageError(
                f"model '{self.name}': columns {missing} are not in the frame "
                f"(columns: {', '.join(map(str, df.columns))})"
            )
        summaries = {}
        for col in self.features_numeric:
            s = df[col].astype(float)
            summaries[col] = {
                "count": int(s.count()),
                "mean": _num(s.mean()),
                "std": _num(s.std()),
                "min": _num(s.min()),
                "p25": _num(s.quantile(0.25)),
                "p50": _num(s.quantile(0.5)),
                "p75": _num(s.quantile(0.75)),
                "max": _num(s.max()),
            }
        values = {
            col: sorted({_plain(v) for v in df[col].dropna().unique()}, key=str)
            for col in self.features_categorical
        }
        self.distributions = {"numeric": summaries, "categorical": values}
        return self.distributions

    def _categories(self, col: str) -> list[Any]:
        try:
            return list(self.distributions["categorical"][col])
        except KeyError:
            raise UsageError(
                f"model '{self.name}' has no recorded values for categorical feature "
                f"'{col}'; call analyze_distributions(..., categorical=[...]) first"
            ) from None

    def _summary(self, col: str) -> dict[str, Any]:
        try:
            return dict(self.distributions["numeric"][col])
        except KeyError:
            raise UsageError(
                f"model '{self.name}' has no summary for numeric feature '{col}'; "
                "call analyze_distributions(..., numeric=[...]) first"
            ) from None

    def one_hot_encode(self, frame: Any, columns: list[str] | None = None) -> Any:
        """Replace each categorical column by ``<col>_<value>`` 0/1 columns for the RECORDED values.

        Values unseen at training time encode as all zeros, so serving never grows new columns.
        """
        pd = require("pandas", "dev", "ModelContainer.one_hot_encode")
        df = _frame(pd, frame).copy()
        for col in columns if columns is not None else self.features_categorical:
            recorded = self._categories(col)
            raw = df.pop(col) if col in df.columns else pd.Series([None] * len(df), index=df.index)
            as_text = raw.map(lambda v: None if v is None else str(_plain(v)))
            for value in recorded:
                df[f"{col}_{value}"] = (as_text == str(value)).astype("int64")
        return df

    def scale(self, frame: Any, columns: list[str] | None = None, method: str = "standard") -> Any:
        """Scale numeric columns with the recorded summaries: ``standard`` (z-score) or ``minmax``."""
        pd = require("pandas", "dev", "ModelContainer.scale")
        if method not in ("standard", "minmax"):
            raise UsageError(f"scale method {method!r} is not known: use 'standard' or 'minmax'")
        df = _frame(pd, frame).copy()
        for col in columns if columns is not None else self.features_numeric:
            s = self._summary(col)
            if method == "standard":
                offset, span = s["mean"], s["std"]
            else:
                offset, span = s["min"], (s["max"] - s["min"])
            df[col] = (df[col].astype(float) - offset) / (
                span or 1.0
            )  # constant column: shift only
        return df

    def build_features(self, frame: Any, scale: str | None = None) -> Any:
        """Numeric columns (optionally scaled) then one-hot categoricals, in a stable order."""
        pd = require("pandas", "dev", "ModelContainer.build_features")
        df = _frame(pd, frame)
        missing = [c for c in self.features_numeric if c not in df.columns]
        if missing:
            raise UsageError(f"model '{self.name}': input lacks numeric features {missing}")
        numeric = df[self.features_numeric]
        if scale:
            numeric = self.scale(numeric, method=scale)
        categorical = df[[c for c in self.features_categorical if c in df.columns]]
        encoded = self.one_hot_encode(categorical.reindex(columns=self.features_categorical))
        return pd.concat([numeric.reset_index(drop=True), encoded.reset_index(drop=True)], axis=1)

    # -- lineage -------------------------------------------------------------------------------
    def add_training_dataset(self, dataset: Any) -> str:
        """Record a training dataset: an object with ``.checksum`` or the checksum string itself."""
        checksum = dataset if isinstance(dataset, str) else getattr(dataset, "checksum", None)
        if callable(checksum):
            checksum = checksum()
        if not isinstance(checksum, str) or not checksum:
            raise UsageError(
                f"add_training_dataset needs a dataset with a .checksum or a checksum "
                f"string, got {type(dataset).__name__}"
            )
        if checksum not in self.datasets:
            self.datasets.append(checksum)
        return checksum

    def predict(self, features: Any) -> Any:
        return self._fitted().predict(features)

    def _fitted(self) -> Any:
        if self.model is None:
            raise ModelNotLoadedError(
                f"model '{self.name}' has no fitted model: set .model in the "
                "training op, or call .load('latest') in @hml.inference"
            )
        return self.model

    # -- publish -------------------------------------------------------------------------------
    def publish(
        self,
        target: Any = None,
        version: str | None = None,
        *,
        metrics: dict[str, float] | None = None,
        params: dict[str, Any] | None = None,
    ) -> ModelReference:
        """Write the model, its distributions, its reference and then the ``latest`` pointer.

        ``target`` is a Storage, an app (``app.storage()``) or None (the running op's bucket,
        else the container's app, else ``$HML_ROOT``). ``metrics`` (name -> finite number) and
        ``params`` (JSON values) are recorded in the reference, with ``.metrics``/``.params``.
        """
        joblib = require("joblib", "serve", "ModelContainer.publish")
        storage = self._storage(target)
        model = self._fitted()
        recorded_metrics = check_metrics({**self.metrics, **(metrics or {})}, self.name)
        recorded_params = check_params({**self.params, **(params or {})}, self.name)
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        model_bytes = buffer.getvalue()
        dist_bytes = (
            json.dumps(self.distributions, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        )
        now = datetime.now(timezone.utc)
        commit, dirty = git_state()
        version = (
            check_version(storage, self.name, version)
            if version
            else f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        )
        base = f"models/{self.name}/{version}"
        ref = ModelReference(
            name=self.name,
            version=version,
            long_name=f"{self.name}_{now:%Y%m%d-%H%M%S}_{commit[:8]}",
            created=now.isoformat(timespec="seconds"),
            model_sha256=sha256_hex(model_bytes),
            distributions_sha256=sha256_hex(dist_bytes),
            model_size=len(model_bytes),
            datasets=list(self.datasets),
            commit=commit,
            dirty=dirty,
            features={
                "numeric": self.features_numeric,
                "categorical": self.features_categorical,
                "target": self.target,
            },
            metrics=recorded_metrics,
            params=recorded_params,
            key=f"{base}/{REFERENCE_FILE}",
            **run_lineage(),
        )
        # The model file is created only if absent so that a version is never overwritten.
        if not storage.put_if_absent(f"{base}/{MODEL_FILE}", model_bytes):
            raise AlreadyExistsError(
                f"model '{self.name}' version '{version}' is already published "
                f"at {storage.url}/{base}; publish under another version"
            )
        storage.write_bytes(f"{base}/{DISTRIBUTIONS_FILE}", dist_bytes)
        storage.write_bytes(f"{base}/{REFERENCE_FILE}", ref.to_json())
        # Last: readers following "latest" only ever find a complete version.
        pointer = {
            "name": self.name,
            "version": version,
            "reference": ref.key,
            "long_name": ref.long_name,
        }
        storage.write_bytes(
            f"models/{self.name}/{LATEST_FILE}", json.dumps(pointer, indent=2).encode()
        )
        self.reference = ref
        return ref

    # -- load ----------------------------------------------------------------------------------
    def load(
        self, ref: Any = "latest", storage: Any = None, *, sha256: str | None = None
    ) -> ModelContainer:
        """Resolve ``ref`` (``latest``, a version, an alias such as ``production``, a bucket key,
        a local path or a ModelReference), check the model's and the distributions' SHA256
        against the reference, then unpickle.

        ``sha256`` pins the model digest expected; without it ``$HML_MODEL_SHA256_<MODEL>``
        (``wine-classifier`` -> ``HML_MODEL_SHA256_WINE_CLASSIFIER``) or, for an app with one
        model, ``$HML_MODEL_SHA256`` pins it (``inference deploy --model-sha256`` sets them).
        A model with another digest is refused before it is read.
        """
        routed = through_app(self, ref, {"storage": storage, "sha256": sha256})
        if routed is not None:
            return routed  # type: ignore[no-any-return]
        pin = (sha256, "the sha256 argument") if sha256 is not None else pinned_digest(self.name)
        reference, read = self._resolve(ref, storage)
        if reference.kind != "joblib":
            raise ModelIntegrityError(
                f"{reference.key or 'the reference'} is a {reference.kind} model, not a joblib "
                "one: load it with hypermodel.tf.TensorflowModelContainer"
            )
        if pin is not None:
            digest = normalise_digest(pin[0], f"the model digest pinned by {pin[1]}")
            if digest != reference.model_sha256:
                raise ModelIntegrityError(
                    f"model '{self.name}' {reference.long_name} (version {reference.version}) has "
                    f"digest sha256:{reference.model_sha256}, not sha256:{digest} as pinned by "
                    f"{pin[1]}: load the pinned version, or change the pin to deploy this one"
                )
        where = reference.directory or "."
        model_where = f"{where}/{reference.model_file}"
        dist_where = f"{where}/{reference.distributions_file}"
        model_bytes = read(reference.model_file)
        _verify(model_bytes, reference.model_sha256, model_where)
        dist_bytes = read(reference.distributions_file)
        _verify(dist_bytes, reference.distributions_sha256, dist_where)
        try:
            distributions = json.loads(dist_bytes)
        except ValueError as exc:  # UnicodeDecodeError included
            raise ModelIntegrityError(
                f"{dist_where} matches its digest but is not valid JSON ({short_error(exc)}); "
                "re-publish the model"
            ) from None
        if not isinstance(distributions, dict):
            raise ModelIntegrityError(
                f"{dist_where} is not a JSON object of distributions; re-publish the model"
            )
        joblib = require("joblib", "serve", "ModelContainer.load")
        try:  # only after both digests matched
            model = joblib.load(io.BytesIO(model_bytes))
        except Exception as exc:
            raise ModelIntegrityError(
                f"{model_where} matches its digest but cannot be unpickled ({short_error(exc)}): "
                "install the library versions it was trained with, or re-publish the model"
            ) from None
        self.model = model
        self.distributions = distributions
        features = reference.features or {}
        self.features_numeric = list(features.get("numeric") or self.features_numeric)
        self.features_categorical = list(features.get("categorical") or self.features_categorical)
        self.target = features.get("target", self.target)
        self.datasets = list(reference.datasets)
        self.reference = reference
        serving = INITIALISING_APP.get()
        if serving is not None and self.name not in serving.models:
            serving.register_model(self.name, self)  # so /readyz and lineage headers see it
        return self

    def versions(self, storage: Any = None) -> list[str]:
        """Published version names, sorted (``ModelStore.versions`` gives the references)."""
        from ..models.store import ModelStore

        return ModelStore(self._storage(storage)).version_names(self.name)

    def _resolve(self, ref: Any, storage: Any) -> tuple[ModelReference, Any]:
        if isinstance(ref, ModelReference):
            store = self._storage(storage)
            check_location(ref, store)
            return ref, _reader_for(store, ref.directory)
        if not isinstance(ref, (str, os.PathLike)):
            raise UsageError(
                f"model reference must be 'latest', a version, a key or a path, got {ref!r}"
            )
        text = os.fspath(ref)
        path = Path(text)
        if text.endswith(".json") and path.is_file():  # a reference file on local disk
            reference = ModelReference.from_json(_read_local(path), key=str(path))
            return reference, lambda name: _read_local(path.parent / name)
        from ..models.store import ModelStore

        store = self._storage(storage)
        key = self._reference_key(ModelStore(store), text)
        try:
            raw = store.read_bytes(key)
        except NotFoundError:
            raise NotFoundError(
                f"model '{self.name}': no reference at {store.url}/{key}; "
                f"{ModelStore(store).choices(self.name)}"
            ) from None
        except (OSError, StorageError) as exc:
            raise unreadable_error(f"{store.url}/{key}", exc) from None
        reference = ModelReference.from_json(raw, key=key)
        check_location(reference, store)
        return reference, _reader_for(store, reference.directory)

    def _reference_key(self, store: Any, text: str) -> str:
        if text.endswith(".json"):
            return text
        if "/" in text:  # a version directory key
            return f"{text.rstrip('/')}/{REFERENCE_FILE}"
        check_name(text, "model version or alias")
        return str(store.reference_key(self.name, text))  # latest, a version or an alias

    def _storage(self, target: Any) -> Storage:
        from ..storage import Storage, open_storage, resolve_storage

        if isinstance(target, Storage):
            return target
        if target is not None and callable(getattr(target, "storage", None)):
            return target.storage()  # type: ignore[no-any-return]
        if isinstance(target, str):
            return open_storage(target)
        if target is not None:
            raise UsageError(f"expected a Storage, an app or a bucket URL, got {target!r}")
        app = self.app if self.app is not None else INITIALISING_APP.get()
        if app is not None:
            return app.storage()  # type: ignore[no-any-return]
        return resolve_storage()


PIN_ENV = "HML_MODEL_SHA256"


def pin_env_name(model: str) -> str:
    """The env var pinning one model's digest: ``wine-classifier`` -> ``HML_MODEL_SHA256_WINE_CLASSIFIER``."""
    return f"{PIN_ENV}_{re.sub(r'[^A-Z0-9]', '_', model.upper())}"


def pinned_digest(model: str) -> tuple[str, str] | None:
    """(digest, where it came from) when the environment pins ``model``'s digest."""
    for var in (pin_env_name(model), PIN_ENV):
        value = os.environ.get(var, "").strip()
        if value:
            return value, f"${var}"
    return None


def normalise_digest(text: str, where: str) -> str:
    """``sha256:<64 hex>`` or ``<64 hex>`` -> the 64 lower-case hex digits; else a clear error."""
    digest = str(text).strip().lower().removeprefix("sha256:")
    if not SHA256.fullmatch(digest):
        raise UsageError(
            f"{where} is {text!r}, not a SHA-256 digest: give 64 hex digits, optionally prefixed "
            "'sha256:' (the server's x-model-digest header and `/` page show a model's digest)"
        )
    return digest


def _verify(data: bytes, expected: str, where: str) -> None:
    actual = sha256_hex(data)
    if actual != expected:
        raise ModelIntegrityError(
            f"{where} has SHA256 {actual} but its reference records {expected}: the file was "
            "changed after publishing and will not be loaded; re-publish the model or load another version"
        )


def _reader_for(store: Storage, directory: str) -> Any:
    def read(name: str) -> bytes:
        key = f"{directory}/{name}" if directory else name
        try:
            return store.read_bytes(key)
        except NotFoundError:
            raise ModelIntegrityError(
                f"{store.url}/{key} named by the model reference is missing: the model "
                "directory was changed after publishing; re-publish the model or load another "
                "version"
            ) from None
        except (OSError, StorageError) as exc:
            raise unreadable_error(f"{store.url}/{key}", exc) from None

    return read


def _read_local(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelIntegrityError(
            f"{path} named by the model reference is missing; re-publish the model"
        ) from None
    except OSError as exc:
        raise unreadable_error(str(path), exc) from None


def check_version(storage: Storage, name: str, version: str) -> str:
    """A version name a publication may take: a safe name, not ``latest`` nor ``aliases``, and
    not an alias of the model (a name must never mean both a version and an alias)."""
    from ..models.aliases import alias_names
    from ..models.reference import RESERVED

    check_name(version, "model version")
    if version in RESERVED:
        raise UsageError(
            f"model version name {version!r} is reserved (models/<name>/{version} holds the "
            "model's pointers); choose another version name"
        )
    if version in alias_names(storage, name):
        raise UsageError(
            f"model '{name}' has an alias named {version!r}: a version of that name would make "
            "the name mean two things; choose another version name"
        )
    return version


def check_metrics(metrics: Any, name: str) -> dict[str, float]:
    """name -> finite number, as a reference records metrics."""
    if not isinstance(metrics, dict):
        raise UsageError(f"model '{name}': metrics must be a dict of name -> number")
    out = {}
    for key, value in metrics.items():
        number = value.item() if callable(getattr(value, "item", None)) else value
        if (
            not isinstance(key, str)
            or isinstance(number, bool)
            or not isinstance(number, (int, float))
            or not math.isfinite(number)
        ):
            raise UsageError(
                f"model '{name}': metric {key!r} = {value!r} is not recordable: metrics are "
                "names with finite numbers (log NaN or Infinity as a run metric instead)"
            )
        out[key] = float(number)
    return out


def check_params(params: Any, name: str) -> dict[str, Any]:
    """JSON values, as a reference records parameters."""
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise UsageError(f"model '{name}': params must be a dict with string keys")
    try:
        return dict(json.loads(json.dumps(params, allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"model '{name}': params must be JSON values (str, numbers, bools, lists, dicts): {exc}"
        ) from None


def run_lineage() -> dict[str, Any]:
    from ..context import maybe_context

    ctx = maybe_context()
    if ctx is not None:
        return {"run_id": ctx.run_id, "pipeline": ctx.pipeline, "task": ctx.task}
    return {
        "run_id": os.environ.get("HML_RUN_ID") or None,
        "pipeline": os.environ.get("HML_PIPELINE") or None,
        "task": os.environ.get("HML_TASK") or None,
    }


def git_state(path: str | None = None) -> tuple[str, bool]:
    """(commit, dirty) of the code around ``path`` (cwd), as datasets and runs record it (see
    ``hypermodel.provenance``): the work tree, else the commit baked into the image
    (``$HML_GIT_COMMIT``), else ("unknown", False)."""
    from ..provenance import code_state

    state = code_state(path)
    if state["source"] == "none":
        return "unknown", False
    return state["commit"], bool(state.get("dirty"))


def _num(value: Any) -> float | None:
    number = float(value)
    return None if number != number else number  # NaN (e.g. std of one row) is not JSON


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so categorical values round-trip through JSON."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _frame(pd: Any, frame: Any) -> Any:
    if isinstance(frame, pd.DataFrame):
        return frame
    if isinstance(frame, dict):
        return pd.DataFrame([frame])
    return pd.DataFrame(frame)
