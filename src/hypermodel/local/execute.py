"""Run one op attempt in the current process, inside its context. Used inline and in pool workers."""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass
from typing import Any

from ..context import _CURRENT, OpContext
from ..dsl.op import Op
from .store import to_json_value


@dataclass
class Attempt:
    ok: bool
    output: Any
    error: str
    duration: float


def execute(op: Op, arguments: dict[str, Any], ctx: OpContext, env: dict[str, str]) -> Attempt:
    """Never raises for op errors: the traceback travels back as text (pickle-safe)."""
    from ..tracking.auto import op_scope

    start = time.perf_counter()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    ctx.arguments = dict(arguments)
    token = _CURRENT.set(ctx)
    try:
        with op_scope(ctx):
            value = op.execute(arguments)
            output = to_json_value(value, f"op '{ctx.task}'")
            ctx.output = output
        return Attempt(True, output, "", time.perf_counter() - start)
    except Exception:
        return Attempt(False, None, traceback.format_exc(), time.perf_counter() - start)
    finally:
        _CURRENT.reset(token)
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def warm() -> int:
    """Submitted once per pool worker so processes exist before any display thread starts."""
    return os.getpid()
