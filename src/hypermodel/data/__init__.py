"""Data models and chunked, checksummed datasets with lineage, in a local or remote bucket.

Names are resolved on first use, so that declaring a data model does not import the dataset
machinery (an app's ``--help`` stays instant).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dataset import ChunkWriter, Dataset, DatasetReader, DatasetWriter
    from .errors import (
        DatasetBusyError,
        DatasetCorruptError,
        DatasetError,
        DatasetExistsError,
        DatasetNotClosedError,
        DatasetNotFoundError,
        DatasetUsageError,
        DirtyRepoError,
    )
    from .model import BaseData
    from .project import DatasetInfo, Project

_WHERE = {
    "BaseData": "model",
    "ChunkWriter": "dataset",
    "Dataset": "dataset",
    "DatasetReader": "dataset",
    "DatasetWriter": "dataset",
    "DatasetBusyError": "errors",
    "DatasetCorruptError": "errors",
    "DatasetError": "errors",
    "DatasetExistsError": "errors",
    "DatasetNotClosedError": "errors",
    "DatasetNotFoundError": "errors",
    "DatasetUsageError": "errors",
    "DirtyRepoError": "errors",
    "DatasetInfo": "project",
    "Project": "project",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'hypermodel.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "BaseData",
    "ChunkWriter",
    "Dataset",
    "DatasetBusyError",
    "DatasetCorruptError",
    "DatasetError",
    "DatasetExistsError",
    "DatasetInfo",
    "DatasetNotClosedError",
    "DatasetNotFoundError",
    "DatasetReader",
    "DatasetUsageError",
    "DatasetWriter",
    "DirtyRepoError",
    "Project",
]
