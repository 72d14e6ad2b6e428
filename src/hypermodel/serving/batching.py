"""Adaptive batching: concurrent requests share one model call.

A model whose call costs about the same for one row as for thirty (a forest's per-tree
overhead, a network's kernel launches) serves many times more requests when the requests that
arrive while it is busy are answered by one call. ``inference_app.batch(fn)`` wraps ``fn`` (a
function of a list of items that returns one result per item) into a function of one item:

    predict = inference_app.batch(model.predict_proba, max_batch_size=64)

    @inference_app.route("/predict", input=Wine, output=Prediction)
    def handler(wine):
        probabilities = predict(wine.features)      # one row in, its row out
        ...

A worker thread takes what is queued (up to ``max_batch_size`` items), calls ``fn`` once, and
hands each caller its result. It never waits for a batch to fill unless ``max_latency_ms`` is
set: under light load each call is a batch of one with no added latency, under heavy load the
queue fills while the model runs. When a batch call raises, its items are retried one by one,
so one bad input fails only its own request.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from ..errors import DeclarationError
from .reload import current_pin, pinned_to


class Batcher:
    """``fn(list_of_items) -> results`` served as a thread-safe function of one item."""

    def __init__(
        self,
        fn: Callable[[list[Any]], Sequence[Any]],
        *,
        name: str,
        max_batch_size: int = 32,
        max_latency_ms: float = 0.0,
        timeout_s: float = 60.0,
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        if not callable(fn):
            raise DeclarationError(f"batch '{name}': {fn!r} is not callable")
        if not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise DeclarationError(
                f"batch '{name}': max_batch_size must be an int >= 1, got {max_batch_size!r}"
            )
        if max_latency_ms < 0 or timeout_s <= 0:
            raise DeclarationError(
                f"batch '{name}': max_latency_ms must be >= 0 and timeout_s > 0 "
                f"(got {max_latency_ms!r}, {timeout_s!r})"
            )
        self.fn = fn
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency_ms / 1000.0
        self.timeout = timeout_s
        self.on_batch = on_batch
        self.batches = 0
        self.items = 0
        # each item with its future and the model state its request pinned (see reload.py)
        self._queue: queue.SimpleQueue[tuple[Any, Future[Any], Any]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._pid = 0

    def __call__(self, item: Any) -> Any:
        """The result of ``fn([item])[0]``, computed in a batch with concurrent callers."""
        self._ensure_worker()
        future: Future[Any] = Future()
        self._queue.put((item, future, current_pin()))
        try:
            return future.result(timeout=self.timeout)
        except TimeoutError:
            raise TimeoutError(
                f"batch '{self.name}' gave no result within {self.timeout:g} s "
                "(the model call is slower than timeout_s, or it hangs)"
            ) from None

    def _ensure_worker(self) -> None:
        # one worker per process: a server forked after the first call starts its own
        if self._worker is not None and self._pid == os.getpid() and self._worker.is_alive():
            return
        with self._lock:
            if self._worker is None or self._pid != os.getpid() or not self._worker.is_alive():
                if self._pid != os.getpid():
                    self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                self._worker = threading.Thread(
                    target=self._serve, name=f"hml-batch-{self.name}", daemon=True
                )
                self._worker.start()

    def _take(self) -> list[tuple[Any, Future[Any], Any]]:
        batch = [self._queue.get()]
        deadline = time.monotonic() + self.max_latency
        while len(batch) < self.max_batch_size:
            try:
                if self.max_latency:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    batch.append(self._queue.get(timeout=left))
                else:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _serve(self) -> None:
        while True:
            batch = [entry for entry in self._take() if entry[1].set_running_or_notify_cancel()]
            if not batch:
                continue
            self.batches += 1
            self.items += len(batch)
            if self.on_batch is not None:
                try:
                    self.on_batch(self.name, len(batch))
                except Exception:  # metrics never break predictions
                    pass
            # Requests that started on different model versions (a hot reload between them)
            # are answered in separate calls, each under its own request's pin.
            groups: dict[int, list[tuple[Any, Future[Any], Any]]] = {}
            for entry in batch:
                groups.setdefault(id(entry[2]), []).append(entry)
            for group in groups.values():
                with pinned_to(group[0][2]):
                    self._answer(group)

    def _answer(self, batch: list[tuple[Any, Future[Any], Any]]) -> None:
        try:
            results = self._call([item for item, _, _ in batch])
        except BaseException as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for item, future, _ in batch:  # isolate the input that failed
                try:
                    future.set_result(self._call([item])[0])
                except BaseException as single:
                    future.set_exception(single)
            return
        for (_, future, _), result in zip(batch, results, strict=True):
            future.set_result(result)

    def _call(self, items: list[Any]) -> Sequence[Any]:
        results = self.fn(items)
        try:
            count = len(results)
        except TypeError:
            raise TypeError(
                f"batch '{self.name}': {getattr(self.fn, '__name__', self.fn)} must return one "
                f"result per item (a list or an array), got {type(results).__name__}"
            ) from None
        if count != len(items):
            raise ValueError(
                f"batch '{self.name}': {getattr(self.fn, '__name__', self.fn)} returned "
                f"{count} results for {len(items)} items"
            )
        return results

    def describe(self) -> dict[str, Any]:
        return {
            "max_batch_size": self.max_batch_size,
            "max_latency_ms": self.max_latency * 1000.0,
            "batches": self.batches,
            "items": self.items,
        }
