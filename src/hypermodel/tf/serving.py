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
from pathlib import Path
from typing import Any

from ..errors import DeclarationError, UsageError
from ..names import check_name
from ..serving.errors import ModelNotLoadedError
from .batch import BaseBatchProcessor


class TensorflowModelContainer:
    """An exported model plus the batch processor that feeds it; registered with the app."""

    def __init__(self, name: str, batchProcessor: BaseBatchProcessor, *, app: Any = None) -> None:
        self.name = check_name(name, "model")
        self.batchProcessor = batchProcessor
        self.app = app  # set by inference_app.load_model(); its bucket holds published versions
        self.exported: Any = None
        self.reference: dict[str, Any] | None = None

    def __repr__(self) -> str:
        state = self.exported.long_name if self.exported is not None else "not loaded"
        return f"<TensorflowModelContainer {self.name}: {state}>"

    @property
    def is_loaded(self) -> bool:
        return self.exported is not None

    def load(
        self, ref: str | os.PathLike[str] = "latest", storage: Any = None
    ) -> TensorflowModelContainer:
        """Load a local export directory, or a published version (``latest`` or a version
        name) from ``storage`` (default: the app's bucket), verified against its digests."""
        from .export import load_exported

        text = os.fspath(ref)
        if Path(text).is_dir():
            self.exported = load_exported(text)
            return self
        from .publish import fetch_export

        directory, self.reference = fetch_export(self._storage(storage), self.name, text)
        self.exported = load_exported(directory)
        return self

    def publish(
        self, export: str | os.PathLike[str], target: Any = None, version: str | None = None
    ) -> dict[str, Any]:
        """Upload an export to ``target`` (a Storage or an app; default: the app's bucket) as a
        new version and point ``latest`` at it; returns the stored reference."""
        from .publish import publish_export

        self.reference = publish_export(self._storage(target), self.name, export, version)
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
        if self.reference is not None:  # loaded from the bucket: its published version
            headers["x-model-version"] = str(self.reference["version"])
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
