"""Export a trained model as a SavedModel that carries its own lineage, and load it back.

The SavedModel serves ``get_outputs`` (its ``serving_default`` signature) and answers
``get_long_name()``, ``get_input_dataset_chk_file_checksum()`` (the training dataset's checksum:
the SHA1 of its ``.chk``) and ``get_lineage()`` (a JSON object: long name, dataset checksum,
commit, creation time, model class), so a model file found anywhere says where it came from::

    exported = load_exported("models/scorer/saved_model")
    exported.long_name, exported.dataset_checksum, exported.digest
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tensorflow as tf

from ..errors import NotFoundError, UsageError


class _Export(tf.Module):  # type: ignore[misc]
    def __init__(self, model: Any, lineage: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.get_outputs = model.get_outputs
        self._long_name = tf.constant(lineage["long_name"])
        self._checksum = tf.constant(lineage["dataset_checksum"])
        self._lineage = tf.constant(json.dumps(lineage, sort_keys=True))

    @tf.function(input_signature=[])
    def get_long_name(self) -> Any:
        return self._long_name

    @tf.function(input_signature=[])
    def get_input_dataset_chk_file_checksum(self) -> Any:
        return self._checksum

    @tf.function(input_signature=[])
    def get_lineage(self) -> Any:
        return self._lineage


def export_model(model: Any, path: str | os.PathLike[str], lineage: dict[str, Any]) -> Path:
    """Save ``model`` (a built BaseTensorflowModel) with ``lineage`` embedded; returns the path.

    ``lineage`` needs ``long_name`` and ``dataset_checksum``; other JSON values are kept.
    An existing export is never replaced (export to a new directory per model version).
    """
    target = Path(path)
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"{target} already holds an export: export each version to a new path")
    for key in ("long_name", "dataset_checksum"):
        if not isinstance(lineage.get(key), str):
            raise UsageError(f"lineage needs a string {key!r} to embed in the exported model")
    get_outputs = getattr(model, "get_outputs", None)
    if getattr(get_outputs, "input_signature", None) is None:
        raise UsageError(
            f"{type(model).__name__}.get_outputs must be a @tf.function with an input_signature "
            "(one named tf.TensorSpec per input) so the exported model can serve it"
        )
    module = _Export(model, lineage)
    signatures = {
        "serving_default": module.get_outputs,
        "get_long_name": module.get_long_name,
        "get_input_dataset_chk_file_checksum": module.get_input_dataset_chk_file_checksum,
        "get_lineage": module.get_lineage,
    }
    tf.saved_model.save(module, str(target), signatures=signatures)
    # the same lineage as a file, readable without TensorFlow (publishing, audits)
    extra = target / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / "hml_lineage.json").write_text(json.dumps(lineage, indent=2, sort_keys=True) + "\n")
    return target


def directory_digest(path: str | os.PathLike[str]) -> str:
    """SHA256 over every file of a directory (relative names and contents, in name order)."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass
class ExportedModel:
    """A loaded export: call ``get_outputs(**inputs)``; read the lineage from the fields."""

    path: Path
    module: Any
    long_name: str
    dataset_checksum: str
    lineage: dict[str, Any]
    digest: str

    def get_outputs(self, **inputs: Any) -> Any:
        return self.module.get_outputs(**inputs)

    def lineage_headers(self) -> dict[str, str]:
        """The response headers of a prediction, as for every model the inference app serves."""
        return {
            "x-model-long-name": self.long_name,
            "x-model-version": str(self.lineage.get("version", self.long_name)),
            "x-model-digest": f"sha256:{self.digest}",
            "x-model-dataset": self.dataset_checksum or "none",
            "x-model-commit": str(self.lineage.get("commit", "unknown")),
        }


def load_exported(path: str | os.PathLike[str]) -> ExportedModel:
    """Load an export made by ``export_model`` and read its embedded lineage."""
    target = Path(path)
    if not (target / "saved_model.pb").is_file():
        raise NotFoundError(f"{target} is not an exported model (no saved_model.pb)")
    digest = directory_digest(target)  # before loading: what was on disk is what is served
    module = tf.saved_model.load(str(target))
    for name in ("get_long_name", "get_input_dataset_chk_file_checksum", "get_outputs"):
        if not hasattr(module, name):
            raise UsageError(f"{target} was not exported by hypermodel.tf (no {name}())")
    lineage: dict[str, Any] = {}
    if hasattr(module, "get_lineage"):
        lineage = json.loads(module.get_lineage().numpy().decode("utf-8"))
    return ExportedModel(
        path=target,
        module=module,
        long_name=module.get_long_name().numpy().decode("utf-8"),
        dataset_checksum=module.get_input_dataset_chk_file_checksum().numpy().decode("utf-8"),
        lineage=lineage,
        digest=digest,
    )
