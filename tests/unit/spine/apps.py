"""Small apps used by the spine tests. Ops live at module level so process pools can import them."""

from __future__ import annotations

import os
import time
from pathlib import Path

from hypermodel import hml


def _mark(name: str) -> None:
    """Record start/end times of an op in $SPINE_MARKS (to observe parallelism)."""
    marks = os.environ.get("SPINE_MARKS")
    if marks:
        with open(Path(marks) / f"{name}-{os.getpid()}-{time.monotonic_ns()}", "w") as fh:
            fh.write(f"{time.monotonic()}")


@hml.op()
def load(rows: int = 100) -> str:
    return f"data-{rows}"


@hml.op(cache=True)
def train(dataset: str, depth: int = 3) -> dict:
    ctx = hml.context()
    return {"dataset": dataset, "depth": depth, "attempt": ctx.attempt, "task": ctx.task}


@hml.op()
def combine(a: dict, b: dict, weight: float = 0.5) -> float:
    return weight * a["depth"] + (1 - weight) * b["depth"]


@hml.op()
def slow(seconds: float = 0.5, label: str = "x") -> float:
    start = time.monotonic()
    time.sleep(seconds)
    return start


@hml.op(retries=2, backoff="none")  # tests stay fast; test_resilience covers backoff
def flaky(counter: str, fail_times: int = 2) -> int:
    """Fails `fail_times` times (counted in a file), then succeeds."""
    path = Path(counter)
    seen = int(path.read_text()) if path.exists() else 0
    path.write_text(str(seen + 1))
    if seen < fail_times:
        raise RuntimeError(f"flaky failure number {seen + 1}")
    return seen + 1


@hml.op(retries=1, backoff="none")
def broken(x: int = 1) -> int:
    raise ValueError("broken on purpose")


@hml.op()
def after_broken(value: int) -> int:
    return value + 1


@hml.op()
def not_json() -> dict:
    return {"when": object()}  # type: ignore[dict-item]


@hml.op()
def show_context() -> dict:
    ctx = hml.context()
    return {
        "run_id": ctx.run_id,
        "pipeline": ctx.pipeline,
        "task": ctx.task,
        "op": ctx.op,
        "attempt": ctx.attempt,
        "workdir": str(ctx.workdir),
        "env": os.environ.get("SPINE_ENV", ""),
    }


@hml.op()
def tally(items: list, weights: dict | None = None) -> dict:
    """Takes JSON-typed arguments: on the command line, `--items '[1,2]' --weights '{"a":1}'`."""
    return {"n": len(items), "weights": weights or {}}


@hml.op()
def kfp_ids() -> dict:
    ctx = hml.context()
    return {"kfp_run_id": ctx.kfp_run_id, "kfp_task_id": ctx.kfp_task_id, "run_id": ctx.run_id}


@hml.op(cpu="2", memory="4Gi")
def heavy() -> int:
    return 1


def make_app(name: str = "spine") -> hml.HmlApp:
    app = hml.HmlApp(name=name, image_url="registry.example/spine:1", package_entrypoint=name)

    @hml.pipeline(app.pipelines, cron="0 0 2 * * *", experiment="tests")
    def basic(depth: int = 3):
        data = load(rows=500)
        t1 = train(dataset=data, depth=depth)
        t2 = train(dataset=data, depth=7)
        combine(a=t1, b=t2)

    @hml.pipeline(app.pipelines)
    def parallel(seconds: float = 0.6):
        slow(seconds=seconds, label="a")
        slow(seconds=seconds, label="b")

    @hml.pipeline(app.pipelines)
    def failing():
        first = load(rows=1)
        b = broken(x=1)
        after_broken(value=b)
        heavy().after(first)

    return app
