"""TensorflowModelManager: train a model from dataset streams, evaluate, checkpoint, export.

::

    manager = TensorflowModelManager(
        model=Scorer(hidden=Block(8)),
        optimizer=tf.keras.optimizers.Adam(0.01),
        batchProcessor=ScorerBatchProcessor(trainingData=train, evaluationData=test,
                                            batchSize=32, outputDataset=scores),
        directory="models/scorer",
    )
    manager.run(epochs=3)             # train, evaluate each epoch, checkpoint each epoch
    path = manager.export()           # models/scorer/saved_model, lineage embedded

Under ``directory``: ``tensorboard/train`` and ``tensorboard/evaluate`` (summaries: the loss,
plus whatever ``produce_metrics`` records), ``checkpoints/`` (one per epoch, model and
optimizer state; ``restore()`` resumes from the latest) and the export.

``run`` is wrapped in try/finally: the evaluation output dataset is always finalised —
published when training ends normally, discarded (nothing half-written left) when it raises.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
from pathlib import Path
from typing import Any

import tensorflow as tf

from ..errors import UsageError
from .batch import BaseBatchProcessor, dataset_checksum
from .export import export_model

log = logging.getLogger(__name__)


def default_long_name(model: Any, commit: str | None = None) -> str:
    """``<ModelClass>_<YYYYMMDD>_<commit>``: the commit identifies the code, the rest is for people."""
    if commit is None:
        from ..serving.model import git_state

        commit = git_state()[0]
    return f"{type(model).__name__}_{dt.date.today():%Y%m%d}_{commit}"


def training_directory(name: str) -> Path:
    """Where a training op keeps summaries, checkpoints and the export.

    ``<bucket root>/models/<name>/<run id>`` when the running op's bucket is on local disk;
    otherwise (or outside an op) a directory under the op's scratch space or ``./models``
    — upload the export to your bucket from there.
    """
    from ..context import maybe_context
    from ..names import check_name

    check_name(name, "model")
    ctx = maybe_context()
    if ctx is None:
        return Path("models") / name
    local = ctx.storage.local_path(f"models/{name}/{ctx.run_id}")
    return Path(local) if local else Path(ctx.workdir) / "models" / name


class TensorflowModelManager:
    """Ties a model, an optimizer and a batch processor together for training and export."""

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        batchProcessor: BaseBatchProcessor,
        directory: str | os.PathLike[str],
        *,
        longName: str | None = None,
        commit: str | None = None,
        evaluateEvery: int | None = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.batchProcessor = batchProcessor
        self.directory = Path(directory)
        self.commit = commit
        self.longName = longName or default_long_name(model, commit)
        self.evaluateEvery = evaluateEvery  # in steps; None: at the end of every epoch
        self.globalStep = 0
        self.epoch = 0
        # the last epoch's losses: embedded in the export, recorded as the published metrics
        self.lastMetrics: dict[str, float] = {}
        self.evaluationChecksum: str | None = None
        self._writers: dict[str, Any] = {}
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
        self._checkpoints = tf.train.CheckpointManager(
            self.checkpoint, str(self.directory / "checkpoints"), max_to_keep=None
        )

    # -- summaries ----------------------------------------------------------------------------------
    def _writer(self, phase: str) -> Any:
        if phase not in self._writers:
            path = self.directory / "tensorboard" / phase
            self._writers[phase] = tf.summary.create_file_writer(str(path))
        return self._writers[phase]

    # -- one step -----------------------------------------------------------------------------------
    def train_step(self, batch: list[Any]) -> float:
        inputs, targets = self.batchProcessor.process_training_batch(batch)
        with tf.GradientTape() as tape:
            loss = self.model.get_loss(targets=targets, training=True, **inputs)
        variables = self.model.trainable_variables
        gradients = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        step = tf.constant(self.globalStep, dtype=tf.int64)
        with self._writer("train").as_default(step=self.globalStep):
            tf.summary.scalar("loss", loss, step=step)
            self.model.produce_metrics(targets=targets, training=True, globalStep=step, **inputs)
        self.globalStep += 1
        return float(loss)

    def evaluate(self, save: bool = False) -> float | None:
        """Mean loss over the evaluation data (None without any); ``save`` writes the
        processor's evaluation objects to the output dataset."""
        total, count = 0.0, 0
        step = tf.constant(self.globalStep, dtype=tf.int64)
        writer = self._writer("evaluate")
        for batch in self.batchProcessor.evaluation_batches():
            inputs, targets = self.batchProcessor.process_training_batch(batch)
            loss = self.model.get_loss(targets=targets, training=False, **inputs)
            total += float(loss) * len(batch)
            count += len(batch)
            with writer.as_default(step=self.globalStep):
                self.model.produce_metrics(
                    targets=targets, training=False, globalStep=step, **inputs
                )
            if save:
                outputs = self.model.get_outputs(**inputs)
                self.batchProcessor.save_evaluation(
                    self.batchProcessor.process_evaluation_batch(batch, inputs, targets, outputs)
                )
        if not count:
            return None
        mean = total / count
        with writer.as_default(step=self.globalStep):
            tf.summary.scalar("loss", mean, step=step)
        return mean

    # -- the loop -----------------------------------------------------------------------------------
    def run(self, epochs: int = 1, trainingSteps: int | None = None) -> dict[str, Any]:
        """Train ``epochs`` epochs (at most ``trainingSteps`` steps in all), evaluating and
        checkpointing at the end of each; the last evaluation fills the output dataset."""
        if epochs < 1:
            raise UsageError(f"epochs must be >= 1, got {epochs}")
        self.batchProcessor.start()
        failed = True
        history: dict[str, Any] = {"train_loss": [], "evaluation_loss": [], "checkpoints": []}
        try:
            last = self.epoch + epochs
            while self.epoch < last:
                losses = self._train_epoch(trainingSteps)
                history["train_loss"].append(sum(losses) / len(losses) if losses else None)
                self.epoch += 1
                history["evaluation_loss"].append(self.evaluate(save=self.epoch == last))
                history["checkpoints"].append(self.save_checkpoint())
                log.info("%s epoch %d: %s", self.longName, self.epoch, history["train_loss"][-1])
            failed = False
        finally:
            self.finish(failed)
        self.lastMetrics = {
            key: float(values[-1])
            for key, values in (
                ("train_loss", history["train_loss"]),
                ("evaluation_loss", history["evaluation_loss"]),
            )
            if values and isinstance(values[-1], (int, float)) and math.isfinite(values[-1])
        }
        history["evaluation_dataset"] = self.evaluationChecksum
        return history

    def _train_epoch(self, trainingSteps: int | None) -> list[float]:
        losses: list[float] = []
        for batch in self.batchProcessor.training_batches(self.epoch):
            if trainingSteps is not None and self.globalStep >= trainingSteps:
                break
            losses.append(self.train_step(batch))
            if self.evaluateEvery and self.globalStep % self.evaluateEvery == 0:
                self.evaluate()
        return losses

    def finish(self, failed: bool = False) -> None:
        """Flush summaries and finalise the evaluation output dataset (always called by run)."""
        try:
            for writer in self._writers.values():
                writer.flush()
        finally:
            self.evaluationChecksum = self.batchProcessor.finish(failed)

    # -- checkpoints and export ---------------------------------------------------------------------
    def save_checkpoint(self) -> str:
        path: str = self._checkpoints.save(checkpoint_number=self.epoch)
        return path

    def restore(self, path: str | None = None) -> str | None:
        """Restore a checkpoint (default: the latest); the epoch count continues from it."""
        path = path or self._checkpoints.latest_checkpoint
        if path is None:
            return None
        self.checkpoint.restore(path).expect_partial()
        self.epoch = int(path.rsplit("-", 1)[1])
        return path

    def export(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Export the model with its long name and the training dataset's checksum embedded."""
        dataset = self.batchProcessor.training_dataset()
        lineage = {
            "long_name": self.longName,
            "dataset_checksum": dataset_checksum(dataset) if dataset is not None else "none",
            "dataset": repr(dataset) if dataset is not None else None,
            "commit": self.commit or self.longName.rsplit("_", 1)[-1],
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "model_class": f"{type(self.model).__module__}.{type(self.model).__qualname__}",
            "epochs": self.epoch,
            "steps": self.globalStep,
            "version": f"epoch-{self.epoch}",
            "metrics": dict(self.lastMetrics),
        }
        return export_model(self.model, path or self.directory / "saved_model", lineage)
