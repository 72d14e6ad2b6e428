"""Serve an exported TensorFlow model from the app's inference server, with lineage headers.

::

    @hml.inference(app.inference)
    def init(inference_app):
        scorer = TensorflowModelContainer("scorer", ScorerBatchProcessor())
        scorer.load("models/scorer/saved_model")
        scorer.serve(inference_app, "/score", input=Reading, output=Score)

Every response of ``/score`` carries ``x-model-long-name``, ``x-model-dataset`` (the training
dataset's checksum), ``x-model-digest``, ``x-model-version`` and ``x-model-commit``, as for
every model the inference app serves.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import DeclarationError
from ..names import check_name
from ..serving.errors import ModelNotLoadedError
from .batch import BaseBatchProcessor


class TensorflowModelContainer:
    """An exported model plus the batch processor that feeds it; registered with the app."""

    def __init__(self, name: str, batchProcessor: BaseBatchProcessor) -> None:
        self.name = check_name(name, "model")
        self.batchProcessor = batchProcessor
        self.exported: Any = None

    def __repr__(self) -> str:
        state = self.exported.long_name if self.exported is not None else "not loaded"
        return f"<TensorflowModelContainer {self.name}: {state}>"

    @property
    def is_loaded(self) -> bool:
        return self.exported is not None

    def load(self, path: str | os.PathLike[str]) -> TensorflowModelContainer:
        from .export import load_exported

        self.exported = load_exported(path)
        return self

    def lineage_headers(self) -> dict[str, str]:
        if self.exported is None:
            return {}
        headers: dict[str, str] = self.exported.lineage_headers()
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
