"""YogaDL's GCSStorage / S3Storage on real bucket servers (fake-gcs-server, moto): submit,
fetch, stream (shuffled, sharded, resumed) and cacheable, built from YogaDL's configurations."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypermodel.data.model import BaseData
from hypermodel.yogadl.storage import (
    GCSConfigurations,
    GCSStorage,
    S3Configurations,
    S3Storage,
    Storage,
)

N = 300


class Row(BaseData, id="rowId"):
    rowId: int
    text: str


def _storage(request: pytest.FixtureRequest, backend: str) -> Storage:
    url = str(request.getfixturevalue(f"{backend}_url"))  # gs://bucket/hml, s3://bucket/hml
    bucket, _, path = url.split("://", 1)[1].partition("/")
    if backend == "gcs":
        # url= is YogaDL's coordinator address: accepted, unused (the bucket coordinates)
        return GCSStorage(GCSConfigurations(bucket, path, url="wss://unused"))
    return S3Storage(S3Configurations(bucket, path, url="wss://unused"))


@pytest.mark.parametrize("backend", ["gcs", "s3"])
def test_submit_fetch_stream_and_cacheable(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    storage = _storage(request, backend)
    assert storage.url.startswith(("gs://", "s3://")) and storage.url.endswith("/hml")
    storage.submit((Row(rowId=i, text=f"r{i}") for i in range(N)), "rows", "1")
    ref = storage.fetch("rows", "1")
    assert [r.rowId for r in ref.stream()] == list(range(N))
    options = {"shuffle": True, "shuffle_seed": 3, "shard_rank": 1, "num_shards": 2}
    full = ref.stream(**options)
    order = [r.rowId for _ in range(2) for r in full.iterator_fn()]
    resumed = ref.stream(start_offset=100, **options)
    assert [r.rowId for r in resumed.iterator_fn()] == order[100:150]
    calls = []

    @storage.cacheable("rows", "2")
    def make() -> list[Row]:
        calls.append(1)
        return [Row(rowId=i, text="") for i in range(10)]

    assert len(make()) == len(make()) == 10 and calls == [1]
    assert storage.versions("rows") == ["1", "2"]
