"""Every op execution is a run: the runner wraps each execution in ``op_scope``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..context import OpContext


@contextlib.contextmanager
def op_scope(ctx: OpContext) -> Iterator[None]:
    yield
