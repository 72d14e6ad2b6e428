"""Shared helpers for benchmarks: repeat, take medians, print comparable lines.

Every benchmark prints lines of the form
    <bench>: <what> median <value><unit> (n=<runs>)
    <bench>: ratio <ours> vs <peer> = <x>x (target <t>)
so results from noisy shared machines are read as medians and ratios.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def median_time(fn: Callable[[], object], runs: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def command_env() -> dict[str, str]:
    """The environment of timed commands: bytecode is written and reused, as it is for any
    installed package (pip compiles wheels at install time). Where PYTHONDONTWRITEBYTECODE is
    set, every start would otherwise recompile the editable checkout's modules (tens of ms)
    while the site-packages peers load their .pyc, which says nothing about a user's startup."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def median_command(cmd: Sequence[str], runs: int = 7, warmup: int = 1, **kwargs: object) -> float:
    kwargs.setdefault("env", command_env())

    def once() -> None:
        subprocess.run(
            cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs
        )  # type: ignore[call-overload]

    return median_time(once, runs=runs, warmup=warmup)


def line(bench: str, what: str, value: float, unit: str = "s", runs: int | None = None) -> None:
    n = f" (n={runs})" if runs else ""
    shown = f"{value * 1000:.1f}ms" if unit == "s" and value < 1 else f"{value:.3f}{unit}"
    print(f"{bench}: {what} median {shown}{n}", flush=True)


def ratio(bench: str, ours: str, peer: str, value: float, target: str) -> None:
    print(f"{bench}: ratio {ours} vs {peer} = {value:.2f}x (target {target})", flush=True)
