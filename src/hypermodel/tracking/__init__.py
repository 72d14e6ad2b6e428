"""Run tracking without a server: runs live in the app's bucket.

The tracking client's names, for porting a script by changing its imports only::

    from hypermodel.tracking.run import Run      # was: from pyhectiqlab.run import Run
    from hypermodel.tracking import Config       # was: from pyhectiqlab import Config

``Run``, ``Config``, ``current_run`` and ``ReadOnlyRunError`` resolve on first use, so
importing this package stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config
    from .run import ReadOnlyRunError, Run, current_run

_NAMES = {
    "Config": "hypermodel.tracking.config",
    "Run": "hypermodel.tracking.run",
    "ReadOnlyRunError": "hypermodel.tracking.run",
    "current_run": "hypermodel.tracking.run",
}


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'hypermodel.tracking' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["Config", "ReadOnlyRunError", "Run", "current_run"]
