"""The batch processor's batching and the package's lazy import (no TensorFlow needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hypermodel import hml
from hypermodel.errors import UsageError
from hypermodel.tf.batch import BaseBatchProcessor, dataset_checksum


class Item(hml.BaseData, id="itemId"):
    itemId: int


def test_import_does_not_import_tensorflow() -> None:
    code = "import sys, hypermodel.tf, hypermodel.tf.batch; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_batches_from_a_list_keep_the_remainder() -> None:
    processor = BaseBatchProcessor(trainingData=list(range(7)), batchSize=3)
    assert list(processor.training_batches(0)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(processor.evaluation_batches()) == []


def test_one_shot_iterators_are_refused() -> None:
    processor = BaseBatchProcessor(trainingData=iter(range(3)))
    with pytest.raises(UsageError, match="re-iterable"):
        list(processor.training_batches(0))


def test_bad_batch_size_and_missing_data() -> None:
    with pytest.raises(UsageError, match="batchSize"):
        BaseBatchProcessor(batchSize=0)
    with pytest.raises(UsageError, match="no trainingData"):
        BaseBatchProcessor().training_batches(0)


def test_dataset_epochs_are_reproducible_permutations(tmp_path) -> None:
    dataset = hml.Dataset(Item, location=str(tmp_path), name="items")
    with dataset.open("w") as writer:
        for k in range(20):
            writer.append(Item(itemId=k))
    processor = BaseBatchProcessor(trainingData=dataset, batchSize=8, shuffleSeed=5)
    epoch0 = [i.itemId for b in processor.training_batches(0) for i in b]
    epoch1 = [i.itemId for b in processor.training_batches(1) for i in b]
    assert sorted(epoch0) == sorted(epoch1) == list(range(20))
    assert epoch0 != epoch1  # a new permutation per epoch
    again = BaseBatchProcessor(trainingData=dataset, batchSize=8, shuffleSeed=5)
    assert [i.itemId for b in again.training_batches(1) for i in b] == epoch1
    assert processor.training_dataset() is dataset


def test_output_dataset_is_discarded_on_failure_and_published_on_success(tmp_path) -> None:
    dataset = hml.Dataset(Item, location=str(tmp_path), name="out")
    processor = BaseBatchProcessor(outputDataset=dataset)
    processor.start()
    processor.save_evaluation([Item(itemId=1)])
    assert processor.finish(failed=True) is None
    assert not dataset.exists()
    processor.start()
    processor.save_evaluation([Item(itemId=1), Item(itemId=2)])
    checksum = processor.finish()
    assert checksum == dataset_checksum(dataset)
    assert sorted(i.itemId for i in dataset.open("r")) == [1, 2]


def test_missing_tensorflow_names_the_extra(monkeypatch) -> None:
    import hypermodel.tf as hmltf
    from hypermodel.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as if it were not installed
    with pytest.raises(MissingExtraError, match=r"hypermodel\[tf\]"):
        hmltf.TensorflowModelManager  # noqa: B018
