"""TensorFlow models: a base model, blocks, a batch processor, a training manager, export and
serving with lineage (extra ``hypermodel[tf]``).

``import hypermodel.tf`` does not import TensorFlow; the names below import it on first use
(``from hypermodel.tf import TensorflowModelManager``), or say how to install it.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module defining it (constant table; modules import TensorFlow themselves)
_NAMES: dict[str, str] = {
    "BaseTensorflowModel": "hypermodel.tf.model",
    "BaseTensorflowModelBlock": "hypermodel.tf.model",
    "BaseBatchProcessor": "hypermodel.tf.batch",
    "TensorflowModelManager": "hypermodel.tf.manager",
    "training_directory": "hypermodel.tf.manager",
    "export_model": "hypermodel.tf.export",
    "load_exported": "hypermodel.tf.export",
    "ExportedModel": "hypermodel.tf.export",
    "TensorflowModelContainer": "hypermodel.tf.serving",
    "TensorflowReference": "hypermodel.tf.serving",
}
_NEEDS_TF = {"hypermodel.tf.model", "hypermodel.tf.manager", "hypermodel.tf.export"}


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'hypermodel.tf' has no attribute {name!r}")
    if module in _NEEDS_TF:
        from .._lazy import require

        require("tensorflow", "tf", f"hypermodel.tf.{name}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_NAMES)
