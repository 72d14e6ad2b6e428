"""The model store on every bucket backend (local, fake-gcs-server, moto S3): aliases resolve,
racing promoters never lose an update, loads by alias are verified."""

from __future__ import annotations

from typing import Any

import pytest

from hypermodel.models import AliasConflictError, ModelStore
from hypermodel.serving.errors import ModelIntegrityError
from hypermodel.serving.model import ModelContainer
from hypermodel.storage import Storage
from tests.unit.models.racing import check_one_winner, race


@pytest.fixture(scope="module")
def fitted() -> Any:
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    data = load_wine()
    return DecisionTreeClassifier(max_depth=2, random_state=0).fit(data.data, data.target)


@pytest.fixture
def published(storage: Storage, fitted: Any) -> Storage:
    for version in ("v1", "v2", "v3"):
        mc = ModelContainer("clf")
        mc.model = fitted
        mc.publish(storage, version=version, metrics={"accuracy": 0.9})
    return storage


def test_racing_promoters_on_the_bucket(published: Storage) -> None:
    store = ModelStore(published)
    store.set_alias("clf", "production", "v1")
    results = race(published, "clf", "production", ["v2", "v3"])
    winner = check_one_winner(published, "clf", "production", results)
    loser = "v3" if winner == "v2" else "v2"
    with pytest.raises(AliasConflictError, match=f"is at {winner}, not v1"):
        store.set_alias("clf", "production", loser, expected="v1")
    store.set_alias("clf", "production", loser, expected=winner)  # the fix the error names
    assert store.resolve("clf", "production").version == loser
    assert [e.sequence for e in store.alias_history("clf", "production")] == [1, 2, 3]


def test_alias_workflow_and_verified_load_on_the_bucket(published: Storage) -> None:
    store = ModelStore(published)
    store.set_alias("clf", "production", "v2", reason="release")
    assert store.aliases("clf") == {"production": "v2"}
    assert ModelContainer("clf").load("production", published).reference.version == "v2"
    store.set_alias("clf", "production", "v3")
    assert store.rollback("clf", "production").version == "v2"
    store.delete_alias("clf", "production")
    assert store.aliases("clf") == {}
    assert store.rollback("clf", "production").version == "v2"

    key = "models/clf/v2/model.joblib"
    published.write_bytes(key, published.read_bytes(key)[:-1] + b"X")
    with pytest.raises(ModelIntegrityError, match=r"v2/model\.joblib has SHA256"):
        store.verify("clf", "production")
    with pytest.raises(ModelIntegrityError, match=r"v2/model\.joblib has SHA256"):
        ModelContainer("clf").load("production", published)
    assert [r.version for r in store.versions("clf")] == ["v1", "v2", "v3"]
