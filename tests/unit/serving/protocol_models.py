"""Small scikit-learn models published with ModelContainer, for the protocol tests.

- ``numeric``: a depth-3 tree on the 13 wine measurements, features recorded by name.
- ``mixed``: a tree on three measurements and a categorical ``colour`` (one-hot encoded by
  ``build_features`` with the recorded values).
- ``positional``: the depth-3 tree with no recorded features (rows of 13 values).
"""

from __future__ import annotations

from typing import Any

from hypermodel import hml
from hypermodel.serving.model import ModelContainer

MIXED_NUMERIC = ["alcohol", "flavanoids", "proline"]


def wine_frame() -> Any:
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True)
    frame = wine.frame.copy()
    frame["colour"] = ["red", "white", "rose"] * (len(frame) // 3) + ["red"] * (len(frame) % 3)
    return frame


def feature_names() -> list[str]:
    from sklearn.datasets import load_wine

    return [str(c) for c in load_wine(as_frame=True).data.columns]


def publish_numeric(app: hml.HmlApp, name: str = "wine-num") -> ModelContainer:
    from sklearn.tree import DecisionTreeClassifier

    frame = wine_frame()
    features = feature_names()
    mc = ModelContainer(name)
    mc.model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(
        frame[features].to_numpy(), frame["target"].to_numpy()
    )
    mc.analyze_distributions(frame, numeric=features)
    mc.add_training_dataset("ab" * 20)
    mc.publish(app)
    return mc


def publish_mixed(app: hml.HmlApp, name: str = "wine-mixed") -> ModelContainer:
    from sklearn.tree import DecisionTreeClassifier

    frame = wine_frame()
    mc = ModelContainer(name)
    mc.analyze_distributions(frame, numeric=MIXED_NUMERIC, categorical=["colour"])
    features = mc.build_features(frame[[*MIXED_NUMERIC, "colour"]]).to_numpy(dtype="float64")
    mc.model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(
        features, frame["target"].to_numpy()
    )
    mc.publish(app)
    return mc


def publish_positional(app: hml.HmlApp, name: str = "wine-pos") -> ModelContainer:
    from sklearn.tree import DecisionTreeClassifier

    frame = wine_frame()
    mc = ModelContainer(name)
    mc.model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(
        frame[feature_names()].to_numpy(), frame["target"].to_numpy()
    )
    mc.publish(app)
    return mc


def serve(app: hml.HmlApp, *names: str, declare: Any = None) -> Any:
    """A test client of ``app`` loading the published models ``names`` (then ``declare``)."""

    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        for name in names:
            inference_app.load_model(ModelContainer(name))
        if declare is not None:
            declare(inference_app)

    return app.inference.build().test_client()


def rows(count: int = 5, start: int = 0) -> list[dict[str, Any]]:
    """``count`` wine records (every measurement and the colour) by column name."""
    frame = wine_frame()
    records = []
    for _, row in frame.iloc[start : start + count].iterrows():
        record: dict[str, Any] = {c: float(row[c]) for c in feature_names()}
        record["colour"] = str(row["colour"])
        records.append(record)
    return records
