"""Framework adapters for streams, each behind an optional extra and imported only when used.

``to_torch``: an ``IterableDataset`` that splits the stream across DataLoader workers: worker
``w`` of ``k`` takes every ``k``-th record of the stream's order, so together they yield each
record of the stream exactly once (no duplicates, no gaps), whatever the shuffle or shard.

``to_tf``: ``tf.data.Dataset.from_generator`` with a declared ``output_signature`` (given, or
inferred from the first record's ``to_data()`` when its values are scalars or flat lists).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .._lazy import require
from .errors import DatasetUsageError

if TYPE_CHECKING:
    from .io.stream import Stream


def tensorflow(purpose: str) -> Any:
    """The ``tensorflow`` module (MissingExtraError naming the ``tf`` extra without it): the
    one place in ``data`` that imports it."""
    return require("tensorflow", "tf", purpose)


def _split(stream: Stream, transform: Callable[[Any], Any] | None) -> Iterator[Any]:
    torch = require("torch", "torch", "Stream.to_torch()")
    info = torch.utils.data.get_worker_info()
    worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
    objects = stream.iter_slices(stream.slices(worker, workers))
    return objects if transform is None else (transform(o) for o in objects)


def _torch_dataset(stream: Stream, transform: Callable[[Any], Any] | None) -> Any:
    torch = require("torch", "torch", "Stream.to_torch()")

    class StreamDataset(torch.utils.data.IterableDataset):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.stream = stream
            self.transform = transform

        def __iter__(self) -> Iterator[Any]:
            return _split(self.stream, self.transform)

        def __len__(self) -> int:
            return len(self.stream)

        def __reduce__(self) -> tuple[Any, ...]:
            # the class is made inside a function: spawned DataLoader workers rebuild it
            return (_torch_dataset, (self.stream, self.transform))

    return StreamDataset()


def to_torch(stream: Stream, transform: Callable[[Any], Any] | None = None) -> Any:
    """An IterableDataset over ``stream``; ``transform`` maps each object (e.g. to tensors)."""
    return _torch_dataset(stream, transform)


def tensor_spec(tf: Any, value: Any, field: str) -> Any:
    scalar = {bool: tf.bool, int: tf.int64, float: tf.float32, str: tf.string}
    if type(value) in scalar:
        return tf.TensorSpec(shape=(), dtype=scalar[type(value)])
    if isinstance(value, list) and value and all(type(v) is type(value[0]) for v in value):
        if type(value[0]) in scalar:
            return tf.TensorSpec(shape=(None,), dtype=scalar[type(value[0])])
    raise DatasetUsageError(
        f"cannot infer a TensorSpec for field '{field}' ({value!r}): pass output_signature= "
        "(and a transform that produces it)"
    )


def to_tf(
    stream: Stream,
    output_signature: Any = None,
    transform: Callable[[Any], Any] | None = None,
) -> Any:
    """A ``tf.data.Dataset`` of ``transform(obj)`` (default ``obj.to_data()``)."""
    tf = tensorflow("Stream.to_tf()")
    convert = transform or (lambda obj: obj.to_data())
    if output_signature is None:
        first = next(iter(stream.iter_slices(stream.slices())), None)
        if first is None:
            raise DatasetUsageError(
                f"cannot infer a signature from the empty {stream!r}: pass output_signature="
            )
        sample = convert(first)
        if not isinstance(sample, dict):
            raise DatasetUsageError("pass output_signature= when transform does not return a dict")
        output_signature = {k: tensor_spec(tf, v, k) for k, v in sample.items()}

    def generate() -> Iterator[Any]:
        return (convert(obj) for obj in stream)

    return tf.data.Dataset.from_generator(generate, output_signature=output_signature)
