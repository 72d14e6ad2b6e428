"""YogaDL's ``yogadl.tensorflow``: ``make_tf_dataset(stream)`` (imports TensorFlow when called)."""

from __future__ import annotations

from ..data.yogadl import make_tf_dataset

__all__ = ["make_tf_dataset"]
