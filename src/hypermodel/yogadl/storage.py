"""YogaDL's ``yogadl.storage``: storages and their configurations."""

from __future__ import annotations

from ..data.yogadl import (
    GCSConfigurations,
    GCSStorage,
    LFSConfigurations,
    LFSStorage,
    S3Configurations,
    S3Storage,
    Storage,
)

__all__ = [
    "GCSConfigurations",
    "GCSStorage",
    "LFSConfigurations",
    "LFSStorage",
    "S3Configurations",
    "S3Storage",
    "Storage",
]
