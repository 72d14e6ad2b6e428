"""The model store: one reference schema for every kind of model, versions, aliases with an
append-only history, and the lineage of each version.

``from hypermodel.models import ModelStore`` imports no more than the standard library.
"""

from __future__ import annotations

from .aliases import AliasConflictError as AliasConflictError
from .aliases import AliasEntry as AliasEntry
from .reference import ModelReference as ModelReference
from .store import ModelStore as ModelStore

__all__ = ["AliasConflictError", "AliasEntry", "ModelReference", "ModelStore"]
