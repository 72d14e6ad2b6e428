"""The training pipeline: load -> (profile, split) -> train -> evaluate.

Each op is a plain function; hypermodel runs it locally (`wines pipelines wines run-all`) or as
one Kubeflow pod per op (`wines pipelines wines deploy-dev`) with the same code.
"""

from __future__ import annotations

import io
from typing import Any

from hypermodel import hml

FEATURES = [
    "alcohol",
    "malic_acid",
    "ash",
    "alcalinity_of_ash",
    "magnesium",
    "total_phenols",
    "flavanoids",
    "nonflavanoid_phenols",
    "proanthocyanins",
    "color_intensity",
    "hue",
    "od280/od315_of_diluted_wines",
    "proline",
]
TARGET = "cultivar"


def _read_frame(key: str) -> Any:
    import pandas as pd

    return pd.read_json(io.BytesIO(hml.context().storage.read_bytes(key)), orient="records")


def _write_frame(frame: Any, name: str) -> str:
    ctx = hml.context()
    key = f"demo/{ctx.run_id}/{name}.json"
    ctx.storage.write_bytes(key, frame.to_json(orient="records").encode())
    return key


@hml.op(cache=True)
def load(source: str = "sklearn") -> str:
    """Load the wine data bundled with scikit-learn into the bucket; returns its key."""
    from sklearn.datasets import load_wine

    if source != "sklearn":
        raise ValueError(f"unknown source {source!r}: only 'sklearn' ships with the demo")
    bunch = load_wine(as_frame=True)
    frame = bunch.frame.rename(columns={"target": TARGET})
    return _write_frame(frame, "wines")


@hml.op()
def profile(data: str) -> dict:
    """Summaries of every feature (mean, std, min, max), used to check serving inputs."""
    frame = _read_frame(data)
    described = frame[FEATURES].describe().T[["mean", "std", "min", "max"]]
    return {
        "rows": len(frame),
        "features": {
            k: {s: round(float(v), 6) for s, v in row.items()} for k, row in described.iterrows()
        },
    }


@hml.op()
def split(data: str, test_fraction: float = 0.25, seed: int = 7) -> dict:
    """A stratified train/test split; returns the keys of both parts."""
    from sklearn.model_selection import train_test_split

    frame = _read_frame(data)
    train, test = train_test_split(
        frame, test_size=test_fraction, random_state=seed, stratify=frame[TARGET]
    )
    return {
        "train": _write_frame(train, "train"),
        "test": _write_frame(test, "test"),
        "train_rows": len(train),
        "test_rows": len(test),
    }


@hml.op(retries=1, cpu="1", memory="1Gi")
def train(parts: dict, n_estimators: int = 100, max_depth: int = 4, seed: int = 7) -> dict:
    """Fit a random forest on the training part and store the model in the bucket."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    frame = _read_frame(parts["train"])
    model = RandomForestClassifier(
        n_estimators=n_estimators, max_depth=max_depth, random_state=seed
    )
    model.fit(frame[FEATURES], frame[TARGET])
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    ctx = hml.context()
    key = f"demo/{ctx.run_id}/model.joblib"
    ctx.storage.write_bytes(key, buffer.getvalue())
    return {"model": key, "n_estimators": n_estimators, "max_depth": max_depth}


@hml.op()
def evaluate(parts: dict, model: dict, summary: dict) -> dict:
    """Accuracy and macro F1 on the test part, and how far test features drift from training."""
    import joblib
    from sklearn.metrics import accuracy_score, f1_score

    frame = _read_frame(parts["test"])
    fitted = joblib.load(io.BytesIO(hml.context().storage.read_bytes(model["model"])))
    predicted = fitted.predict(frame[FEATURES])
    drift = max(
        abs(float(frame[f].mean()) - summary["features"][f]["mean"])
        / (summary["features"][f]["std"] or 1.0)
        for f in FEATURES
    )
    return {
        "accuracy": round(float(accuracy_score(frame[TARGET], predicted)), 4),
        "f1_macro": round(float(f1_score(frame[TARGET], predicted, average="macro")), 4),
        "max_feature_drift_sd": round(drift, 4),
        "test_rows": len(frame),
    }


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
