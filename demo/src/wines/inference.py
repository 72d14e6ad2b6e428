"""The inference server: the newest published wine classifier behind POST /predict (or what
`--model wine-classifier=production` names), following it when a new version is published."""

from __future__ import annotations

from typing import Any

from hypermodel import hml

from .data import FEATURES, Prediction, WineFeatures
from .pipeline import MODEL


def predict_proba_by_model(items: list[tuple[Any, list[float]]]) -> list[Any]:
    """(model, row) pairs in, one row of class probabilities per pair out, one model call per
    distinct model. A batch taken across a hot reload holds rows for the old and the new
    version: each row is answered by the model its request started with."""
    by_model: dict[int, tuple[Any, list[int]]] = {}
    for i, (model, _) in enumerate(items):
        by_model.setdefault(id(model), (model, []))[1].append(i)
    results: list[Any] = [None] * len(items)
    for model, indices in by_model.values():
        rows = model.predict_proba([items[i][1] for i in indices])
        for i, row in zip(indices, rows, strict=True):
            results[i] = row
    return results


def declare(app: hml.HmlApp) -> None:
    @hml.inference(app.inference)
    def serve(inference_app: hml.HmlInferenceApp) -> None:
        container = inference_app.load_model(hml.ModelContainer(MODEL), "latest")

        # concurrent requests share one forest call: 100 trees cost about the same for 1 row as
        # for 30. Each request passes the model it started with (container.model is the version
        # serving now, and stays that one for the request's lineage headers), so the route
        # follows hot reloads; binding container.model.predict_proba here would keep the first.
        predict_proba = inference_app.batch(
            predict_proba_by_model, max_batch_size=64, name="predict_proba"
        )

        @inference_app.route("/predict", input=WineFeatures, output=Prediction, model=MODEL)
        def predict(wine: WineFeatures) -> Prediction:
            """Predict the cultivar of one wine from its 13 measurements."""
            if len(wine.features) != len(FEATURES):
                raise hml.RequestError(
                    f"features must have {len(FEATURES)} values ({', '.join(FEATURES)}), "
                    f"got {len(wine.features)}"
                )
            probabilities = predict_proba((container.model, wine.features))
            return Prediction(
                cultivar=int(probabilities.argmax()),
                probabilities=[round(float(p), 4) for p in probabilities],
            )

    @hml.deploy_inference(app.inference)
    def deployment(deploy: hml.HmlInferenceDeployment) -> hml.HmlInferenceDeployment:
        return deploy.with_resources(cpu="250m", memory="512Mi").with_empty_dir(
            "scratch", "/scratch"
        )
