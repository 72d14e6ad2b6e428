"""Shared fixtures. Integration servers (GCS, S3, kube-apiserver) live in tests/integration/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def hml_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh local bucket root, also exported as $HML_ROOT for subprocesses."""
    root = tmp_path / "bucket"
    monkeypatch.setenv("HML_ROOT", str(root))
    yield root
