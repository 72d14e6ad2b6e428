"""The former import path of :mod:`hypermodel.data.io.stream`: the very same module object, so
names, constants and patches are shared."""

import sys
from typing import TYPE_CHECKING

from .io import stream as module

if TYPE_CHECKING:
    from .io.stream import *  # noqa: F403

sys.modules[__name__] = module
