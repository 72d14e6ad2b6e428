"""@cacheable: build once, return the stored dataset; 8 processes racing; crashes and failures."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hypermodel.data.cacheable import CacheableTimeoutError, cacheable
from hypermodel.data.dataset import Dataset
from hypermodel.data.model import BaseData
from hypermodel.storage import open_storage

N = 2000


class Item(BaseData, id="itemId"):
    itemId: int
    square: int


def make_items(log: str, delay: float = 0.0, crash_at: int | None = None) -> Iterator[Item]:
    """Yields N items, noting each build in ``log`` (one line per build)."""
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    for i in range(N):
        if i == crash_at:
            os._exit(3)  # a killed builder: no exception handler, no cleanup
        if delay and i % 500 == 0:
            time.sleep(delay)
        yield Item(itemId=i, square=i * i)


def build(root: str, log: str, delay: float = 0.0, crash_at: int | None = None, **opts: Any) -> str:
    @cacheable("items", "1", root=root, **opts)
    def items() -> Iterator[Item]:
        return make_items(log, delay, crash_at)

    ds = items()
    assert sum(1 for _ in ds) == N
    return ds.checksum


def builds(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_builds_once_then_returns_the_stored_dataset(tmp_path: Path) -> None:
    log = tmp_path / "log"
    first = build(str(tmp_path / "b"), str(log))
    second = build(str(tmp_path / "b"), str(log))
    assert first == second and builds(log) == 1
    ready = json.loads((tmp_path / "b/cacheable/items/.claims-1/ready.json").read_text())
    assert ready["checksum"] == first and ready["dataType"].endswith(":Item")


def _race(args: tuple[str, str]) -> str:
    return build(args[0], args[1], delay=0.05)


def test_eight_processes_race_and_exactly_one_builds(tmp_path: Path) -> None:
    root, log = str(tmp_path / "b"), str(tmp_path / "log")
    with multiprocessing.get_context("fork").Pool(8) as pool:
        sums = pool.map(_race, [(root, log)] * 8)
    assert len(set(sums)) == 1
    assert builds(Path(log)) == 1


def test_a_crashed_builder_leaves_nothing_valid_and_is_taken_over(tmp_path: Path) -> None:
    root, log = str(tmp_path / "b"), str(tmp_path / "log")
    proc = multiprocessing.get_context("fork").Process(
        target=build, args=(root, log), kwargs={"crash_at": N // 2}
    )
    proc.start()
    proc.join()
    assert proc.exitcode == 3
    storage = open_storage(root)
    assert storage.exists("cacheable/items/.claims-1/0.json")
    assert not storage.exists("cacheable/items/.claims-1/ready.json")
    assert not Dataset(Item, root, project="cacheable", branch="items", name="1").exists()
    # the owner's pid is dead on this host: the next caller takes over at once
    started = time.monotonic()
    checksum = build(root, log)
    assert time.monotonic() - started < 10
    assert builds(Path(log)) == 2
    assert storage.exists("cacheable/items/.claims-1/1.json")
    assert build(root, log) == checksum and builds(Path(log)) == 2


def test_a_failing_function_raises_and_the_next_call_builds(tmp_path: Path) -> None:
    root = str(tmp_path / "b")

    @cacheable("broken", "1", root=root)
    def broken() -> Iterator[Item]:
        yield Item(itemId=1, square=1)
        raise RuntimeError("source unavailable")

    with pytest.raises(RuntimeError, match="source unavailable"):
        broken()
    assert not Dataset(Item, root, project="cacheable", branch="broken", name="1").exists()

    @cacheable("broken", "1", root=root)
    def fixed() -> Iterator[Item]:
        yield Item(itemId=1, square=1)

    assert [i.itemId for i in fixed()] == [1]


def test_a_silent_claim_from_another_host_goes_stale(tmp_path: Path) -> None:
    root = str(tmp_path / "b")
    storage = open_storage(root)
    claim = {"host": "elsewhere", "pid": 1, "token": "x"}
    storage.put_if_absent("cacheable/items/.claims-1/0.json", json.dumps(claim).encode())
    log = tmp_path / "log"
    started = time.monotonic()
    build(root, str(log), stale_after=0.5, poll=0.05)
    assert 0.5 <= time.monotonic() - started < 10 and builds(log) == 1


def test_waiting_on_a_live_builder_times_out(tmp_path: Path) -> None:
    root = str(tmp_path / "b")
    storage = open_storage(root)
    claim = {"host": "elsewhere", "pid": 1, "token": "x"}
    storage.put_if_absent("cacheable/items/.claims-1/0.json", json.dumps(claim).encode())
    storage.write_text("cacheable/items/.claims-1/0.beat", "1")
    with pytest.raises(CacheableTimeoutError, match="waited"):
        build(root, str(tmp_path / "log"), stale_after=60, wait_timeout=0.3, poll=0.05)
