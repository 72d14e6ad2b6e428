"""YogaDL's names, for porting a YogaDL app by changing its imports only::

    from hypermodel import yogadl          # was: import yogadl
    import hypermodel.yogadl.storage       # was: import yogadl.storage
    import hypermodel.yogadl.tensorflow    # was: import yogadl.tensorflow

The implementation is ``hypermodel.data.yogadl`` (datasets and streams; see docs/datasets.md).
Importing this package does not import TensorFlow.
"""

from __future__ import annotations

from ..data.yogadl import DataRef, Storage, Stream
from . import storage, tensorflow

__all__ = ["DataRef", "Storage", "Stream", "storage", "tensorflow"]
