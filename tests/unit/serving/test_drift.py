"""Drift on live traffic: live inputs against the training distributions of the model, through
Flask's test client and on ``ModelDrift`` directly."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from hypermodel import hml
from hypermodel.data.model import BaseData
from hypermodel.models.store import ModelStore
from hypermodel.serving.drift import ModelDrift
from hypermodel.serving.model import ModelContainer


class Sample(BaseData):
    alcohol: float
    malic_acid: float
    colour: str
    note: str | None = None  # not a feature: ignored


def serve(app: hml.HmlApp, ref: str = "latest") -> Any:
    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        inference_app.load_model(ModelContainer("wine-clf"), ref)

        @inference_app.route("/score", input=Sample)
        def score(sample: Sample) -> dict[str, float]:
            return {"alcohol": sample.alcohol}

        @inference_app.route("/batch")
        def batch(rows: Any) -> dict[str, int]:
            return {"rows": len(rows)}

    return app.inference.build().test_client()


def metric(text: str, name: str, feature: str | None = None) -> float:
    labels = f'feature="{feature}",' if feature else ""
    pattern = rf'^{name}\{{{labels}model="wine-clf",version="[^"]+"\}} (\S+)$'
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{name} {feature} not in /metrics:\n{text}"
    return float(found.group(1))


@pytest.fixture
def stats(published: ModelContainer) -> dict[str, Any]:
    return dict(published.distributions["numeric"]["alcohol"])


def test_in_range_inputs_raise_no_flag(
    app: hml.HmlApp, published: ModelContainer, wine: Any
) -> None:
    client = serve(app)
    frame = wine.frame
    for i in range(120):
        row = frame.iloc[i % len(frame)]
        sample = {"alcohol": row["alcohol"], "malic_acid": row["malic_acid"], "colour": "red"}
        assert client.post("/score", json=sample).status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    assert metric(text, "hml_drift_samples", "alcohol") == 120
    assert metric(text, "hml_drift_score", "alcohol") < 1.0
    assert metric(text, "hml_drift_out_of_range_ratio", "alcohol") == 0.0
    assert metric(text, "hml_drift_unseen_ratio", "colour") == 0.0
    assert metric(text, "hml_drift_detected") == 0.0
    report = client.get("/").json["drift"]["wine-clf"]
    assert report["detected"] is False and report["numeric"]["alcohol"]["samples"] == 120
    assert "note" not in report["numeric"] and "note" not in report["categorical"]


def test_shifted_inputs_move_the_metrics_and_raise_the_flag_once(
    app: hml.HmlApp,
    published: ModelContainer,
    stats: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = serve(app)
    shifted = stats["mean"] + 5 * stats["std"]  # beyond the training max too
    assert shifted > stats["max"]
    with caplog.at_level(logging.INFO, "hypermodel.serving"):
        for i in range(150):
            sample = {"alcohol": shifted, "malic_acid": 2.0, "colour": "rosé" if i % 2 else "red"}
            assert client.post("/score", json=sample).status_code == 200
            if i == 98:  # one short of the minimum sample count: not flagged yet
                assert client.get("/").json["drift"]["wine-clf"]["detected"] is False
    text = client.get("/metrics").get_data(as_text=True)
    assert metric(text, "hml_drift_score", "alcohol") == pytest.approx(5.0)
    assert metric(text, "hml_drift_out_of_range_ratio", "alcohol") == 1.0
    assert metric(text, "hml_drift_unseen_ratio", "colour") == 0.5
    assert metric(text, "hml_drift_samples", "colour") == 150
    assert metric(text, "hml_drift_detected") == 1.0
    assert metric(text, "hml_drift_score", "malic_acid") < 3.0
    report = client.get("/").json["drift"]["wine-clf"]
    # half the colours were never seen in training: that feature drifted too
    assert report["detected"] is True and report["drifted_features"] == ["alcohol", "colour"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "feature 'alcohol'" in warnings[0] and "5.00 training standard deviations" in warnings[0]
    assert (
        "feature 'colour'" in warnings[1] and "50.0% of its live values were never" in warnings[1]
    )

    caplog.clear()
    with caplog.at_level(logging.INFO, "hypermodel.serving"):
        for _ in range(1500):  # in-range traffic pulls the running mean back
            client.post(
                "/score", json={"alcohol": stats["mean"], "malic_acid": 2.0, "colour": "red"}
            )
    back = [r.getMessage() for r in caplog.records if "is back" in r.getMessage()]
    assert len(back) == 2, back  # 75 unseen of 1,650 colours: 4.5 %, under the 5 % default
    assert "feature 'alcohol'" in back[0] and "feature 'colour'" in back[1]
    assert client.get("/").json["drift"]["wine-clf"]["detected"] is False


def test_unseen_categories_raise_the_flag_at_their_own_threshold(
    app: hml.HmlApp, published: ModelContainer, stats: dict[str, Any]
) -> None:
    app.inference.configure(drift_unseen_threshold=0.2, drift_min_samples=10)
    client = serve(app)
    usual = {"alcohol": stats["mean"], "malic_acid": 2.0}
    for i in range(10):  # one in ten unseen: under 20 %
        client.post("/score", json={**usual, "colour": "orange" if i == 0 else "red"})
    report = client.get("/").json["drift"]["wine-clf"]
    assert report["categorical"]["colour"] == {"samples": 10, "unseen": 0.1}
    assert report["detected"] is False
    for _ in range(3):  # 4 of 13: 31 %
        client.post("/score", json={**usual, "colour": "orange"})
    report = client.get("/").json["drift"]["wine-clf"]
    assert report["drifted_features"] == ["colour"]
    text = client.get("/metrics").get_data(as_text=True)
    assert metric(text, "hml_drift_detected") == 1.0


@pytest.mark.parametrize("share", [0, -0.1, 1.5])
def test_an_unseen_threshold_outside_0_to_1_is_refused(app: hml.HmlApp, share: float) -> None:
    from hypermodel.errors import DeclarationError

    with pytest.raises(DeclarationError, match="above 0 and at most 1"):
        app.inference.configure(drift_unseen_threshold=share)


def test_the_threshold_and_minimum_are_settings(
    app: hml.HmlApp, published: ModelContainer, stats: dict[str, Any]
) -> None:
    app.inference.configure(drift_threshold=1.0, drift_min_samples=5)
    client = serve(app)
    for _ in range(5):
        client.post(
            "/score",
            json={"alcohol": stats["mean"] + 1.5 * stats["std"], "malic_acid": 2, "colour": "red"},
        )
    assert client.get("/").json["drift"]["wine-clf"]["drifted_features"] == ["alcohol"]


def test_records_of_an_untyped_list_payload_are_counted(
    app: hml.HmlApp, published: ModelContainer, stats: dict[str, Any]
) -> None:
    client = serve(app)
    rows = [{"alcohol": stats["mean"], "colour": "white"}, {"alcohol": "n/a"}, 7, None]
    assert client.post("/batch", json=rows).json == {"rows": 4}
    assert client.post("/batch", json={"alcohol": stats["max"] + 1}).status_code == 200
    report = client.get("/").json["drift"]["wine-clf"]
    assert report["numeric"]["alcohol"]["samples"] == 2
    assert report["numeric"]["alcohol"]["out_of_range"] == 0.5
    assert report["categorical"]["colour"] == {"samples": 1, "unseen": 0.0}


def test_statistics_start_over_when_the_version_switches(
    app: hml.HmlApp, published: ModelContainer, stats: dict[str, Any]
) -> None:
    store = ModelStore(app.storage())
    first = published.reference.version  # type: ignore[union-attr]
    store.set_alias("wine-clf", "production", first)
    client = serve(app, ref="production")
    for _ in range(3):
        client.post("/score", json={"alcohol": stats["mean"], "malic_acid": 2, "colour": "red"})
    published.publish(app, version="v-next")
    store.set_alias("wine-clf", "production", "v-next")
    assert app.inference.reloader.check()[0].status == "reloaded"
    client.post("/score", json={"alcohol": stats["mean"], "malic_acid": 2, "colour": "red"})
    report = client.get("/").json["drift"]["wine-clf"]
    assert report["version"] == "v-next" and report["numeric"]["alcohol"]["samples"] == 1
    assert 'version="v-next"' in client.get("/metrics").get_data(as_text=True)


def test_model_drift_skips_what_has_no_mean() -> None:
    distributions = {
        "numeric": {
            "flat": {"mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0},
            "x": {"mean": 0.0, "std": 1.0, "min": -1.0, "max": 1.0},
            "broken": "not a summary",
        },
        "categorical": {"kind": ["a", 1]},
    }
    drift = ModelDrift("m", None, distributions)
    assert drift.numeric == ("flat", "x") and drift.categorical == ("kind",)
    for record in (
        {"flat": 2.0, "x": True, "kind": "1"},
        {"flat": float("nan"), "x": float("inf"), "kind": 1},
        {"x": 0.5, "kind": ["a"]},
    ):
        drift.observe(record, threshold=3.0, min_samples=1)
    report = drift.report(3.0, 1)
    assert report["numeric"]["flat"] == {
        "samples": 1,
        "live_mean": 2.0,
        "training_mean": 1.0,
        "score": None,  # no spread at training: no score, only the out-of-range share
        "out_of_range": 1.0,
    }
    assert report["numeric"]["x"]["samples"] == 1 and report["numeric"]["x"]["score"] == 0.5
    assert report["categorical"]["kind"] == {"samples": 2, "unseen": 0.0}
    assert ModelDrift("m", None, None).empty


def test_a_request_pinned_before_a_switch_keeps_the_new_statistics() -> None:
    from types import SimpleNamespace

    from hypermodel.serving.drift import DriftMonitor

    distributions = {"numeric": {"x": {"mean": 0.0, "std": 1.0, "min": -3, "max": 3}}}
    old = SimpleNamespace(reference=SimpleNamespace(version="v1"), distributions=distributions)
    new = SimpleNamespace(reference=SimpleNamespace(version="v2"), distributions=distributions)
    monitor = DriftMonitor(min_samples=1)
    monitor.observe({"m": old}, ("m",), {"x": 0.5})
    for _ in range(50):
        monitor.observe({"m": new}, ("m",), {"x": 0.5})
    monitor.observe({"m": old}, ("m",), {"x": 0.5})  # started before the switch, ends after
    monitor.observe({"m": new}, ("m",), {"x": 0.5})
    report = monitor.report()["m"]
    assert report["version"] == "v2" and report["numeric"]["x"]["samples"] == 51
    assert monitor.retired["m"].counts == [2]  # the old version's late request counted there


class Vector(BaseData):
    features: list[float]  # the demo's way: the numeric features by position, no names


def test_inputs_by_position_are_matched_to_the_features_in_training_order(
    app: hml.HmlApp, published: ModelContainer, wine: Any
) -> None:
    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        inference_app.load_model(ModelContainer("wine-clf"), "latest")

        @inference_app.route("/typed", input=Vector)
        def typed(vector: Vector) -> dict[str, int]:
            return {"n": len(vector.features)}

        @inference_app.route("/raw")
        def raw(payload: Any) -> dict[str, int]:
            return {"n": len(payload)}

    app.inference.configure(drift_min_samples=10)
    client = app.inference.build().test_client()
    names = list(wine.feature_names)
    numeric = published.distributions["numeric"]
    row = [numeric[f]["mean"] for f in names]
    shifted = list(row)
    shifted[names.index("proline")] = numeric["proline"]["mean"] + 6 * numeric["proline"]["std"]
    for _ in range(4):
        assert client.post("/typed", json={"features": shifted}).status_code == 200
        assert client.post("/raw", json=shifted).status_code == 200  # a bare vector
        assert client.post("/raw", json={"x": shifted}).status_code == 200  # one vector field
    assert client.post("/raw", json=[shifted, shifted]).status_code == 200  # rows
    assert client.post("/raw", json=row[:5]).status_code == 200  # too short: not the features
    report = client.get("/").json["drift"]["wine-clf"]
    assert report["numeric"]["proline"]["samples"] == 14
    assert report["numeric"]["proline"]["score"] == pytest.approx(6.0)
    assert report["numeric"]["alcohol"]["score"] == pytest.approx(0.0, abs=1e-9)
    assert report["drifted_features"] == ["proline"]


def test_a_record_with_two_vectors_of_that_length_is_not_guessed(
    published: ModelContainer, wine: Any
) -> None:
    n = len(wine.feature_names)
    drift = ModelDrift(
        "wine-clf", published.reference, published.distributions, published.features_numeric
    )
    drift.observe({"a": [1.0] * n, "b": [2.0] * n}, 3.0, 1)
    drift.observe({"alcohol": 13.0, "v": [1.0] * n}, 3.0, 1)  # named features win
    report = drift.report(3.0, 1)
    assert report["numeric"]["alcohol"]["samples"] == 1
    assert report["numeric"]["proline"]["samples"] == 0
