"""A small app for the runner-integration tests (ops are pickled by reference, so they live here)."""

from __future__ import annotations

from hypermodel import hml

app = hml.HmlApp(name="trackdemo")


@hml.op()
def make(n: int = 3) -> list:
    run = hml.current_run()
    for step in range(n):
        run.add_metrics("make/value", step * 2.0, step)
    return list(range(n))


@hml.op()
def total(values: list, scale: float = 1.0) -> dict:
    hml.current_run().add_config(hml.Config(scale=scale, nested=hml.Config(depth=2)))
    return {"total": sum(values) * scale, "count": len(values)}


@hml.op()
def boom(values: list) -> int:
    raise ValueError(f"boom on {len(values)} values")


@hml.pipeline(app.pipelines)
def ok_pipe(scale: float = 2.0):
    values = make(n=4)
    total(values=values, scale=scale)


@hml.pipeline(app.pipelines)
def bad_pipe():
    boom(values=make(n=2))


@hml.op(retries=1)
def flaky_once(marker: str) -> str:
    """Fails on the first attempt, succeeds on the retry."""
    import os

    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    return "ok"


@hml.pipeline(app.pipelines)
def retry_pipe(marker: str):
    flaky_once(marker=marker)


@hml.op()
def noop(i: int) -> int:
    return i + 1


@hml.pipeline(app.pipelines)
def chain():
    prev = noop(i=0)
    for _ in range(19):
        prev = noop(i=prev)


@hml.op()
def reads_and_writes() -> str:
    """Stands in for an op that reads one dataset and publishes another (as hypermodel.data does)."""
    ctx = hml.context()
    ctx.input_datasets.append("a" * 40)
    ctx.output_datasets.append("b" * 40)
    return "done"


@hml.pipeline(app.pipelines)
def data_pipe():
    reads_and_writes()


def _chunk_job(i: int) -> int:
    run = hml.current_run()  # the op's run, inherited by the forked chunk worker
    for step in range(50):
        run.add_metrics(f"chunk/{i}", float(step), step)
    return i


@hml.op()
def fan_out(n: int = 4) -> int:
    """Chunk jobs in other processes write metrics to the op's run."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    hml.current_run().add_metrics("parent", 1.0, 0)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        return sum(pool.map(_chunk_job, range(n)))


@hml.pipeline(app.pipelines)
def fan_pipe():
    fan_out()
