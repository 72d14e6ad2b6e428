"""``@cacheable(id, version)``: build a dataset once, return the stored one ever after.

::

    @hml.cacheable("wine-features", "3")
    def features():
        for row in load():
            yield Feature(...)

    ds = features()              # a Dataset; ds.stream(shuffle=True, shuffle_seed=0) to train

The function's yielded objects are written as a dataset at
``<root>/cacheable/<id>/<version>/``. The function's arguments are *not* part of the key: bump
``version`` when the data should change.

Many processes may call it at once (8 trainers starting together, on one host or many). Exactly
one builds; the others wait and then read the same data. Coordination uses only the bucket's
create-if-absent write (a hard link on local disk, ``ifGenerationMatch=0`` on GCS,
``If-None-Match: *`` on S3), never a lock server:

- claims are numbered objects ``.claims-<version>/<n>.json``; whoever creates claim ``n``
  builds. The builder refreshes ``<n>.beat`` on a thread while it works.
- a waiter takes over by creating claim ``n + 1`` once claim ``n`` is dead: its owner's pid no
  longer exists on this host, its heartbeat has not changed for ``stale_after`` seconds (measured
  on the waiter's clock, so hosts need no synchronised clocks), or the build failed. Only one
  waiter can create claim ``n + 1``. (The protocol is ``claims.Claims``; dataset publishing
  uses the same one.)
- the dataset is published atomically (its .chk last), then ``ready.json`` names it. A crash at
  any point leaves no ready marker and no .chk: nothing that looks valid.
"""

from __future__ import annotations

import functools
import importlib
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import NotFoundError
from ..names import check_name
from ..storage import Storage, resolve_storage
from .dataset import Dataset, DatasetWriter
from .errors import DatasetError, DatasetUsageError
from .io.claims import Claims, Seen

PROJECT = "cacheable"


class CacheableTimeoutError(DatasetError):
    """Waited longer than ``wait_timeout`` for another process to build a cacheable dataset."""


def cacheable(
    id: str,
    version: str,
    *,
    root: str | None = None,
    storage: Storage | None = None,
    dataType: type | None = None,
    chunkCount: int = 16,
    stale_after: float = 60.0,
    heartbeat: float | None = None,
    wait_timeout: float = 6 * 3600.0,
    poll: float = 0.2,
) -> Callable[[Callable[..., Iterable[Any]]], Callable[..., Dataset]]:
    """Decorate a function that yields BaseData objects; calling it returns the Dataset."""
    check_name(id, "cacheable id")
    check_name(version, "cacheable version")

    def decorate(fn: Callable[..., Iterable[Any]]) -> Callable[..., Dataset]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Dataset:
            cache = CacheBuild(
                id, version, _storage(root, storage), dataType, chunkCount,
                stale_after, heartbeat or max(stale_after / 6, 0.05), wait_timeout, poll,
            )  # fmt: skip
            return cache.get(lambda: fn(*args, **kwargs))

        return wrapper

    return decorate


def _storage(root: str | None, storage: Storage | None) -> Storage:
    if storage is not None:
        return storage
    return resolve_storage(root)


def type_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def load_type(path: str) -> type:
    module, qualname = path.split(":", 1)
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


class CacheBuild:
    def __init__(
        self,
        id: str,
        version: str,
        storage: Storage,
        data_type: type | None,
        chunk_count: int,
        stale_after: float,
        heartbeat: float,
        wait_timeout: float,
        poll: float,
    ) -> None:
        self.id, self.version, self.storage = id, version, storage
        self.data_type = data_type
        self.chunk_count = chunk_count
        self.stale_after, self.heartbeat = stale_after, heartbeat
        self.wait_timeout, self.poll = wait_timeout, poll
        self.meta = f"{PROJECT}/{id}/.claims-{version}"
        self.ready_key = f"{self.meta}/ready.json"
        self.claims = Claims(storage, self.meta, stale_after, heartbeat)
        self.where = f"cacheable '{id}' version '{version}' in {storage.url}"

    def dataset(self, data_type: type) -> Dataset:
        return Dataset(
            data_type,  # type: ignore[arg-type]
            storage=self.storage,
            project=PROJECT,
            branch=self.id,
            name=self.version,
            chunkCount=self.chunk_count,
            repoData={"cacheable": self.id, "version": self.version},
            versioned=False,  # keyed by (id, version) already: one plain dataset each
        )

    # -- the protocol ---------------------------------------------------------------------------
    def get(self, build: Callable[[], Iterable[Any]]) -> Dataset:
        deadline = time.monotonic() + self.wait_timeout
        claims = self.claims
        n = 0
        seen: Seen | None = None
        while True:
            ready = self._ready()
            if ready is not None:
                return ready
            if claims.take(n):
                return self._build(n, build)
            owner = claims.owner(n)
            if owner is None:  # claim vanished (deleted by hand): look again
                continue
            if claims.dead(n, owner, seen):
                n, seen = n + 1, None
                continue
            seen, _moved = claims.watch(n, seen)
            if time.monotonic() > deadline:
                raise CacheableTimeoutError(
                    f"{self.where}: waited {self.wait_timeout:.0f}s for the process "
                    f"{owner.get('pid')} on {owner.get('host')} to build it"
                )
            time.sleep(self.poll)

    def _ready(self) -> Dataset | None:
        record = self._read(self.ready_key)
        if record is None:
            return None
        data_type = self.data_type or load_type(record["dataType"])
        ds = self.dataset(data_type)
        if not ds.exists():
            raise DatasetError(
                f"{self.where}: ready.json names a dataset that is missing; delete "
                f"{self.storage.url}/{PROJECT}/{self.id} to rebuild it"
            )
        return ds

    def _build(self, n: int, build: Callable[[], Iterable[Any]]) -> Dataset:
        halt = self.claims.beating(n)
        try:
            ds = self._write(build)
            record = {"dataType": type_path(ds.dataType), "checksum": ds.checksum}
            self.storage.write_text(self.ready_key, json.dumps(record))
            return ds
        except BaseException:
            self.claims.fail(n)
            raise
        finally:
            halt()

    def _write(self, build: Callable[[], Iterable[Any]]) -> Dataset:
        it = iter(build())
        first = next(it, None)
        data_type = self.data_type or (type(first) if first is not None else None)
        if data_type is None:
            raise DatasetUsageError(
                f"{self.where}: the function yielded nothing; pass dataType= to store an empty dataset"
            )
        ds = self.dataset(data_type)
        if ds.exists():  # a builder published, then died before writing ready.json
            return ds
        with DatasetWriter(ds) as writer:
            if first is not None:
                writer.append(first)
            for obj in it:
                writer.append(obj)
        return ds

    def _read(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.storage.read_text(key))  # type: ignore[no-any-return]
        except NotFoundError:
            return None
