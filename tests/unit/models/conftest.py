"""A local bucket holding one model with published versions, for the model store tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hypermodel.serving.model import ModelContainer
from hypermodel.storage import Storage, open_storage


@pytest.fixture(scope="session")
def fitted() -> Any:
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    data = load_wine()
    return DecisionTreeClassifier(max_depth=2, random_state=0).fit(data.data, data.target)


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return open_storage(str(tmp_path / "bucket"))


def publish(storage: Storage, fitted: Any, version: str, name: str = "clf", **kw: Any) -> Any:
    mc = ModelContainer(name)
    mc.model = fitted
    return mc.publish(storage, version=version, **kw)


@pytest.fixture
def published(storage: Storage, fitted: Any) -> Storage:
    """Model ``clf`` with versions v1, v2, v3 (v3 is latest)."""
    for version in ("v1", "v2", "v3"):
        publish(storage, fitted, version, metrics={"accuracy": 0.5 + int(version[1]) / 10})
    return storage
