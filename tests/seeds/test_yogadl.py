"""Every example of the YogaDL documentation (its examples page and the example files it
includes: walkthrough.py, mnist.py, custom_data_ref.py), ported.

``import yogadl`` becomes ``from hypermodel import yogadl`` (``import yogadl.storage`` /
``yogadl.tensorflow`` become ``import hypermodel.yogadl.storage`` / ``.tensorflow``); the
snippet text is kept. Each storage directory is the test's own instead of /tmp/yogadl_cache.

Counts (8 snippets on the examples page):

- snippets total: 8
- run with imports changed only: 5 -- creating the storage, storing, fetching, cacheable,
  custom_data_ref.py
- need more than imports: 2 -- mnist.py (MNIST cannot be downloaded: random images of the same
  shape), Horovod's sharding (two ranks stand in for ``hvd``)
- cannot run: 1 -- the printed batches (an output: the permutations are hypermodel's, so the
  numbers differ; their count, shapes and epochs are checked)
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import pytest

from hypermodel.data.model import BaseData
from tests.support import require_module


class Row(BaseData, id="rowId"):
    rowId: int


@pytest.fixture
def tf() -> Any:
    return require_module("tensorflow")


@pytest.fixture
def storage_path(tmp_path: Path) -> str:
    return str(tmp_path / "yogadl_cache")  # the example's "/tmp/yogadl_cache"


def make_storage(storage_path: str) -> Any:
    # START creating a yogadl.Storage
    import os

    import hypermodel.yogadl.storage
    from hypermodel import yogadl

    # Create a yogadl.Storage object backed by the local filesystem.
    os.makedirs(storage_path, exist_ok=True)
    lfs_config = yogadl.storage.LFSConfigurations(storage_path)
    storage = yogadl.storage.LFSStorage(lfs_config)
    # END creating a yogadl.Storage
    assert hypermodel.yogadl.storage.LFSStorage is type(storage)
    return storage


def batches_of(batches: Any) -> list[list[int]]:
    return [batch.numpy().tolist() for batch in batches]


def test_walkthrough_store_fetch_stream(tf: Any, storage_path: str, capsys: Any) -> None:
    storage = make_storage(storage_path)

    # START storing a dataset
    import tensorflow as tf

    # Create a dataset we can store.
    records = tf.data.Dataset.range(10)

    # Store this dataset as "range" version "1.0".
    storage.submit(records, "range", "1.0")
    # END storing a dataset

    # START fetching a dataset
    import hypermodel.yogadl.tensorflow
    from hypermodel import yogadl

    # Get the DataRef.
    dataref = storage.fetch("range", "1.0")

    # Tell the DataRef how to stream the dataset.
    stream = dataref.stream(start_offset=5, shuffle=True, shuffle_seed=777)

    # Interpret the stream as a tensorflow dataset
    records = yogadl.tensorflow.make_tf_dataset(stream)

    # It's a real tf.data.Dataset; you can use normal tf.data operations on it.
    batches = records.repeat(3).batch(5)

    # (this part requires TensorFlow >= 2.0)
    for batch in batches:
        print(batch)
    # END fetching a dataset
    assert hypermodel.yogadl.tensorflow.make_tf_dataset is yogadl.tensorflow.make_tf_dataset

    # "This should print" five batches of five int64 tensors: 2.5 epochs, since start_offset
    # skipped half of the first one. The permutations are hypermodel's, not YogaDL's (epoch
    # seeds differ: docs/yogadl.md), so the printed numbers differ; their properties do not.
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 5
    assert all(line.endswith("shape=(5,), dtype=int64)") for line in printed)
    values = [int(v) for line in printed for v in line.split("[")[1].split("]")[0].split()]
    assert len(values) == 25
    assert sorted(values[5:15]) == sorted(values[15:]) == list(range(10))  # whole epochs
    unshifted = [int(v) for v in dataref.stream(shuffle=True, shuffle_seed=777).iterator_fn()]
    assert values[:5] == unshifted[5:]  # start_offset: the second half of the first epoch only
    # reproducible: the same seed gives the same batches
    again = yogadl.tensorflow.make_tf_dataset(
        dataref.stream(start_offset=5, shuffle=True, shuffle_seed=777)
    )
    assert [v for b in batches_of(again.repeat(3).batch(5)) for v in b] == values
    # a stream is stateful, as YogaDL's is: iterating `batches` again goes on with the stream's
    # next three epochs (each new iteration is the next epoch, as Keras' fit(epochs=N) needs);
    # a new dataref.stream(...) starts over
    more = [v for b in batches_of(batches) for v in b]
    assert len(more) == 30 and all(more.count(v) == 3 for v in range(10))


def test_walkthrough_cacheable(tf: Any, storage_path: str, capsys: Any) -> None:
    storage = make_storage(storage_path)
    import tensorflow as tf

    from hypermodel import yogadl

    for _attempt in range(2):  # the second call reads the cache: make_records does not run
        # START can I get the same features in fewer steps?
        @storage.cacheable("range", "2.0")
        def make_records():
            print("Cache not found, making range v2 dataset...")
            records = tf.data.Dataset.range(10).map(lambda x: 2 * x)
            return records

        # Follow the same steps as before.
        dataref = make_records()
        stream = dataref.stream()
        records = yogadl.tensorflow.make_tf_dataset(stream)
        batches = records.repeat(3).batch(5)

        for batch in batches:
            print(batch)
        # END can I get the same features in fewer steps?
        assert batches_of(batches) == [[0, 2, 4, 6, 8], [10, 12, 14, 16, 18]] * 3

    out = capsys.readouterr().out
    assert out.count("Cache not found, making range v2 dataset...") == 1
    assert out.count("tf.Tensor([10 12 14 16 18], shape=(5,), dtype=int64)") == 6


@pytest.mark.filterwarnings("ignore::UserWarning")  # Keras 3's notes on input_shape, shuffle
def test_mnist_second_half(tf: Any, storage_path: str) -> None:
    """mnist.py, with one change: ``tfds.image.MNIST()`` downloads MNIST, and nothing can be
    downloaded here, so ``make_data`` builds 640 random 28x28 images of the same shape and
    types in its place. Everything else is the example's."""
    import tensorflow as tf

    import hypermodel.yogadl.storage
    import hypermodel.yogadl.tensorflow
    from hypermodel import yogadl

    BATCH_SIZE = 32

    # Configure the yogadl storage.
    os.makedirs(storage_path, exist_ok=True)
    lfs_config = yogadl.storage.LFSConfigurations(storage_path)
    storage = yogadl.storage.LFSStorage(lfs_config)

    @storage.cacheable("mnist", "1.0")
    def make_data():
        images = tf.random.stateless_uniform(
            (640, 28, 28, 1), seed=(1, 2), maxval=256, dtype=tf.int32
        )
        labels = tf.random.stateless_uniform((640,), seed=(3, 4), maxval=10, dtype=tf.int64)
        dataset = tf.data.Dataset.from_tensor_slices((tf.cast(images, tf.uint8), labels))

        # Apply dataset transformations from the TensorFlow docs:
        # (https://www.tensorflow.org/datasets/keras_example)

        def normalize_img(image, label):
            """Normalizes images: `uint8` -> `float32`."""
            return tf.cast(image, tf.float32) / 255.0, label

        return dataset.map(normalize_img)

    # Get the DataRef from the storage via the decorated function.
    dataref = make_data()

    # Stream the dataset starting halfway through it.
    num_batches = math.ceil(len(dataref) / BATCH_SIZE)
    batches_to_skip = num_batches // 2
    records_to_skip = batches_to_skip * BATCH_SIZE
    stream = dataref.stream(start_offset=records_to_skip, shuffle=True, shuffle_seed=777)

    # Convert the stream to a tf.data.Dataset object.
    dataset = yogadl.tensorflow.make_tf_dataset(stream)

    # Apply normal data augmentation and prefetch steps.
    dataset = dataset.batch(BATCH_SIZE)
    dataset = dataset.prefetch(tf.data.experimental.AUTOTUNE)

    warnings.filterwarnings("ignore", "Do not pass an `input_shape`", UserWarning)  # Keras 3
    # Model is straight from the TensorFlow docs:
    # https://www.tensorflow.org/datasets/keras_example
    model = tf.keras.models.Sequential([
      tf.keras.layers.Flatten(input_shape=(28, 28, 1)),
      tf.keras.layers.Dense(128,activation='relu'),
      tf.keras.layers.Dense(10, activation='softmax')
    ])  # fmt: skip
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=tf.keras.optimizers.Adam(0.001),
        metrics=["accuracy"],
    )
    history = model.fit(dataset)

    assert len(dataref) == 640 and records_to_skip == 320
    assert history.params["steps"] is None or history.params["steps"] == 10
    assert math.isfinite(history.history["loss"][0])
    assert isinstance(stream, hypermodel.yogadl.Stream)


def test_distributed_training_shards(storage_path: str) -> None:
    """``hvd.rank()`` / ``hvd.size()`` of Horovod stand for two workers here: the stream of
    each rank is taken in turn."""
    storage = make_storage(storage_path)
    storage.submit([Row(rowId=i) for i in range(10)], "rows", "1")
    dataref = storage.fetch("rows", "1")

    class hvd:  # Horovod's process group of size 2
        _rank = 0

        @classmethod
        def rank(cls) -> int:
            return cls._rank

        @staticmethod
        def size() -> int:
            return 2

    seen = []
    for hvd._rank in range(2):
        stream = dataref.stream(shard_rank=hvd.rank(), num_shards=hvd.size())
        seen.append([row.rowId for row in stream.iterator_fn()])
    assert seen == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]


def test_custom_data_ref(tf: Any, capsys: Any) -> None:
    # INCLUDE IN DOCS
    import os

    import tensorflow as tf

    import hypermodel.yogadl.tensorflow
    from hypermodel import yogadl

    class RandomDataRef(yogadl.DataRef):
        """
        A DataRef to a a non-reproducible dataset that just produces random
        int32 values.
        """

        def __len__(self):
            return 10

        def stream(
            self,
            start_offset=0,
            shuffle=False,
            skip_shuffle_at_epoch_end=False,
            shuffle_seed=None,
            shard_rank=0,
            num_shards=1,
            drop_shard_remainder=False,
        ) -> yogadl.Stream:
            """
            For custom DataRefs, .stream() will often be a pretty beefy
            function. This example simplifies it by assuming that the dataset
            is non-reproducible, meaning that shuffle and shuffle_seed
            arguments are meaningless, and the shard_rank is only used to
            determine how many records will be yielded during each epoch.
            """

            first_epoch = True

            def iterator_fn():
                nonlocal first_epoch
                if first_epoch:
                    first_epoch = False
                    start = start_offset + shard_rank
                else:
                    start = shard_rank

                if drop_shard_remainder:
                    end = len(self) - (len(self) % num_shards)
                else:
                    end = len(self)

                for _ in range(start, end, num_shards):
                    # Make a uint32 out of 4 random bytes
                    r = os.urandom(4)
                    yield r[0] + (r[1] << 8) + (r[2] << 16) + (r[3] << 24)

            # Since we will later convert to tf.data.Dataset,
            # we will supply output_types and shapes.
            return yogadl.Stream(
                iterator_fn,
                len(self),
                output_types=tf.uint32,
                output_shapes=tf.TensorShape([])
            )  # fmt: skip

    dataref = RandomDataRef()
    stream = dataref.stream()
    records = yogadl.tensorflow.make_tf_dataset(stream)
    batches = records.batch(5)
    for batch in batches:
        print(batch)

    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 2 and all("shape=(5,), dtype=uint32" in line for line in printed)
    assert isinstance(dataref, yogadl.DataRef) and hypermodel.yogadl.DataRef is yogadl.DataRef


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["gcs", "s3"])
def test_gcs_and_s3_storages(request: pytest.FixtureRequest, backend: str) -> None:
    """ "YogaDL also comes with built-in support for GCS via GCSStorage and for S3 via
    S3Storage": here on fake-gcs-server and moto instead of the clouds."""
    from hypermodel import yogadl

    url = str(request.getfixturevalue(f"{backend}_url"))
    bucket, _, path = url.split("://", 1)[1].partition("/")
    if backend == "gcs":
        config = yogadl.storage.GCSConfigurations(bucket, path, url="ws://unused")
        storage = yogadl.storage.GCSStorage(config)
    else:
        config = yogadl.storage.S3Configurations(bucket, path, url="ws://unused")
        storage = yogadl.storage.S3Storage(config)
    storage.submit([Row(rowId=i) for i in range(10)], "range", "1.0")
    dataref = storage.fetch("range", "1.0")
    stream = dataref.stream(start_offset=5, shuffle=True, shuffle_seed=777)
    first = [row.rowId for row in stream.iterator_fn()]
    assert len(first) == 5 and len(set(first)) == 5
    assert sorted(row.rowId for row in stream.iterator_fn()) == list(range(10))
