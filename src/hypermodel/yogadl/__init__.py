"""YogaDL's names, for porting a YogaDL app by changing its imports only::

    from hypermodel import yogadl          # was: import yogadl
    import hypermodel.yogadl.storage       # was: import yogadl.storage
    import hypermodel.yogadl.tensorflow    # was: import yogadl.tensorflow

The implementation is ``hypermodel.data.yogadl`` (datasets and streams; see docs/datasets.md).
Importing this package does not import TensorFlow.
"""

from __future__ import annotations

import abc
from typing import Any

from ..data import yogadl as data_yogadl
from ..data.yogadl import Storage, Stream
from . import storage, tensorflow


class DataRef(abc.ABC):
    """YogaDL's ``DataRef`` interface: ``stream(...)`` returns a :class:`Stream`, ``len()`` is
    the number of records.

    ``storage.fetch()`` returns hypermodel's DataRef, which is one of these
    (``isinstance(ref, yogadl.DataRef)``). Subclass it for a custom DataRef that makes its own
    streams, as in YogaDL. ``DataRef(storage, dataset_id, dataset_version)`` still makes
    hypermodel's DataRef of a stored pair.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is DataRef:
            return data_yogadl.DataRef(*args, **kwargs)
        return super().__new__(cls)

    @abc.abstractmethod
    def stream(
        self,
        start_offset: int = 0,
        shuffle: bool = False,
        skip_shuffle_at_epoch_end: bool = False,
        shuffle_seed: int | None = None,
        shard_rank: int = 0,
        num_shards: int = 1,
        drop_shard_remainder: bool = False,
    ) -> Stream:
        """A stream of the records: ``iterator_fn()`` yields one epoch per call."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """Records in one epoch of the whole dataset."""


DataRef.register(data_yogadl.DataRef)

__all__ = ["DataRef", "Storage", "Stream", "storage", "tensorflow"]
