"""The batch processor: the one place that turns data model objects into tensors and back.

Four functions a model's processor implements, kept together because they must agree:

- ``process_training_batch(batch) -> (inputs, targets)``: ``inputs`` a dict of tensors named as
  the model's ``get_loss`` / ``get_outputs`` arguments, ``targets`` a tensor.
- ``process_evaluation_batch(batch, inputs, targets, outputs) -> list`` of data model objects
  saved to the evaluation output dataset.
- ``process_input_batch(batch) -> inputs``: serving, from input objects.
- ``process_output_batch(outputs) -> list`` of output objects: serving, from ``get_outputs``.

Training and evaluation data are datasets (read as shuffled, reproducible streams, one
permutation per epoch) or any iterable of objects.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import UsageError


class BaseBatchProcessor:
    """Batches of training and evaluation objects, and the output dataset of evaluation."""

    def __init__(
        self,
        trainingData: Any = None,
        evaluationData: Any = None,
        batchSize: int = 32,
        outputDataset: Any = None,
        *,
        shuffle: bool = True,
        shuffleSeed: int = 0,
    ) -> None:
        if batchSize < 1:
            raise UsageError(f"batchSize must be >= 1, got {batchSize}")
        self.trainingData = trainingData
        self.evaluationData = evaluationData
        self.batchSize = batchSize
        self.outputDataset = outputDataset
        self.shuffle = shuffle
        self.shuffleSeed = shuffleSeed
        self._writer: Any = None

    # -- what a model's processor implements ------------------------------------------------------
    def process_training_batch(self, batch: list[Any]) -> tuple[dict[str, Any], Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement process_training_batch()")

    def process_evaluation_batch(
        self, batch: list[Any], inputs: dict[str, Any], targets: Any, outputs: Any
    ) -> list[Any]:
        raise NotImplementedError(
            f"{type(self).__name__} must implement process_evaluation_batch()"
        )

    def process_input_batch(self, batch: list[Any]) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement process_input_batch()")

    def process_output_batch(self, outputs: Any) -> list[Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement process_output_batch()")

    # -- batches ----------------------------------------------------------------------------------
    def training_batches(self, epoch: int) -> Iterator[list[Any]]:
        """Epoch ``epoch``'s training batches (a new permutation each epoch for datasets)."""
        if self.trainingData is None:
            raise UsageError(f"{type(self).__name__} has no trainingData to train on")
        return _batches(
            _epoch_objects(self.trainingData, epoch, self.shuffle, self.shuffleSeed), self.batchSize
        )

    def evaluation_batches(self) -> Iterator[list[Any]]:
        if self.evaluationData is None:
            return iter(())
        return _batches(_epoch_objects(self.evaluationData, 0, False, 0), self.batchSize)

    def training_dataset(self) -> Any:
        """The Dataset training reads (for its checksum), or None for other iterables."""
        return _dataset_of(self.trainingData)

    # -- the evaluation output dataset --------------------------------------------------------------
    def start(self) -> None:
        """Open the output dataset for writing (called by the manager before training)."""
        if self.outputDataset is not None and self._writer is None:
            self._writer = self.outputDataset.open("w")

    def save_evaluation(self, objects: Iterable[Any]) -> int:
        if self._writer is None:
            return 0
        count = 0
        for obj in objects:
            self._writer.append(obj)
            count += 1
        return count

    def finish(self, failed: bool = False) -> str | None:
        """Finalise the output dataset: published (its checksum returned) when training ended
        normally, discarded when it raised, so no partial evaluation looks complete."""
        writer, self._writer = self._writer, None
        if writer is None:
            return None
        if failed:
            writer.abort()
            return None
        checksum: str = writer.close()
        return checksum


def dataset_checksum(dataset: Any) -> str:
    """A published dataset's checksum (SHA1 of its .chk), whichever form Dataset exposes."""
    value = dataset.checksum
    return str(value() if callable(value) else value)


def _dataset_of(data: Any) -> Any:
    from ..data.dataset import Dataset

    if isinstance(data, Dataset):
        return data
    inner = getattr(data, "dataset", None)  # a Stream
    return inner if isinstance(inner, Dataset) else None


def _epoch_objects(data: Any, epoch: int, shuffle: bool, seed: int) -> Iterable[Any]:
    from ..data.dataset import Dataset

    if isinstance(data, Dataset):
        records = data.stream(epochs=1).records_per_epoch
        # one stream over all epochs, entered at this epoch: the permutation of epoch k is
        # fixed by (seed, k), so a resumed run sees exactly the order it would have seen
        return data.stream(
            shuffle=shuffle,
            shuffle_seed=seed if shuffle else None,
            start_offset=epoch * records,
            epochs=epoch + 1,
        )
    if isinstance(data, Iterator):
        raise UsageError(
            "training/evaluation data must be re-iterable (a Dataset, a Stream or a list), "
            "not a one-shot iterator: every epoch reads it again"
        )
    return data  # type: ignore[no-any-return]


def _batches(objects: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(objects)
    while batch := list(itertools.islice(it, size)):
        yield batch
