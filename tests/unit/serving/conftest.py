"""Fixtures for the serving tests: a small fitted sklearn model and an app on a temp bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hypermodel import hml
from hypermodel.serving.model import ModelContainer


@pytest.fixture(scope="session")
def wine() -> Any:
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True)


@pytest.fixture(scope="session")
def fitted(wine: Any) -> Any:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(
        wine.data.values, wine.target.values
    )


@pytest.fixture
def app(tmp_path: Path) -> hml.HmlApp:
    return hml.HmlApp("wines", root=str(tmp_path / "bucket"))


@pytest.fixture
def published(app: hml.HmlApp, fitted: Any, wine: Any) -> ModelContainer:
    mc = ModelContainer("wine-clf")
    mc.model = fitted
    frame = wine.frame.assign(
        colour=["red", "white"] * (len(wine.frame) // 2) + ["red"] * (len(wine.frame) % 2)
    )
    mc.analyze_distributions(frame, numeric=list(wine.feature_names), categorical=["colour"])
    mc.add_training_dataset("0123abcd" * 5)
    mc.publish(app)
    return mc
