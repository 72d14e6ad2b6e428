"""The former import path of :mod:`hypermodel.data.io.reader`: the very same module object, so
names, constants and patches are shared."""

import sys
from typing import TYPE_CHECKING

from .io import reader as module

if TYPE_CHECKING:
    from .io.reader import *  # noqa: F403

sys.modules[__name__] = module
