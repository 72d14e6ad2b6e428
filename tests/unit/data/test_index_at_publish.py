"""Every writer stores the stream index at publish: a dataset's first stream never builds it.

For each way a dataset gets published (a dataset writer, a source task, one-to-one and
one-to-many tasks on one and two workers, ``@cacheable``), the stored index is the one a
verified pass over the chunks builds, and a fresh stream (verdicts forgotten, as in a new
process) runs without building an index: ``build_index`` is made to fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import hypermodel.data.io.index as index_mod
from hypermodel.data.cacheable import cacheable
from hypermodel.data.dataset import Dataset
from hypermodel.data.index import DatasetIndex, build_index, forget_verdicts, index_key
from hypermodel.data.model import BaseData
from hypermodel.data.tasks import OneToMany, OneToOne, Source

N = 500
REPO = {"commitHash": "test"}


class Num(BaseData, id="numId"):
    numId: int
    value: int


class Half(BaseData, id="numId"):
    numId: int
    half: float


class Part(BaseData, id=("numId", "part")):
    numId: int
    part: int


class Nums(Source):
    def source_iterator(self) -> Iterator[int]:
        yield from range(N)

    def run(self, i: int) -> Num:
        return Num(numId=i, value=i * 3)


class Halve(OneToOne):
    def run(self, num: Num) -> Half:
        return Half(numId=num.numId, half=num.value / 2)


class Split(OneToMany):
    def run(self, num: Num) -> None:
        for part in range(num.numId % 3):
            self.output.append(Part(numId=num.numId, part=part))


def dataset(root: Path, data_type: type, name: str, chunks: int = 16) -> Dataset:
    return Dataset(data_type, root, name=name, repoData=REPO, chunkCount=chunks)


def nums(root: Path) -> Dataset:
    out = dataset(root, Num, "nums")
    Nums(outputDataset=out, progress=False)()
    return out


def by_writer(root: Path) -> Dataset:
    out = dataset(root, Num, "written", chunks=256)
    with out.open("w") as writer:
        for i in range(N):
            writer.append(Num(numId=i, value=i))
    return out


def by_one_to_one(workers: int) -> Callable[[Path], Dataset]:
    def make(root: Path) -> Dataset:
        out = dataset(root, Half, f"halves{workers}")
        Halve([nums(root)], out, workers=workers, progress=False)()
        return out

    return make


def by_one_to_many(workers: int) -> Callable[[Path], Dataset]:
    def make(root: Path) -> Dataset:
        out = dataset(root, Part, f"parts{workers}", chunks=256)
        Split([nums(root)], out, workers=workers, progress=False)()
        return out

    return make


def by_cacheable(root: Path) -> Dataset:
    @cacheable("cached", "1", root=str(root))
    def cached() -> Iterator[Num]:
        return (Num(numId=i, value=-i) for i in range(N))

    return cached()


WRITERS = {
    "dataset writer": by_writer,
    "source task": nums,
    "one-to-one, 1 worker": by_one_to_one(1),
    "one-to-one, 2 workers": by_one_to_one(2),
    "one-to-many, 1 worker": by_one_to_many(1),
    "one-to-many, 2 workers": by_one_to_many(2),
    "cacheable": by_cacheable,
}


@pytest.mark.parametrize("how", list(WRITERS))
def test_the_index_is_stored_at_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    ds = WRITERS[how](tmp_path / "root")
    stored = ds.storage.read_text(index_key(ds))
    assert DatasetIndex.from_json(stored).to_json() == build_index(ds).to_json()
    expected = sorted(obj.get_id() for obj in ds.open("r"))

    def no_build(*_: object, **__: object) -> None:
        raise AssertionError("the stream built an index the writer should have stored")

    monkeypatch.setattr(index_mod, "build_index", no_build)
    forget_verdicts()  # as in a fresh process: every chunk is verified on the first touch
    got = [obj.get_id() for obj in ds.stream(shuffle=True, shuffle_seed=3, epochs=1)]
    assert sorted(got) == expected and len(got) > 0
    assert ds.storage.read_text(index_key(ds)) == stored  # read, not rewritten
