"""One conformance suite for every storage backend, run against real servers (local, GCS, S3)."""

from __future__ import annotations

import threading

import pytest

from hypermodel.errors import NotFoundError, UnsafeNameError
from hypermodel.storage import Storage, open_storage


def test_write_read_replace(storage: Storage) -> None:
    storage.write_bytes("a/b/c.bin", b"one")
    assert storage.read_bytes("a/b/c.bin") == b"one"
    storage.write_bytes("a/b/c.bin", b"two")  # replace, not append
    assert storage.read_bytes("a/b/c.bin") == b"two"
    assert storage.read_text("a/b/c.bin") == "two"
    assert storage.size("a/b/c.bin") == 3
    assert storage.exists("a/b/c.bin")


def test_missing_objects_raise_not_found(storage: Storage) -> None:
    assert not storage.exists("nope/x")
    with pytest.raises(NotFoundError, match="nope/x"):
        storage.read_bytes("nope/x")
    with pytest.raises(NotFoundError):
        storage.open_read("nope/x")
    with pytest.raises(NotFoundError):
        storage.size("nope/x")
    storage.delete("nope/x")  # deleting what is absent is fine


def test_list_is_recursive_sorted_and_scoped(storage: Storage) -> None:
    for key in ("p/b/2", "p/a/1", "p/a/0", "q/z", "pp/x"):
        storage.write_bytes(key, b".")
    assert list(storage.list()) == ["p/a/0", "p/a/1", "p/b/2", "pp/x", "q/z"]
    assert list(storage.list("p")) == ["p/a/0", "p/a/1", "p/b/2"]  # not pp/x
    assert list(storage.list("p/a")) == ["p/a/0", "p/a/1"]
    assert list(storage.list("absent")) == []
    storage.delete_prefix("p")
    assert list(storage.list()) == ["pp/x", "q/z"]


def test_open_read_streams(storage: Storage) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    storage.write_bytes("big.bin", payload)
    with storage.open_read("big.bin") as fh:
        head = fh.read(1000)
        rest = fh.read()
    assert head + rest == payload


def test_put_if_absent_creates_once(storage: Storage) -> None:
    assert storage.put_if_absent("lock/x", b"first") is True
    assert storage.put_if_absent("lock/x", b"second") is False
    assert storage.read_bytes("lock/x") == b"first"


def test_put_if_absent_race_has_one_winner(storage_url: str) -> None:
    # separate Storage objects (separate clients/connections), as separate processes would have
    racers = [open_storage(storage_url) for _ in range(6)]
    results: dict[int, bool] = {}
    errors: dict[int, BaseException] = {}
    barrier = threading.Barrier(len(racers))

    def race(i: int) -> None:
        barrier.wait()
        try:
            results[i] = racers[i].put_if_absent("race/winner", f"racer {i}".encode())
        except BaseException as exc:  # reported below: a thread's exception is otherwise lost
            errors[i] = exc

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(racers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == {}
    assert sorted(results) == list(range(len(racers)))  # every racer answered
    winners = [i for i, won in results.items() if won]
    assert len(winners) == 1, results  # exactly one True, all others False
    # what is stored is the winner's write, and every client sees it
    expected = f"racer {winners[0]}".encode()
    assert all(r.read_bytes("race/winner") == expected for r in racers)


@pytest.mark.parametrize("key", ["../x", "/abs", "a/../b", "a//b", "", "a/./b"])
def test_unsafe_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(UnsafeNameError):
        storage.write_bytes(key, b"x")
