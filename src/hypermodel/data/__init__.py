"""Data models and chunked, checksummed datasets with lineage, in a local or remote bucket."""

from __future__ import annotations

from .dataset import ChunkWriter, Dataset, DatasetReader, DatasetWriter
from .errors import (
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

__all__ = [
    "BaseData",
    "ChunkWriter",
    "Dataset",
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
