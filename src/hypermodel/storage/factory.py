"""Pick a backend from the URL; backends for remote buckets are imported lazily."""

from __future__ import annotations

import importlib
import os
from typing import Any

from ..errors import UsageError
from .base import Storage

# protocol -> (module, class, extra to install). Immutable: a table, not a registry.
_BACKENDS: tuple[tuple[str, str, str, str], ...] = (
    ("file", "hypermodel.storage.local", "LocalStorage", ""),
    ("gs", "hypermodel.storage.remote", "GCSStorage", "gcs"),
    ("gcs", "hypermodel.storage.remote", "GCSStorage", "gcs"),
    ("s3", "hypermodel.storage.remote", "S3Storage", "s3"),
)


def open_storage(url: str, **options: Any) -> Storage:
    """``open_storage('./.hml')``, ``open_storage('gs://bucket/prefix')``, ``open_storage('s3://b/p')``."""
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    for proto, module, cls, _extra in _BACKENDS:
        if proto == protocol:
            backend = getattr(importlib.import_module(module), cls)
            return backend(url, **options)  # type: ignore[no-any-return]
    known = ", ".join(sorted({p for p, *_ in _BACKENDS}))
    raise UsageError(f"storage URL {url!r} has unknown protocol {protocol!r}; use one of: {known}")


def resolve_storage(location: Any = None) -> Storage:
    """The bucket a name without a location means, decided here once for datasets, models,
    tracking, caches and tasks: ``location`` itself (a Storage, a URL or a path), else the
    running op's bucket, else ``$HML_ROOT``, else ``./.hml``."""
    if isinstance(location, Storage):
        return location
    if location is None:
        from ..context import maybe_context

        ctx = maybe_context()
        if ctx is not None:
            return ctx.storage
        location = os.environ.get("HML_ROOT") or ".hml"
    return open_storage(os.fspath(location))
