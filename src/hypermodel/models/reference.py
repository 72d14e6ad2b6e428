"""The one reference schema of every published model, and the checks every read makes.

``models/<name>/<version>/reference.json`` says what a published model is (its kind, the files
of its version directory with their SHA-256) and where it came from (training datasets, commit,
run, metrics, parameters). A joblib model (``ModelContainer``) and a TensorFlow export
(``TensorflowModelContainer``) write the same schema; only the files differ:

==============  =====================================  =========================================
kind            ``model_file``                         also verified
==============  =====================================  =========================================
``joblib``      ``model.joblib``                       ``distributions.json`` (its SHA-256)
``tensorflow``  ``saved_model.tar`` (a tar of export)  ``tree_digest``: SHA-256 of the files
==============  =====================================  =========================================

References written by earlier TensorFlow publishing (``kind: tensorflow-saved-model`` with
``archive_file``/``archive_sha256``/``digest``) are read as the same schema.

Nothing here imports more than the standard library.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, StorageError
from ..names import is_safe_name
from ..serving.errors import ModelIntegrityError

if TYPE_CHECKING:
    from ..storage import Storage

MODEL_FILE = "model.joblib"
DISTRIBUTIONS_FILE = "distributions.json"
ARCHIVE_FILE = "saved_model.tar"
REFERENCE_FILE = "reference.json"
LATEST_FILE = "latest.json"
ALIASES_DIR = "aliases"
KINDS = ("joblib", "tensorflow")
OLD_TENSORFLOW_KIND = "tensorflow-saved-model"
SHA256 = re.compile(r"[0-9a-f]{64}")
#: names under ``models/<name>/`` that are not versions, so never allowed as one
RESERVED = ("latest", ALIASES_DIR, "latest.json")

__all__ = [
    "ModelIntegrityError",
    "ModelReference",
    "check_location",
    "latest_reference_key",
    "sha256_hex",
    "unreadable_error",
    "version_reference_key",
]


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
    distributions_sha256: str = ""
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
    kind: str = "joblib"
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tree_digest: str | None = None  # tensorflow: SHA-256 over the export's files
    lineage: dict[str, Any] = field(default_factory=dict)  # tensorflow: what the export embeds
    key: str | None = None  # where reference.json lives (set when read or written; not stored)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("key")
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True).encode("utf-8") + b"\n"

    @classmethod
    def from_json(cls, raw: bytes | str, key: str | None = None) -> ModelReference:
        """Parse and check a reference: every field of its declared type, digests well formed,
        the files it names plain names in its own directory. ModelIntegrityError otherwise."""
        where = key or "model reference"
        try:
            data = json.loads(raw)
        except ValueError as exc:  # UnicodeDecodeError included
            raise ModelIntegrityError(
                f"{where} is not valid JSON ({short_error(exc)}); re-publish the model or load "
                "another version"
            ) from None
        if not isinstance(data, dict):
            raise ModelIntegrityError(f"{where} is not a JSON object; re-publish the model")
        if data.get("kind") == OLD_TENSORFLOW_KIND:
            data = _upgrade_tensorflow(data, where)
        return cls.from_dict(data, where, key)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str, key: str | None = None) -> ModelReference:
        kind = data.get("kind", "joblib")
        if kind not in KINDS:
            raise ModelIntegrityError(
                f"{where} records kind {kind!r}, not one of {', '.join(KINDS)}: it was written by "
                "a newer hypermodel (upgrade it) or changed after publishing (re-publish)"
            )
        required = {"name", "version", "long_name", "created", "model_sha256"}
        required.add("distributions_sha256" if kind == "joblib" else "tree_digest")
        missing = required - set(data)
        if missing:
            raise ModelIntegrityError(
                f"{where} lacks {', '.join(sorted(missing))}; re-publish the model"
            )
        _check_types(data, where)
        known = {f for f in cls.__dataclass_fields__ if f != "key"}
        ref = cls(**{k: v for k, v in data.items() if k in known}, key=key)
        digests = [ref.model_sha256]
        digests.append(ref.distributions_sha256 if kind == "joblib" else ref.tree_digest or "")
        for digest in digests:
            if not SHA256.fullmatch(digest):
                raise ModelIntegrityError(
                    f"{where} holds a malformed SHA256 digest {digest!r}; re-publish the model"
                )
        names = [("name", ref.name), ("version", ref.version), ("model_file", ref.model_file)]
        if kind == "joblib":
            names.append(("distributions_file", ref.distributions_file))
        for what, value in names:
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

    def tensorflow_view(self) -> dict[str, Any]:
        """The reference as the dict a ``TensorflowReference`` wraps: the schema's fields and
        the names TensorFlow references have always been read by (``archive_file``,
        ``archive_sha256``: the tar; ``digest``: the export's files)."""
        return {
            **self.to_dict(),
            "archive_file": self.model_file,
            "archive_sha256": self.model_sha256,
            "digest": self.tree_digest or "",
        }

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
            "kind": self.kind,
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
            "metrics": dict(self.metrics),
            "reference": self.key,
        }


def _upgrade_tensorflow(data: dict[str, Any], where: str) -> dict[str, Any]:
    """An earlier TensorFlow reference (``archive_file``, ``archive_sha256``, ``digest``,
    ``lineage``) as the common schema; its lineage gives the long name, dataset and commit."""
    fix = "re-publish the model or load another version"
    for name in ("name", "version", "archive_file", "archive_sha256", "digest"):
        if not isinstance(data.get(name), str):
            raise ModelIntegrityError(f"{where} lacks a string '{name}'; {fix}")
    lineage = data.get("lineage", {})
    if not isinstance(lineage, dict):
        raise ModelIntegrityError(f"{where}: 'lineage' is not an object; {fix}")
    checksum = lineage.get("dataset_checksum")
    return {
        "kind": "tensorflow",
        "name": data["name"],
        "version": data["version"],
        "created": str(data.get("created", "")),
        "long_name": str(lineage.get("long_name") or data["name"]),
        "model_file": data["archive_file"],
        "model_sha256": data["archive_sha256"],
        "distributions_file": "",
        "tree_digest": data["digest"],
        "datasets": [checksum] if isinstance(checksum, str) and checksum != "none" else [],
        "commit": str(lineage.get("commit") or "unknown"),
        "lineage": lineage,
    }


def tensorflow_fields(lineage: dict[str, Any]) -> dict[str, Any]:
    """What a TensorFlow export's embedded lineage gives the reference."""
    checksum = lineage.get("dataset_checksum")
    return {
        "long_name": str(lineage.get("long_name") or ""),
        "datasets": [checksum] if isinstance(checksum, str) and checksum != "none" else [],
        "commit": str(lineage.get("commit") or "unknown"),
    }


# -- where references may live --------------------------------------------------------------------
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
        or parts[2] in RESERVED
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
        raise ModelIntegrityError(
            f"{where} is not valid JSON ({short_error(exc)}); {fix}"
        ) from None
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


def check_location(ref: ModelReference, store: Storage) -> None:
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


def unreadable_error(where: str, exc: BaseException) -> ModelIntegrityError:
    """A model file that exists but cannot be read as one (a directory, a link out of the
    bucket, no permission): the version's directory was tampered with."""
    reason = (
        "it is a directory"
        if isinstance(exc, IsADirectoryError)
        else (exc.strerror if isinstance(exc, OSError) and exc.strerror else short_error(exc))
    )
    return ModelIntegrityError(
        f"{where} cannot be read as a model file ({reason}): the model directory was changed "
        "after publishing; re-publish the model or load another version"
    )


def short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


# -- field types ----------------------------------------------------------------------------------
_STR = ("name", "version", "long_name", "created", "model_sha256", "distributions_sha256")
_OPTIONAL_STR = ("run_id", "pipeline", "task", "tree_digest")


def _check_types(data: dict[str, Any], where: str) -> None:
    """Every field of a reference has the type ``ModelReference`` declares."""

    def bad(field_name: str, expected: str) -> ModelIntegrityError:
        got = type(data[field_name]).__name__
        return ModelIntegrityError(
            f"{where}: '{field_name}' is a {got}, not {expected}; the reference was changed after "
            "publishing: re-publish the model or load another version"
        )

    for name in (*_STR, "model_file", "distributions_file", "commit", "kind"):
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
    for name in ("features", "params", "lineage"):
        if not isinstance(data.get(name, {}), dict):
            raise bad(name, "an object")
    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for v in metrics.values()
    ):
        raise ModelIntegrityError(
            f"{where}: 'metrics' is not an object of finite numbers; re-publish the model"
        )
    features = data.get("features", {})
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
