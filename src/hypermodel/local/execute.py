"""Run one op attempt in the current process, inside its context. Used inline and in pool workers."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..context import OpContext, op_context
from ..dsl.op import Op
from .store import to_json_value


@dataclass
class Attempt:
    ok: bool
    output: Any
    error: str  # the user's traceback
    duration: float
    started: float = 0.0  # epoch seconds
    summary: str = ""  # the error in one line: "ValueError: boom"


def one_line(exc: BaseException, width: int = 300) -> str:
    """``ValueError: boom``: the type and the first line of the message, for live reports."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= width else text[: width - 1] + "…"


def execute(op: Op, arguments: dict[str, Any], ctx: OpContext, env: dict[str, str]) -> Attempt:
    """Never raises for op errors: the traceback travels back as text (pickle-safe).

    hypermodel's own code inside the op reads the bucket, the run and the settings from
    ``ctx``; ``env`` holds only the variables the app and the op declared, which the op's code
    and the processes it starts read (set for the attempt, restored after it)."""
    from ..tracking.auto import op_scope

    start, started = time.perf_counter(), time.time()
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    ctx.arguments = dict(arguments)
    try:
        with _environ(env), op_context(ctx), op_scope(ctx):
            value = op.execute(arguments)
            output = to_json_value(value, f"op '{ctx.task}'")
            ctx.output = output
        return Attempt(True, output, "", time.perf_counter() - start, started)
    except Exception as exc:
        duration = time.perf_counter() - start
        return Attempt(False, None, user_traceback(exc), duration, started, one_line(exc))


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_traceback(exc: BaseException) -> str:
    """The traceback of an op's error as the user needs it: without the runner's own frames
    that lead into the op, and, for hypermodel's deliberate errors (which say what to fix),
    without the library frames below the user's last line and without the chained errors."""
    from ..errors import HypermodelError

    tb = traceback.TracebackException.from_exception(exc)
    frames = list(tb.stack)
    ours = [f.filename.startswith(_PACKAGE + os.sep) for f in frames]
    start = next((i for i, mine in enumerate(ours) if not mine), 0)
    end = len(frames)
    if isinstance(exc, HypermodelError):
        while end > start + 1 and ours[end - 1]:
            end -= 1
        # its message already says what its cause said, and how to fix it
        tb.__cause__ = tb.__context__ = None
    tb.stack = traceback.StackSummary.from_list(frames[start:end])
    return "".join(tb.format())


def init_worker() -> None:
    """Pool workers leave Ctrl-C to the parent: a terminal sends SIGINT to the whole process
    group, and the parent cancels the run and ends the workers itself (no tracebacks)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def warm() -> int:
    """Submitted once per pool worker so processes exist before any display thread starts."""
    return os.getpid()
