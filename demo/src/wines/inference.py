"""The inference server: the newest published wine classifier behind POST /predict."""

from __future__ import annotations

from hypermodel import hml

from .data import FEATURES, Prediction, WineFeatures
from .pipeline import MODEL


def declare(app: hml.HmlApp) -> None:
    @hml.inference(app.inference)
    def serve(inference_app: hml.HmlInferenceApp) -> None:
        container = inference_app.load_model(hml.ModelContainer(MODEL), "latest")

        @inference_app.route("/predict", input=WineFeatures, output=Prediction, model=MODEL)
        def predict(wine: WineFeatures) -> Prediction:
            """Predict the cultivar of one wine from its 13 measurements."""
            if len(wine.features) != len(FEATURES):
                raise hml.RequestError(
                    f"features must have {len(FEATURES)} values ({', '.join(FEATURES)}), "
                    f"got {len(wine.features)}"
                )
            probabilities = container.model.predict_proba([wine.features])[0]
            return Prediction(
                cultivar=int(probabilities.argmax()),
                probabilities=[round(float(p), 4) for p in probabilities],
            )

    @hml.deploy_inference(app.inference)
    def deployment(deploy: hml.HmlInferenceDeployment) -> hml.HmlInferenceDeployment:
        return deploy.with_resources(cpu="250m", memory="512Mi").with_empty_dir(
            "scratch", "/scratch"
        )
