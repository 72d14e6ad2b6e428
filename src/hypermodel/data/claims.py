"""The former import path of :mod:`hypermodel.data.io.claims`: the very same module object, so
names, constants and patches are shared."""

import sys
from typing import TYPE_CHECKING

from .io import claims as module

if TYPE_CHECKING:
    from .io.claims import *  # noqa: F403

sys.modules[__name__] = module
