"""inference_app.batch: concurrent calls share one model call, each caller gets its own result."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from hypermodel import hml
from hypermodel.errors import DeclarationError
from hypermodel.serving.batching import Batcher


class Gate:
    """fn for a Batcher: doubles each item, records batch sizes, and holds its first call
    until released, so that the calls made meanwhile queue up."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: list[Any]) -> list[Any]:
        self.sizes.append(len(items))
        if len(self.sizes) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if any(i < 0 for i in items):
            raise ValueError(f"negative input in {items}")
        return [i * 2 for i in items]


def _call_all(batcher: Batcher, gate: Gate, items: list[int]) -> dict[int, Any]:
    """The first item alone (it holds the model), the rest queued behind it, then released."""
    results: dict[int, Any] = {}

    def call(i: int) -> None:
        try:
            results[i] = batcher(i)
        except Exception as exc:
            results[i] = exc

    first = threading.Thread(target=call, args=(items[0],))
    first.start()
    assert gate.entered.wait(10)
    others = [threading.Thread(target=call, args=(i,)) for i in items[1:]]
    for t in others:
        t.start()
    deadline = time.monotonic() + 10
    while batcher._queue.qsize() < len(others) and time.monotonic() < deadline:
        time.sleep(0.005)
    gate.release.set()
    for t in [first, *others]:
        t.join(10)
    return results


def test_calls_that_arrive_while_the_model_runs_share_one_call() -> None:
    gate = Gate()
    batcher = Batcher(gate, name="double")
    results = _call_all(batcher, gate, list(range(10)))
    assert results == {i: i * 2 for i in range(10)}
    assert gate.sizes == [1, 9]
    assert batcher.describe() == {
        "max_batch_size": 32,
        "max_latency_ms": 0.0,
        "batches": 2,
        "items": 10,
    }


def test_a_batch_never_exceeds_max_batch_size() -> None:
    gate = Gate()
    batcher = Batcher(gate, name="double", max_batch_size=4)
    results = _call_all(batcher, gate, list(range(10)))
    assert results == {i: i * 2 for i in range(10)}
    assert gate.sizes[0] == 1 and sum(gate.sizes) == 10 and max(gate.sizes) == 4
    assert gate.sizes[1:] == [4, 4, 1]


def test_a_bad_input_fails_only_its_own_call() -> None:
    gate = Gate()
    batcher = Batcher(gate, name="double")
    results = _call_all(batcher, gate, [1, 2, -3, 4])
    assert results[1] == 2 and results[2] == 4 and results[4] == 8
    assert isinstance(results[-3], ValueError) and "negative input in [-3]" in str(results[-3])
    # the batch of three failed, then each of its items was called alone
    assert gate.sizes == [1, 3, 1, 1, 1]


def test_without_concurrency_each_call_is_a_batch_of_one() -> None:
    sizes: list[int] = []

    def square(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return [i * i for i in items]

    batcher = Batcher(square, name="square")
    assert [batcher(i) for i in range(5)] == [0, 1, 4, 9, 16]
    assert sizes == [1] * 5


def test_max_latency_waits_for_more_items() -> None:
    sizes: list[int] = []

    def ident(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return items

    batcher = Batcher(ident, name="ident", max_latency_ms=300)
    threads = [threading.Thread(target=batcher, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sum(sizes) == 4 and len(sizes) < 4  # the first waited for the others


def test_a_function_returning_the_wrong_number_of_results_is_named() -> None:
    def half(items: list[int]) -> list[int]:
        return items[:1]

    def scalar(items: list[int]) -> int:
        return 0

    assert Batcher(half, name="half")(1) == 1  # one item, one result: fine
    with pytest.raises(TypeError, match=r"batch 'scalar': scalar must return one result per item"):
        Batcher(scalar, name="scalar")(1)  # type: ignore[arg-type]


def test_a_call_that_hangs_times_out_with_the_batch_named() -> None:
    never = threading.Event()

    def hang(items: list[int]) -> list[int]:
        never.wait(5)
        return items

    with pytest.raises(TimeoutError, match=r"batch 'hang' gave no result within 0.2 s"):
        Batcher(hang, name="hang", timeout_s=0.2)(1)
    never.set()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size must be an int >= 1, got 0"),
        ({"max_latency_ms": -1}, "max_latency_ms must be >= 0 and timeout_s > 0"),
        ({"timeout_s": 0}, "max_latency_ms must be >= 0 and timeout_s > 0"),
    ],
)
def test_bad_settings_are_declaration_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(DeclarationError, match=message):
        Batcher(lambda items: items, name="b", **options)


def test_two_batches_of_one_name_are_refused_and_the_server_reports_batches(
    app: hml.HmlApp,
) -> None:
    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        app.register_model("m", object())
        double = inference_app.batch(lambda items: [i * 2 for i in items], name="double")
        with pytest.raises(DeclarationError, match="already has a batch named 'double'"):
            inference_app.batch(lambda items: items, name="double")

        @inference_app.route("/double")
        def route(body: Any) -> Any:
            return {"value": double(body["value"])}

    client = app.inference.build().test_client()
    for value in (1, 2, 3):
        response = client.post("/double", json={"value": value})
        assert response.status_code == 200 and response.get_json() == {"value": value * 2}
    assert client.get("/").get_json()["batches"] == {
        "double": {"max_batch_size": 32, "max_latency_ms": 0.0, "batches": 3, "items": 3}
    }
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'hml_batch_size_count{batch="double"} 3.0' in metrics
    assert 'hml_batch_size_sum{batch="double"} 3.0' in metrics
