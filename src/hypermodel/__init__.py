"""hypermodel: take machine learning to production on Kubernetes and Kubeflow.

``from hypermodel import hml`` is the entry point; ``from hypermodel import BaseData`` also works.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import hml as hml
from .errors import HypermodelError as HypermodelError

__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    if name in hml.LAZY:
        return getattr(importlib.import_module(hml.LAZY[name]), name)
    raise AttributeError(f"module 'hypermodel' has no attribute {name!r}")


__all__ = ["HypermodelError", "hml", *hml.LAZY]
