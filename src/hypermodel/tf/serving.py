"""Serve an exported TensorFlow model from the app's inference server, with lineage headers.

::

    @hml.inference(app.inference)
    def init(inference_app):
        scorer = TensorflowModelContainer("scorer", ScorerBatchProcessor())
        inference_app.load_model(scorer, "latest")  # or scorer.load("path/to/export")
        scorer.serve(inference_app, "/score", input=Reading, output=Score)

The training op publishes the export with ``container.publish(export)`` (to the op's bucket),
so the server loads exactly that version, verified against its SHA256 digests.

Every response of ``/score`` carries ``x-model-long-name``, ``x-model-dataset`` (the training
dataset's checksum), ``x-model-digest``, ``x-model-version`` and ``x-model-commit``, as for
every model the inference app serves.
"""

from __future__ import annotations

import os
import shutil
import weakref
from pathlib import Path
from typing import Any

from ..errors import DeclarationError, UsageError
from ..names import check_name
from ..serving.errors import ModelNotLoadedError
from .batch import BaseBatchProcessor


class TensorflowReference(dict):  # type: ignore[type-arg]
    """A TensorFlow model's reference: its ``reference.json`` as a dict, and the served-model
    protocol every model of the inference app answers (``version``, ``long_name``,
    ``model_sha256``, ``summary()``), which the index page and ``/metrics`` read.

    ``published`` is False for an export loaded from a local directory (``key`` is then that
    directory): its version is the one its lineage records.
    """

    def __init__(self, data: dict[str, Any], key: str = "", published: bool = True) -> None:
        super().__init__(data)
        self.key = key
        self.published = published

    @classmethod
    def of_export(cls, name: str, exported: Any, directory: str) -> TensorflowReference:
        lineage = dict(exported.lineage)
        return cls(
            {
                "name": name,
                "version": str(lineage.get("version", exported.long_name)),
                "created": str(lineage.get("created", "")),
                "digest": exported.digest,
                "lineage": lineage,
            },
            key=directory,
            published=False,
        )

    @property
    def lineage(self) -> dict[str, Any]:
        value = self.get("lineage")
        return value if isinstance(value, dict) else {}

    @property
    def name(self) -> str:
        return str(self.get("name", ""))

    @property
    def version(self) -> str:
        return str(self.get("version", ""))

    @property
    def long_name(self) -> str:
        return str(self.lineage.get("long_name") or self.name)

    @property
    def model_sha256(self) -> str:
        """The SHA256 of what was published (the archive); of the files for a local export."""
        return str(self.get("archive_sha256") or self.get("digest", ""))

    @property
    def datasets(self) -> list[str]:
        checksum = self.lineage.get("dataset_checksum")
        return [str(checksum)] if checksum and checksum != "none" else []

    def summary(self) -> dict[str, Any]:
        """The lineage shown on the server's index page (as ModelReference.summary())."""
        lineage = self.lineage
        return {
            "name": self.name,
            "kind": self.get("kind", "tensorflow-saved-model"),
            "version": self.version,
            "long_name": self.long_name,
            "created": self.get("created", ""),
            "model_sha256": self.model_sha256,
            "files_sha256": self.get("digest", ""),
            "datasets": self.datasets,
            "commit": str(lineage.get("commit", "unknown")),
            "model_class": lineage.get("model_class"),
            "epochs": lineage.get("epochs"),
            "published": self.published,
            "reference": self.key,
        }


class TensorflowModelContainer:
    """An exported model plus the batch processor that feeds it; registered with the app."""

    SERVED_STATE = ("exported", "reference")  # what a hot reload switches (serving/reload.py)

    def __init__(self, name: str, batchProcessor: BaseBatchProcessor, *, app: Any = None) -> None:
        self.name = check_name(name, "model")
        self.batchProcessor = batchProcessor
        self.app = app  # set by inference_app.load_model(); its bucket holds published versions
        self.exported: Any = None
        self.reference: TensorflowReference | None = None

    def __repr__(self) -> str:
        state = self.exported.long_name if self.exported is not None else "not loaded"
        return f"<TensorflowModelContainer {self.name}: {state}>"

    @property
    def is_loaded(self) -> bool:
        return self.exported is not None

    def blank(self) -> TensorflowModelContainer:
        """A new, unloaded container declared like this one (a reload loads into it)."""
        return TensorflowModelContainer(self.name, self.batchProcessor, app=self.app)

    def load(
        self, ref: str | os.PathLike[str] = "latest", storage: Any = None
    ) -> TensorflowModelContainer:
        """Load a local export directory, or a published version (``latest`` or a version
        name) from ``storage`` (default: the app's bucket), verified against its digests."""
        from ..serving.model import through_app
        from .export import load_exported

        routed = through_app(self, ref, {"storage": storage})
        if routed is not None:
            return routed  # type: ignore[no-any-return]
        text = os.fspath(ref)
        if Path(text).is_dir():
            self.exported = load_exported(text)
            self.reference = TensorflowReference.of_export(self.name, self.exported, text)
            return self
        from .publish import REFERENCE_FILE, fetch_export

        directory, reference = fetch_export(self._storage(storage), self.name, text)
        try:
            exported = load_exported(directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        # the unpacked copy lives as long as the loaded model: once a reload has switched it
        # out and the last request pinned to it has finished, it is removed (and at exit)
        weakref.finalize(exported, _remove_copy, str(directory), os.getpid())
        self.exported = exported
        key = f"models/{self.name}/{reference['version']}/{REFERENCE_FILE}"
        self.reference = TensorflowReference(reference, key=key)
        return self

    def publish(
        self, export: str | os.PathLike[str], target: Any = None, version: str | None = None
    ) -> dict[str, Any]:
        """Upload an export to ``target`` (a Storage or an app; default: the app's bucket) as a
        new version and point ``latest`` at it; returns the stored reference."""
        from .publish import REFERENCE_FILE, publish_export

        reference = publish_export(self._storage(target), self.name, export, version)
        key = f"models/{self.name}/{reference['version']}/{REFERENCE_FILE}"
        self.reference = TensorflowReference(reference, key=key)
        return self.reference

    def _storage(self, target: Any) -> Any:
        from ..storage import Storage, open_storage

        if isinstance(target, Storage):
            return target
        if isinstance(target, str):
            return open_storage(target)
        owner = target if target is not None else self.app
        if owner is not None and callable(getattr(owner, "storage", None)):
            return owner.storage()
        from ..context import maybe_context

        ctx = maybe_context()
        if ctx is not None:
            return ctx.storage
        raise UsageError(
            f"model '{self.name}': no bucket to use; pass a Storage or an app, or load it "
            "with inference_app.load_model(...)"
        )

    def lineage_headers(self) -> dict[str, str]:
        if self.exported is None:
            return {}
        headers: dict[str, str] = self.exported.lineage_headers()
        if self.reference is not None and self.reference.published:  # its published version
            headers["x-model-version"] = self.reference.version
        return headers

    def predict(self, objects: list[Any]) -> list[Any]:
        """Input objects -> output objects, through the processor and ``get_outputs``."""
        if self.exported is None:
            raise ModelNotLoadedError(f"model '{self.name}' is not loaded: call load(path) first")
        inputs = self.batchProcessor.process_input_batch(objects)
        outputs = self.exported.get_outputs(**inputs)
        return self.batchProcessor.process_output_batch(outputs)

    def serve(self, inference_app: Any, path: str = "/predict", *, input: Any, output: Any) -> None:
        """Register this model with the app and declare a route predicting one object."""
        app = inference_app.app
        if app.models.get(self.name) is not self:
            if self.name in app.models:
                raise DeclarationError(
                    f"app '{app.name}' already has another model named '{self.name}'"
                )
            app.register_model(self.name, self)

        @inference_app.route(
            path, input=input, output=output, model=self.name, name=f"{self.name}_predict"
        )
        def predict(obj: Any) -> Any:
            return self.predict([obj])[0]


def _remove_copy(directory: str, owner: int) -> None:
    """Remove an unpacked export, only from the process that unpacked it (a forked child that
    drops its copy of the model must not remove the parent's files)."""
    if os.getpid() == owner:
        shutil.rmtree(directory, ignore_errors=True)
