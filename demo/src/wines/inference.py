"""The inference server: the newest published wine classifier behind POST /predict."""

from __future__ import annotations

from hypermodel import hml

from .data import FEATURES, Prediction, WineFeatures
from .pipeline import MODEL


def declare(app: hml.HmlApp) -> None:
    @hml.inference(app.inference)
    def serve(inference_app: hml.HmlInferenceApp) -> None:
        container = inference_app.load_model(hml.ModelContainer(MODEL), "latest")
        # concurrent requests share one forest call: 100 trees cost about the same for 1 row as for 30
        predict_proba = inference_app.batch(container.model.predict_proba, max_batch_size=64)

        @inference_app.route("/predict", input=WineFeatures, output=Prediction, model=MODEL)
        def predict(wine: WineFeatures) -> Prediction:
            """Predict the cultivar of one wine from its 13 measurements."""
            if len(wine.features) != len(FEATURES):
                raise hml.RequestError(
                    f"features must have {len(FEATURES)} values ({', '.join(FEATURES)}), "
                    f"got {len(wine.features)}"
                )
            probabilities = predict_proba(wine.features)
            return Prediction(
                cultivar=int(probabilities.argmax()),
                probabilities=[round(float(p), 4) for p in probabilities],
            )

    @hml.deploy_inference(app.inference)
    def deployment(deploy: hml.HmlInferenceDeployment) -> hml.HmlInferenceDeployment:
        return deploy.with_resources(cpu="250m", memory="512Mi").with_empty_dir(
            "scratch", "/scratch"
        )
