"""One storage interface over a bucket root: local disk, GCS or S3, selected by URL."""

from __future__ import annotations

from .base import Storage, check_key
from .factory import open_storage, resolve_storage

__all__ = ["Storage", "check_key", "open_storage", "resolve_storage"]
