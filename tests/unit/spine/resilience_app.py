"""An app for the scheduler, retry, Ctrl-C and --resume tests; ops coordinate through files in
a folder (``signals``), never through sleeps. ``python -m tests.unit.spine.resilience_app ...``
behaves like an installed console script."""

from __future__ import annotations

import os
import time
from pathlib import Path

from hypermodel import hml


def _wait_for(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.01)
    return False


def _count(path: Path) -> int:
    """How many times this was called before (a line per call in ``path``)."""
    seen = len(path.read_text().splitlines()) if path.exists() else 0
    with path.open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    return seen


@hml.op(cache=True)
def source(rows: int = 1) -> str:
    return f"source-{rows}"


@hml.op()
def signal_b(data: str, signals: str) -> str:
    """Needs only `source`; tells `wait_for_b` it ran."""
    (Path(signals) / "b-ran").touch()
    return f"b saw {data}"


@hml.op()
def wait_for_b(signals: str, timeout: float = 20.0) -> str:
    """Unrelated to `source` and `signal_b`, but finishes only once `signal_b` ran."""
    if not _wait_for(Path(signals) / "b-ran", timeout):
        raise TimeoutError(f"signal_b did not run within {timeout}s while this op was running")
    return "c saw b"


@hml.op(retries=3, backoff="exponential", backoff_s=0.2, max_backoff_s=0.3)
def flaky(counter: str, fail_times: int = 2) -> int:
    seen = _count(Path(counter))
    if seen < fail_times:
        raise RuntimeError(f"flaky failure number {seen + 1}")
    return seen + 1


@hml.op(retries=1, backoff="fixed", backoff_s=1.0)
def needs_chain(signals: str) -> str:
    """Fails at once; its retry, a backoff later, succeeds only if the other chain ran meanwhile."""
    if _count(Path(signals) / "needs-chain-attempts") == 0:
        raise RuntimeError("first attempt fails")
    if not (Path(signals) / "chain-done").exists():
        raise RuntimeError("the retry came before the other chain ran: the backoff blocked it")
    return "retried after the chain"


@hml.op()
def chain_one(signals: str) -> str:
    return signals


@hml.op()
def chain_two(signals: str) -> str:
    (Path(signals) / "chain-done").touch()
    return "chain done"


@hml.op(retries=1, backoff="fixed", backoff_s=0.1)
def always_fails(x: int = 1) -> int:
    raise ValueError(f"boom {x}\nsecond line of the message")


@hml.op()
def hang(name: str, signals: str) -> str:
    """Says it runs (its pid in `<name>.pid`), then runs until it is ended."""
    (Path(signals) / f"{name}.pid").write_text(str(os.getpid()))
    time.sleep(120)
    return name


@hml.op()
def after(value: str) -> str:
    return value


@hml.op()
def step_one(counter: str, depth: int = 2) -> int:
    _count(Path(counter))
    return depth * 10


@hml.op()
def fragile(value: int, marker: str) -> int:
    if not Path(marker).exists():
        raise RuntimeError(f"{marker} is missing")
    return value + 1


@hml.op()
def last(value: int) -> int:
    return value + 1


def make_app(name: str = "resilience") -> hml.HmlApp:
    app = hml.HmlApp(name=name, image_url="registry.example/resilience:1", package_entrypoint=name)

    @hml.pipeline(app.pipelines)
    def unblock(signals: str):
        signal_b(data=source(rows=1), signals=signals)
        wait_for_b(signals=signals)

    @hml.pipeline(app.pipelines)
    def retrying(counter: str, fail_times: int = 2):
        flaky(counter=counter, fail_times=fail_times)

    @hml.pipeline(app.pipelines)
    def backoff_elsewhere(signals: str):
        needs_chain(signals=signals)
        chain_two(signals=chain_one(signals=signals))

    @hml.pipeline(app.pipelines)
    def failing():
        always_fails(x=3)

    @hml.pipeline(app.pipelines)
    def hanging(signals: str):
        after(value=hang(name="a", signals=signals))
        hang(name="b", signals=signals)

    @hml.pipeline(app.pipelines)
    def resumable(counter: str, marker: str, depth: int = 2):
        last(value=fragile(value=step_one(counter=counter, depth=depth), marker=marker))

    return app


app = make_app()

if __name__ == "__main__":
    app.start()
