"""The base model and blocks: Keras classes with the three functions the manager calls.

The manager passes a batch's ``inputs`` dict as keyword arguments, so ``get_loss``,
``produce_metrics`` and ``get_outputs`` of a model all take the same input names, the names
that ``BatchProcessor.process_training_batch`` returns::

    class Scorer(BaseTensorflowModel):
        def __init__(self, hidden: Block, **kwargs):
            super().__init__(**kwargs)
            self.hidden = hidden
            self.out = tf.keras.layers.Dense(1)

        def call(self, features, training=False):
            return self.out(self.hidden(features, training=training))[:, 0]

        def get_loss(self, targets, training, features):
            return tf.reduce_mean(tf.square(self(features, training=training) - targets))

        def produce_metrics(self, targets, training, globalStep, features):
            tf.summary.scalar("mae", tf.reduce_mean(tf.abs(self(features) - targets)), globalStep)

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="features")])
        def get_outputs(self, features):
            return self(features, training=False)

``get_outputs`` declares its signature: it is what the exported model serves.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf


class BaseTensorflowModelBlock(tf.keras.layers.Layer):  # type: ignore[misc]
    """A reusable piece of a model (a Keras layer); blocks organise the model's code."""


class BaseTensorflowModel(tf.keras.Model):  # type: ignore[misc]
    """A model trained by TensorflowModelManager and exported with its lineage."""

    def get_loss(self, targets: Any, training: bool, **inputs: Any) -> Any:
        """The scalar loss of a batch (differentiated by the manager)."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_loss()")

    def produce_metrics(self, targets: Any, training: bool, globalStep: Any, **inputs: Any) -> None:
        """Record metrics with ``tf.summary.*``; runs inside the TensorBoard writer of the
        phase (train or evaluate). Optional: the manager records the loss itself."""

    def get_outputs(self, **inputs: Any) -> Any:
        """The model's outputs; decorate it with ``@tf.function(input_signature=[...])`` (one
        named TensorSpec per input) so the exported model can serve it."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement get_outputs() with a declared input_signature"
        )
