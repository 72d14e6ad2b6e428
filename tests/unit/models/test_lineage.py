"""The lineage tree of a model version: datasets, their sources and commits, the tracking run;
whatever is gone shows as missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hypermodel.data import Dataset
from hypermodel.models import ModelStore
from hypermodel.models.lineage import render
from hypermodel.serving.model import ModelContainer
from hypermodel.storage import Storage, open_storage
from hypermodel.tracking.run import Run

from ..data.models import Item, items

RAW_REPO = {"commitHash": "aa" * 20, "branchName": "main", "comitterName": "ann"}
WINES_REPO = {"commitHash": "bb" * 20, "branchName": "main", "comitterName": "bob"}


def _write(root: Path, name: str, repo: dict[str, str], deps: list[Dataset] | None = None) -> Any:
    ds = Dataset(Item, str(root), "shop", "main", name, repoData=repo)
    with ds.open("w", dependencies=deps) as writer:
        for obj in items(4):
            writer.append(obj)
    return ds


def _checksum(ds: Any) -> str:
    value = ds.checksum
    return str(value() if callable(value) else value)


@pytest.fixture
def trained(tmp_path: Path, fitted: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """raw -> wines (a dataset made from raw) -> model clf v1, trained in run train-1."""
    root = tmp_path / "bucket"
    storage = open_storage(str(root))
    raw = _write(root, "raw", RAW_REPO)
    wines = _write(root, "wines", WINES_REPO, deps=[raw])
    with Run("train-1", storage=storage, project="shop"):
        pass
    monkeypatch.setenv("HML_RUN_ID", "train-1")
    monkeypatch.setenv("HML_PIPELINE", "training")
    mc = ModelContainer("clf")
    mc.model = fitted
    mc.add_training_dataset(wines)
    mc.publish(storage, version="v1")
    ModelStore(storage).set_alias("clf", "production", "v1")
    return {"storage": storage, "raw": _checksum(raw), "wines": _checksum(wines), "root": root}


def test_the_tree_walks_datasets_sources_commits_and_run(trained: dict[str, Any]) -> None:
    tree = ModelStore(trained["storage"]).lineage("clf", "production")
    assert (tree["kind"], tree["name"], tree["version"]) == ("model", "clf", "v1")
    assert tree["run"]["id"] == "train-1" and tree["run"]["status"] == "present"
    assert tree["run"]["show"] == "hml runs show train-1" and tree["run"]["project"] == "shop"
    [dataset] = tree["datasets"]
    assert dataset["status"] == "present" and dataset["checksum"] == trained["wines"]
    assert dataset["ref"] == "shop/main/wines" and dataset["type"] == "Item"
    assert dataset["commit"] == "bb" * 20
    [source] = dataset["sources"]
    assert source["status"] == "present" and source["checksum"] == trained["raw"]
    assert source["ref"] == "shop/main/raw" and source["commit"] == "aa" * 20
    text = "\n".join(render(tree))
    assert "model clf v1" in text and "run train-1  (hml runs show train-1)" in text
    assert f"dataset shop/main/wines {trained['wines'][:12]} Item commit {'bb' * 6}" in text
    assert f"dataset shop/main/raw {trained['raw'][:12]} Item commit {'aa' * 6}" in text
    assert "missing" not in text


def test_deleted_datasets_and_runs_show_as_missing(trained: dict[str, Any]) -> None:
    storage: Storage = trained["storage"]
    storage.delete_prefix("shop/main/raw")
    tree = ModelStore(storage).lineage("clf", "v1")
    [source] = tree["datasets"][0]["sources"]
    assert source["status"] == "missing" and source["ref"] == "shop/main/raw"
    assert source["commit"] == "aa" * 20  # what the dependent dataset recorded of it
    assert "shop/main/raw" in "\n".join(render(tree)) and ": missing" in "\n".join(render(tree))

    storage.delete_prefix("shop/main/wines")
    storage.delete_prefix("tracking")
    tree = ModelStore(storage).lineage("clf", "v1")
    [dataset] = tree["datasets"]
    assert dataset["status"] == "missing" and "no dataset with this checksum" in dataset["reason"]
    assert tree["run"]["status"] == "missing" and "train-1" in tree["run"]["reason"]
    text = "\n".join(render(tree))
    assert f"dataset {trained['wines'][:12]}: missing" in text
    assert "run train-1: missing" in text


def test_a_model_without_datasets_or_run_has_a_bare_tree(
    storage: Storage, fitted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HML_RUN_ID", raising=False)
    mc = ModelContainer("bare")
    mc.model = fitted
    mc.publish(storage, version="v1")
    tree = ModelStore(storage).lineage("bare")
    assert tree["run"] is None and tree["datasets"] == []
    assert render(tree) == [render(tree)[0]] and render(tree)[0].startswith("model bare v1")
