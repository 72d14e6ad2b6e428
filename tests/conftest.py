"""Shared fixtures. Integration servers (GCS, S3, kube-apiserver) live in tests/integration/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes a bucket it did not ask for (e.g. an $HML_ROOT set by the shell)."""
    monkeypatch.setenv("HML_ROOT", str(tmp_path / "default-root"))
    # nor the images this machine built (compile and deploy pin the image by their digest)
    monkeypatch.setenv("HML_IMAGE_RECORDS", str(tmp_path / "image-records"))


@pytest.fixture
def hml_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh local bucket root, also exported as $HML_ROOT for subprocesses."""
    root = tmp_path / "bucket"
    monkeypatch.setenv("HML_ROOT", str(root))
    yield root
