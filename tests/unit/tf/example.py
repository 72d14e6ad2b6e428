"""A tiny regression model for the TF tests: score = sum of three features."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from hypermodel import hml
from hypermodel.tf.batch import BaseBatchProcessor
from hypermodel.tf.model import BaseTensorflowModel, BaseTensorflowModelBlock


class Reading(hml.BaseData, id="readingId"):
    readingId: int
    features: list[float]
    target: float = 0.0


class Score(hml.BaseData, id="readingId"):
    readingId: int
    score: float


class Hidden(BaseTensorflowModelBlock):
    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = tf.keras.layers.Dense(units, activation="relu")

    def call(self, x: Any) -> Any:
        return self.dense(x)


class Scorer(BaseTensorflowModel):
    def __init__(self, hidden: Hidden, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden = hidden
        self.out = tf.keras.layers.Dense(1)

    def call(self, features: Any, training: bool = False) -> Any:
        return self.out(self.hidden(features))[:, 0]

    def get_loss(self, targets: Any, training: bool, features: Any) -> Any:
        return tf.reduce_mean(tf.square(self(features, training=training) - targets))

    def produce_metrics(self, targets: Any, training: bool, globalStep: Any, features: Any) -> None:
        error = tf.reduce_mean(tf.abs(self(features, training=training) - targets))
        tf.summary.scalar("mean_absolute_error", error, step=globalStep)

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="features")])
    def get_outputs(self, features: Any) -> Any:
        return self(features, training=False)


class ScorerBatchProcessor(BaseBatchProcessor):
    def process_training_batch(self, batch: list[Reading]) -> tuple[dict[str, Any], Any]:
        inputs = self.process_input_batch(batch)
        return inputs, tf.constant([r.target for r in batch], dtype=tf.float32)

    def process_evaluation_batch(
        self, batch: list[Reading], inputs: dict[str, Any], targets: Any, outputs: Any
    ) -> list[Score]:
        return [
            Score(readingId=r.readingId, score=float(s))
            for r, s in zip(batch, outputs.numpy(), strict=True)
        ]

    def process_input_batch(self, batch: list[Reading]) -> dict[str, Any]:
        return {"features": tf.constant([r.features for r in batch], dtype=tf.float32)}

    def process_output_batch(self, outputs: Any) -> list[Score]:
        return [Score(readingId=0, score=float(s)) for s in outputs.numpy()]


def readings(count: int, start: int = 0) -> list[Reading]:
    out = []
    for k in range(start, start + count):
        features = [((k * 7 + j * 3) % 11) / 10.0 for j in range(3)]
        out.append(Reading(readingId=k, features=features, target=sum(features)))
    return out
