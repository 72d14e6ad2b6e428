"""Numbered create-if-absent claims: who may do a one-time job, with takeover from the dead.

Used by ``cacheable`` (who builds) and by dataset publishing (who may touch a dataset's final
file names). Only the storage's create-if-absent write decides (a hard link on local disk,
``ifGenerationMatch=0`` on GCS, ``If-None-Match: *`` on S3): no lock server, no clocks compared
across hosts.

Under ``prefix``:

- ``<n>.json``: claim ``n`` (host, pid, token); whoever creates it holds it.
- ``<n>.beat``: a counter the holder rewrites every ``heartbeat`` seconds while it works.
- ``<n>.failed``: written by a holder that raised; the claim is dead.

A claim is dead when it failed, when its pid no longer exists on this host, or when its
heartbeat has not changed for ``stale_after`` seconds of the *observer's* clock. Whoever then
creates claim ``n + 1`` holds the job; only one can. A claim is never deleted while a later one
may exist (that would let a newcomer take ``n`` beside the holder of ``n + 1``); the whole
prefix is removed once the job is done for good.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ...errors import NotFoundError
from ...storage import Storage

# (heartbeat text last seen, when it last changed on the observer's monotonic clock)
Seen = tuple[str, float]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Claims:
    """The claims of one job under ``prefix`` in ``storage``."""

    def __init__(self, storage: Storage, prefix: str, stale_after: float, heartbeat: float) -> None:
        self.storage = storage
        self.prefix = prefix
        self.stale_after = stale_after
        self.heartbeat = heartbeat

    def key(self, n: int) -> str:
        return f"{self.prefix}/{n}.json"

    def take(self, n: int) -> bool:
        """Create claim ``n``; True if this call holds it now."""
        record = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex}
        return self.storage.put_if_absent(self.key(n), json.dumps(record).encode())

    def owner(self, n: int) -> dict[str, Any] | None:
        """Claim ``n``'s record; None when it is gone (the prefix was cleared)."""
        try:
            return json.loads(self.storage.read_text(self.key(n)))  # type: ignore[no-any-return]
        except NotFoundError:
            return None
        except ValueError:  # torn by hand: a claim nobody can prove alive
            return {}

    def dead(self, n: int, owner: dict[str, Any], seen: Seen | None) -> bool:
        if self.storage.exists(f"{self.prefix}/{n}.failed"):
            return True
        if owner.get("host") == socket.gethostname() and not pid_alive(int(owner.get("pid", 0))):
            return True
        if seen is None:
            return False
        return seen[0] == self.beat_text(n) and time.monotonic() - seen[1] > self.stale_after

    def watch(self, n: int, seen: Seen | None) -> tuple[Seen, bool]:
        """The heartbeat observation updated; True when it moved since ``seen`` (alive)."""
        beat = self.beat_text(n)
        if seen is None:
            return (beat, time.monotonic()), False
        if seen[0] != beat:
            return (beat, time.monotonic()), True
        return seen, False

    def beat_text(self, n: int) -> str:
        try:
            return self.storage.read_text(f"{self.prefix}/{n}.beat")
        except NotFoundError:
            return ""

    def superseded(self, n: int) -> bool:
        """True when someone took claim ``n + 1``: they judged ``n`` dead and hold the job."""
        return self.storage.exists(self.key(n + 1))

    def fail(self, n: int) -> None:
        self.storage.write_text(f"{self.prefix}/{n}.failed", "1")

    def clear(self) -> None:
        """Remove every claim (the job is done for good)."""
        self.storage.delete_prefix(self.prefix)
        local = self.storage.local_path(self.prefix)
        if local:
            try:
                os.rmdir(local)  # only when empty: a newcomer's claim stays
            except OSError:
                pass

    def beating(self, n: int) -> Callable[[], None]:
        """Start refreshing ``<n>.beat`` on a thread; returns the function that stops it."""
        stop = threading.Event()
        thread = threading.Thread(target=self._beat, args=(n, stop), daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join()

        return halt

    def _beat(self, n: int, stop: threading.Event) -> None:
        count = 0
        while True:
            count += 1
            try:
                self.storage.write_text(f"{self.prefix}/{n}.beat", str(count))
            except Exception:  # a missed beat only risks a takeover; the job goes on
                pass
            if stop.wait(self.heartbeat):
                return
