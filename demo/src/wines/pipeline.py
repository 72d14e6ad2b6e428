"""The training pipeline: load -> (profile, split) -> train -> evaluate.

Data travels as datasets in the app's bucket (chunked, checksummed, with lineage); the model is
published with its digest and the checksum of the dataset it was trained on. Each op is a plain
function: hypermodel runs it locally (`wines pipelines wines run-all`) or as one Kubeflow pod
per op (`wines pipelines wines deploy-dev`) with the same code.
"""

from __future__ import annotations

import random
from typing import Any

from hypermodel import hml

from .data import FEATURES, Wine

MODEL = "wine-classifier"
PROJECT, BRANCH = "wines", "main"


def dataset(name: str) -> Any:
    """A dataset of wines in the running op's bucket."""
    return hml.Dataset(dataType=Wine, project=PROJECT, branch=BRANCH, name=name, chunkCount=16)


def frame(name: str) -> Any:
    import pandas as pd

    wines = sorted(dataset(name).open("r"), key=lambda w: w.wineId)
    data = pd.DataFrame([w.features for w in wines], columns=FEATURES)
    data["cultivar"] = [w.cultivar for w in wines]
    return data


@hml.op()
def load(source: str = "sklearn") -> dict:
    """Store scikit-learn's bundled wine data (no network) as a dataset."""
    from sklearn.datasets import load_wine

    if source != "sklearn":
        raise ValueError(f"unknown source {source!r}: only 'sklearn' ships with the demo")
    bunch = load_wine()
    out = dataset("wines")  # each run writes a new version of "wines"
    with out.open("w") as writer:
        for i, (row, target) in enumerate(zip(bunch.data, bunch.target, strict=True)):
            writer.append(Wine(wineId=i, features=[float(v) for v in row], cultivar=int(target)))
    # out.ref is "wines@<version>": the exact version downstream ops read
    return {"name": out.ref, "checksum": out.checksum, "rows": len(bunch.target)}


@hml.op()
def profile(data: dict) -> dict:
    """Mean, std, min and max of every feature, to compare serving inputs against."""
    described = frame(data["name"])[FEATURES].describe().T[["mean", "std", "min", "max"]]
    features = {
        k: {s: round(float(v), 6) for s, v in row.items()} for k, row in described.iterrows()
    }
    return {"rows": data["rows"], "features": features}


@hml.op()
def split(data: dict, test_fraction: float = 0.25, seed: int = 7) -> dict:
    """A stratified train/test split into two datasets (their lineage names the source)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    by_class: dict[int, list[Wine]] = {}
    for wine in dataset(data["name"]).open("r"):
        by_class.setdefault(wine.cultivar, []).append(wine)
    rng = random.Random(seed)
    train_ds, test_ds = dataset("train"), dataset("test")
    with train_ds.open("w") as train_w, test_ds.open("w") as test_w:
        for cultivar in sorted(by_class):
            members = sorted(by_class[cultivar], key=lambda w: w.wineId)
            rng.shuffle(members)
            cut = round(len(members) * test_fraction)
            for wine in members[:cut]:
                test_w.append(wine)
            for wine in members[cut:]:
                train_w.append(wine)
    return {
        "train": train_ds.ref,
        "test": test_ds.ref,
        "train_checksum": train_ds.checksum,
        "test_checksum": test_ds.checksum,
    }


@hml.op(retries=1, cpu="1", memory="1Gi")
def train(parts: dict, n_estimators: int = 100, max_depth: int = 4, seed: int = 7) -> dict:
    """Fit a random forest and publish it with its digest and the training dataset's checksum."""
    from sklearn.ensemble import RandomForestClassifier

    data = frame(parts["train"])
    container = hml.ModelContainer(MODEL)
    container.model = RandomForestClassifier(
        n_estimators=n_estimators, max_depth=max_depth, random_state=seed
    )
    container.model.fit(data[FEATURES].to_numpy(), data["cultivar"])
    container.analyze_distributions(data, numeric=FEATURES)
    container.add_training_dataset(dataset(parts["train"]))
    ref = container.publish()
    train_accuracy = float(container.model.score(data[FEATURES].to_numpy(), data["cultivar"]))
    return {
        "model": ref.long_name,
        "version": ref.version,
        "train_accuracy": round(train_accuracy, 4),
    }


@hml.op()
def evaluate(parts: dict, model: dict, summary: dict) -> dict:
    """Accuracy and macro F1 on the test dataset, and how far test features drift from training."""
    from sklearn.metrics import accuracy_score, f1_score

    data = frame(parts["test"])
    container = hml.ModelContainer(MODEL)
    container.load(model["version"])  # digests are verified before the model is unpickled
    predicted = container.predict(data[FEATURES].to_numpy())
    learning_curve(container.model, data[FEATURES].to_numpy(), data["cultivar"].to_numpy())
    confusion = pd_crosstab(data["cultivar"], predicted)
    path = hml.context().workdir / "confusion.csv"
    confusion.to_csv(path)
    hml.current_run().add_artifact(path)  # shown in `hml runs report`
    stats = summary["features"]
    drift = max(
        abs(float(data[f].mean()) - stats[f]["mean"]) / (stats[f]["std"] or 1.0) for f in FEATURES
    )
    return {
        "accuracy": round(float(accuracy_score(data["cultivar"], predicted)), 4),
        "f1_macro": round(float(f1_score(data["cultivar"], predicted, average="macro")), 4),
        "max_feature_drift_sd": round(drift, 4),
        "test_rows": len(data),
        "model": model["model"],
    }


def learning_curve(forest: Any, features: Any, labels: Any) -> None:
    """Test accuracy of the first k trees of the forest, as a metric over steps k."""
    votes = 0
    trees = forest.estimators_
    run = hml.current_run()
    for k, tree in enumerate(trees, start=1):
        votes = votes + tree.predict_proba(features)  # the forest averages its trees' votes
        if k % 10 == 0 or k == len(trees):
            accuracy = float((forest.classes_[votes.argmax(axis=1)] == labels).mean())
            run.add_metrics("test_accuracy_by_trees", accuracy, step=k)


def pd_crosstab(actual: Any, predicted: Any) -> Any:
    """Counts of (actual, predicted) cultivars: the confusion matrix as a table."""
    import numpy as np
    import pandas as pd

    return pd.crosstab(
        np.asarray(actual), np.asarray(predicted), rownames=["actual"], colnames=["predicted"]
    )


def declare(app: hml.HmlApp) -> hml.Pipeline:
    @hml.pipeline(app.pipelines, cron="0 0 2 * * *", experiment="demos")
    def wines(n_estimators: int = 100, max_depth: int = 4, test_fraction: float = 0.25):
        """Train and evaluate the wine classifier."""
        data = load()
        summary = profile(data=data)
        parts = split(data=data, test_fraction=test_fraction)
        model = train(parts=parts, n_estimators=n_estimators, max_depth=max_depth)
        evaluate(parts=parts, model=model, summary=summary)

    return wines
