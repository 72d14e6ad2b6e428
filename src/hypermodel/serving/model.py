"""ModelContainer: a fitted model with its feature distributions, published with its lineage.

A training op fills a container and publishes it; the inference server loads it back::

    mc = ModelContainer("wine-classifier")
    mc.model = clf
    mc.analyze_distributions(df, numeric=[...], categorical=[...])
    mc.add_training_dataset(train_ds)
    ref = mc.publish(app)                      # models/wine-classifier/<version>/...

    mc.load("latest", app)                     # verifies both digests before unpickling

Layout in the bucket (keys relative to the storage root)::

    models/<name>/<version>/model.joblib
    models/<name>/<version>/distributions.json
    models/<name>/<version>/reference.json     # digests, datasets, commit, run id, long name
    models/<name>/latest.json                  # pointer, written last
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._lazy import require
from ..errors import AlreadyExistsError, NotFoundError, StorageError, UsageError
from ..names import check_name, is_safe_name
from .errors import ModelIntegrityError, ModelNotLoadedError

if TYPE_CHECKING:
    from ..storage import Storage

MODEL_FILE = "model.joblib"
DISTRIBUTIONS_FILE = "distributions.json"
REFERENCE_FILE = "reference.json"
LATEST_FILE = "latest.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")

# The app whose @hml.inference initialisers are running (set by HmlInferenceApp.build): a
# container loaded there without a target reads that app's bucket and joins its models.
INITIALISING_APP: ContextVar[Any] = ContextVar("hml_initialising_app", default=None)

__all__ = ["ModelContainer", "ModelIntegrityError", "ModelReference"]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class ModelReference:
    """What a published model is and where it came from; stored as ``reference.json``."""

    name: str
    version: str
    long_name: str
    created: str
    model_sha256: str
    distributions_sha256: str
    model_file: str = MODEL_FILE
    distributions_file: str = DISTRIBUTIONS_FILE
    model_size: int = 0
    datasets: list[str] = field(default_factory=list)
    commit: str = "unknown"
    dirty: bool = False
    run_id: str | None = None
    pipeline: str | None = None
    task: str | None = None
    features: dict[str, Any] = field(default_factory=dict)
    key: str | None = None  # where reference.json lives (set when read or written; not stored)

    def to_json(self) -> bytes:
        data = asdict(self)
        data.pop("key")
        return json.dumps(data, indent=2, sort_keys=True).encode("utf-8") + b"\n"

    @classmethod
    def from_json(cls, raw: bytes | str, key: str | None = None) -> ModelReference:
        where = key or "model reference"
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ModelIntegrityError(f"{where} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelIntegrityError(f"{where} is not a JSON object")
        known = {f for f in cls.__dataclass_fields__ if f != "key"}
        missing = {
            "name",
            "version",
            "long_name",
            "created",
            "model_sha256",
            "distributions_sha256",
        } - set(data)
        if missing:
            raise ModelIntegrityError(
                f"{where} lacks {', '.join(sorted(missing))}; re-publish the model"
            )
        _check_types(data, where)
        ref = cls(**{k: v for k, v in data.items() if k in known}, key=key)
        for digest in (ref.model_sha256, ref.distributions_sha256):
            if not _SHA256.fullmatch(digest):
                raise ModelIntegrityError(
                    f"{where} holds a malformed SHA256 digest {digest!r}; re-publish the model"
                )
        for what, value in (
            ("name", ref.name),
            ("version", ref.version),
            ("model_file", ref.model_file),
            ("distributions_file", ref.distributions_file),
        ):
            if not is_safe_name(value):  # files named must lie in the reference's own directory
                raise ModelIntegrityError(
                    f"{where}: {what} {value!r} is not allowed (a plain file or directory name: "
                    "letters, digits, '_', '-', '.'; no '/' or '..'); the reference was changed "
                    "after publishing: re-publish the model or load another version"
                )
        return ref

    @property
    def directory(self) -> str:
        return self.key.rsplit("/", 1)[0] if self.key and "/" in self.key else ""

    def lineage_headers(self) -> dict[str, str]:
        """The HTTP headers every prediction made with this model carries."""
        return {
            "x-model-long-name": self.long_name,
            "x-model-version": self.version,
            "x-model-digest": f"sha256:{self.model_sha256}",
            "x-model-dataset": ",".join(self.datasets) or "none",
            "x-model-commit": self.commit,
        }

    def summary(self) -> dict[str, Any]:
        """The lineage shown on the server's index page."""
        return {
            "name": self.name,
            "version": self.version,
            "long_name": self.long_name,
            "created": self.created,
            "model_sha256": self.model_sha256,
            "distributions_sha256": self.distributions_sha256,
            "datasets": list(self.datasets),
            "commit": self.commit,
            "dirty": self.dirty,
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "task": self.task,
            "reference": self.key,
        }


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
    def publish(self, target: Any = None, version: str | None = None) -> ModelReference:
        """Write the model, its distributions, its reference and then the ``latest`` pointer.

        ``target`` is a Storage, an app (``app.storage()``) or None (the running op's bucket,
        else the container's app, else ``$HML_ROOT``).
        """
        joblib = require("joblib", "serve", "ModelContainer.publish")
        storage = self._storage(target)
        model = self._fitted()
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        model_bytes = buffer.getvalue()
        dist_bytes = (
            json.dumps(self.distributions, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        )
        now = datetime.now(timezone.utc)
        commit, dirty = git_state()
        version = (
            check_name(version, "model version")
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
            key=f"{base}/{REFERENCE_FILE}",
            **_run_lineage(),
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
        """Resolve ``ref`` (``latest``, a version, a bucket key, a local path or a ModelReference),
        check the model's and the distributions' SHA256 against the reference, then unpickle.

        ``sha256`` pins the model digest expected; without it ``$HML_MODEL_SHA256_<MODEL>``
        (``wine-classifier`` -> ``HML_MODEL_SHA256_WINE_CLASSIFIER``) or, for an app with one
        model, ``$HML_MODEL_SHA256`` pins it (``inference deploy --model-sha256`` sets them).
        A model with another digest is refused before it is read.
        """
        pin = (sha256, "the sha256 argument") if sha256 is not None else pinned_digest(self.name)
        reference, read = self._resolve(ref, storage)
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
                f"{dist_where} matches its digest but is not valid JSON ({_short(exc)}); "
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
                f"{model_where} matches its digest but cannot be unpickled ({_short(exc)}): "
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
        """Published versions, oldest first."""
        store = self._storage(storage)
        prefix = f"models/{self.name}"
        return sorted(
            {
                k[len(prefix) + 1 :].split("/", 1)[0]
                for k in store.list(prefix)
                if k.endswith(f"/{REFERENCE_FILE}")
            }
        )

    def _resolve(self, ref: Any, storage: Any) -> tuple[ModelReference, Any]:
        if isinstance(ref, ModelReference):
            store = self._storage(storage)
            _check_location(ref, store)
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
        store = self._storage(storage)
        key = self._reference_key(store, text)
        try:
            raw = store.read_bytes(key)
        except NotFoundError:
            raise NotFoundError(
                f"model '{self.name}': no reference at {store.url}/{key}; "
                f"published versions: {', '.join(self.versions(store)) or 'none'}"
            ) from None
        except (OSError, StorageError) as exc:
            raise unreadable_error(f"{store.url}/{key}", exc) from None
        reference = ModelReference.from_json(raw, key=key)
        _check_location(reference, store)
        return reference, _reader_for(store, reference.directory)

    def _reference_key(self, store: Storage, text: str) -> str:
        if text == "latest":
            return latest_reference_key(store, self.name)
        if text.endswith(".json"):
            return text
        if "/" in text:  # a version directory key
            return f"{text.rstrip('/')}/{REFERENCE_FILE}"
        return f"models/{self.name}/{check_name(text, 'model version')}/{REFERENCE_FILE}"

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
    if not _SHA256.fullmatch(digest):
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


def unreadable_error(where: str, exc: BaseException) -> ModelIntegrityError:
    """A model file that exists but cannot be read as one (a directory, a link out of the
    bucket, no permission): the version's directory was tampered with."""
    reason = (
        "it is a directory"
        if isinstance(exc, IsADirectoryError)
        else (exc.strerror if isinstance(exc, OSError) and exc.strerror else _short(exc))
    )
    return ModelIntegrityError(
        f"{where} cannot be read as a model file ({reason}): the model directory was changed "
        "after publishing; re-publish the model or load another version"
    )


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def version_reference_key(key: Any, name: str | None = None) -> tuple[str, str] | None:
    """(model, version) when ``key`` is ``models/<model>/<version>/reference.json`` with safe
    names (and ``<model>`` is ``name`` when given), else None."""
    if not isinstance(key, str):
        return None
    parts = key.split("/")
    if (
        len(parts) != 4
        or parts[0] != "models"
        or parts[3] != REFERENCE_FILE
        or not is_safe_name(parts[1])
        or not is_safe_name(parts[2])
        or (name is not None and parts[1] != name)
    ):
        return None
    return parts[1], parts[2]


def latest_reference_key(store: Storage, name: str) -> str:
    """The reference key ``models/<name>/latest.json`` points at, which must be one of the
    model's own version directories; any other pointer is a ModelIntegrityError naming the
    file and the fix."""
    pointer_key = f"models/{name}/{LATEST_FILE}"
    where = f"{store.url}/{pointer_key}"
    fix = "re-publish the model, or load a version by name (e.g. load('<version>'))"
    try:
        raw = store.read_bytes(pointer_key)
    except NotFoundError:
        raise NotFoundError(
            f"model '{name}' has never been published to {store.url} "
            f"(no {pointer_key}); run the training pipeline first"
        ) from None
    except (OSError, StorageError) as exc:
        raise unreadable_error(where, exc) from None
    try:
        pointer = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError included
        raise ModelIntegrityError(f"{where} is not valid JSON ({_short(exc)}); {fix}") from None
    reference = pointer.get("reference") if isinstance(pointer, dict) else None
    if not isinstance(reference, str):
        raise ModelIntegrityError(
            f"{where} is not a model pointer (a JSON object with a 'reference' string); {fix}"
        )
    found = version_reference_key(reference, name)
    if found is None:
        raise ModelIntegrityError(
            f"{where} points at {reference!r}, which is not one of model '{name}''s version "
            f"directories (models/{name}/<version>/{REFERENCE_FILE}); refused: {fix}"
        )
    version = pointer.get("version", found[1])
    if version != found[1]:
        raise ModelIntegrityError(
            f"{where} names version {version!r} but points at {reference!r}; {fix}"
        )
    return reference


def _check_location(ref: ModelReference, store: Storage) -> None:
    """A reference read from a bucket must live in its own model version's directory
    (``models/<name>/<version>/reference.json``, with its own name and version), so that the
    files it names can only be that version's files."""
    where = f"{store.url}/{ref.key}" if ref.key else f"model reference {ref.long_name!r}"
    found = version_reference_key(ref.key)
    if found is None:
        raise ModelIntegrityError(
            f"{where} is not in a model version's directory (models/<name>/<version>/"
            f"{REFERENCE_FILE}); refused: load a published version ('latest', a version, or its "
            "key)"
        )
    if found != (ref.name, ref.version):
        raise ModelIntegrityError(
            f"{where} records model {ref.name!r} version {ref.version!r}, not the "
            f"{found[0]!r} {found[1]!r} of its directory: it was copied or changed after "
            "publishing; re-publish the model or load another version"
        )


_STR = ("name", "version", "long_name", "created", "model_sha256", "distributions_sha256")
_OPTIONAL_STR = ("run_id", "pipeline", "task")


def _check_types(data: dict[str, Any], where: str) -> None:
    """Every field of a reference has the type ``ModelReference`` declares."""

    def bad(field_name: str, expected: str) -> ModelIntegrityError:
        got = type(data[field_name]).__name__
        return ModelIntegrityError(
            f"{where}: '{field_name}' is a {got}, not {expected}; the reference was changed after "
            "publishing: re-publish the model or load another version"
        )

    for name in (*_STR, "model_file", "distributions_file", "commit"):
        if name in data and not isinstance(data[name], str):
            raise bad(name, "a string")
    for name in _OPTIONAL_STR:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise bad(name, "a string or null")
    if "model_size" in data and (
        not isinstance(data["model_size"], int) or isinstance(data["model_size"], bool)
    ):
        raise bad("model_size", "an integer")
    if "dirty" in data and not isinstance(data["dirty"], bool):
        raise bad("dirty", "true or false")
    datasets = data.get("datasets", [])
    if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
        raise bad("datasets", "a list of strings")
    features = data.get("features", {})
    if not isinstance(features, dict):
        raise bad("features", "an object")
    for name in ("numeric", "categorical"):
        value = features.get(name)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise ModelIntegrityError(
                f"{where}: 'features.{name}' is not a list of strings; re-publish the model"
            )
    target = features.get("target")
    if target is not None and not isinstance(target, str):
        raise ModelIntegrityError(
            f"{where}: 'features.target' is not a string or null; re-publish the model"
        )


def _run_lineage() -> dict[str, Any]:
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
