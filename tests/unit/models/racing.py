"""Promoters racing for the same alias entry, on any storage (shared by the unit tests on the
local bucket and the integration tests on fake-gcs-server and moto S3)."""

from __future__ import annotations

import threading
from typing import Any

from hypermodel.models import AliasConflictError, ModelStore
from hypermodel.storage import Storage


class Lockstep:
    """The storage itself, except that the first ``parties`` create-if-absent writes wait for
    each other: every promoter has read the alias before any of them writes, so they race for
    the same next entry."""

    def __init__(self, storage: Storage, parties: int) -> None:
        self._storage = storage
        self._barrier = threading.Barrier(parties, timeout=60)
        self._waiting = parties
        self._lock = threading.Lock()

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with self._lock:
            wait = self._waiting > 0
            self._waiting -= 1
        if wait:
            self._barrier.wait()
        return self._storage.put_if_absent(key, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


def race(storage: Storage, model: str, alias: str, versions: list[str]) -> dict[str, Any]:
    """Promote each of ``versions`` to ``alias`` from its own thread, all at once; version ->
    the AliasEntry written, or the AliasConflictError raised."""
    lockstep = ModelStore(Lockstep(storage, len(versions)))  # type: ignore[arg-type]
    results: dict[str, Any] = {}

    def promote(version: str) -> None:
        try:
            results[version] = lockstep.set_alias(model, alias, version, reason=f"to {version}")
        except AliasConflictError as exc:
            results[version] = exc

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def check_one_winner(storage: Storage, model: str, alias: str, results: dict[str, Any]) -> str:
    """Exactly one promoter won; every other one got an error naming the alias, the winner
    and the fix; the log holds the winner's entry only. Returns the winning version."""
    winners = [v for v, r in results.items() if not isinstance(r, BaseException)]
    assert len(winners) == 1, results
    winner = winners[0]
    store = ModelStore(storage)
    entry = store.alias_history(model, alias)[-1]
    assert (entry.version, entry.reason) == (winner, f"to {winner}")
    assert store.aliases(model)[alias] == winner
    for version, result in results.items():
        if version == winner:
            continue
        assert isinstance(result, AliasConflictError)
        text = str(result)
        assert f"alias '{alias}' of model '{model}'" in text
        assert f"now at {winner}" in text and f"--expect {winner}" in text
        assert "run the command again" in text and "\n" not in text
    return winner
