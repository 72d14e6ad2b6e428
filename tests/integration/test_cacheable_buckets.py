"""@cacheable on real bucket servers: 8 processes race, exactly one builds, all read the same data
(and stream it, shuffled and resumed, straight from the bucket).

Coordination relies on the stores' own create-if-absent preconditions (GCS ifGenerationMatch=0,
S3 If-None-Match), exercised here against fake-gcs-server and moto, and on local disk.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

from hypermodel.data.cacheable import cacheable
from hypermodel.data.model import BaseData
from hypermodel.storage import Storage

N = 500


class Cached(BaseData, id="cachedId"):
    cachedId: int
    text: str


def _call(args: tuple[str, str]) -> tuple[str, int, list[int]]:
    url, log = args

    @cacheable("race", "1", root=url, poll=0.05)
    def data() -> Iterator[Cached]:
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        for i in range(N):
            yield Cached(cachedId=i, text=f"t{i}")

    ds = data()
    # the cached dataset streams straight from the bucket (index + ranged member reads)
    order = [
        c.cachedId for c in ds.stream(shuffle=True, shuffle_seed=7, epochs=1, start_offset=100)
    ]
    assert sorted(order) != order and len(set(order)) == N - 100
    return ds.checksum, sum(1 for _ in ds), order


def test_eight_processes_build_once(storage_url: str, storage: Storage, tmp_path: Path) -> None:
    log = tmp_path / "builds"
    # spawn: forked children would share the parent's fsspec event loop and sockets
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        results = pool.map(_call, [(storage_url, str(log))] * 8)
    assert {count for _, count, _ in results} == {N}
    assert len({checksum for checksum, _, _ in results}) == 1
    assert all(order == results[0][2] for _, _, order in results)  # one shuffle, everywhere
    assert len(log.read_text().splitlines()) == 1
    keys = list(storage.list("cacheable/race"))
    assert "cacheable/race/.claims-1/ready.json" in keys
    assert "cacheable/race/.claims-1/1.json" not in keys  # nobody had to take over
