"""Tasks over chunks: the three kinds, multiple and loaded inputs, Delayed, failure and resume."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hypermodel import hml
from hypermodel.data.dataset import Dataset
from hypermodel.data.errors import DatasetUsageError
from hypermodel.data.index import DatasetIndex, build_index, index_key, load_index
from hypermodel.data.model import BaseData
from hypermodel.data.tasks import Delayed, OneToMany, OneToOne, Source, TaskFailedError

REPO = {"commitHash": "test"}
N = 300


class Num(BaseData, id="numId"):
    numId: int
    value: int


class Label(BaseData, id="numId"):
    numId: int
    label: str


class Row(BaseData, id="numId"):
    numId: int
    value: int
    label: str
    extra: str
    pid: int


class Digit(BaseData, id=("numId", "digit")):
    numId: int
    digit: str


class Unpicklable:
    """Holds a lock: cannot be pickled, so it must be built inside each worker."""

    def __init__(self, prefix: str) -> None:
        self.lock = threading.Lock()
        self.prefix = prefix


class LoadNums(Source):
    def __init__(self, count: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.count = count

    def source_iterator(self) -> Iterator[int]:
        yield from range(self.count)

    def run(self, i: int) -> Num | None:
        return None if i == 7 else Num(numId=i, value=i * i)


class LoadLabels(Source):
    def source_iterator(self) -> Iterator[Label]:
        yield from (Label(numId=i, label=f"L{i % 5}") for i in range(N) if i != 7)


class LoadAllLabels(Source):
    def source_iterator(self) -> Iterator[Label]:
        yield from (Label(numId=i, label="x") for i in range(N))


class Join(OneToOne):
    """Two inputs joined by id, plus a loaded input turned into a map in init()."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = Delayed(Unpicklable, prefix="x")
        self.extras: dict[int, str] = {}
        self.inits = 0

    def init(self) -> None:
        self.extras = {obj.numId: obj.label for obj in self.loadedData[0]}
        self.inits += 1

    def run(self, num: Num, label: Label) -> Row:
        if os.environ.get("ENG4_FAIL_ON") == str(num.numId):
            raise ValueError(f"bad number {num.numId}")
        assert isinstance(self.helper, Unpicklable) and self.inits == 1
        extra = self.helper.prefix + self.extras[(num.numId + 1) % N if num.numId != 6 else 0]
        return Row(numId=num.numId, value=num.value, label=label.label, extra=extra, pid=0)


class Digits(OneToMany):
    """Any number of outputs with other ids, from two inputs."""

    def run(self, num: Num, label: Label) -> None:
        if os.environ.get("ENG4_FAIL_ON") == str(num.numId):
            raise KeyError(num.numId)
        for d in sorted(set(str(num.value))):
            self.output.append(Digit(numId=num.numId, digit=d + label.label))


class WrongId(OneToOne):
    def run(self, num: Num) -> Num:
        return Num(numId=num.numId + 1000, value=0)


def ds(root: Path, data_type: type, name: str, chunks: int = 16) -> Dataset:
    return Dataset(data_type, root, name=name, repoData=REPO, chunkCount=chunks)


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Dataset, Dataset]:
    root = tmp_path / "bucket"
    nums, labels = ds(root, Num, "nums"), ds(root, Label, "labels")
    out = LoadNums(N, outputDataset=nums, progress=False)()
    assert out["objects"] == N - 1 and out["dataset"] == "default/main/nums"
    LoadLabels(outputDataset=labels)()
    return root, nums, labels


def test_source_writes_and_skips_none(inputs: tuple[Path, Dataset, Dataset]) -> None:
    _, nums, _ = inputs
    got = {n.numId: n.value for n in nums}
    assert len(got) == N - 1 and 7 not in got and got[12] == 144


@pytest.mark.parametrize("workers", [1, 2])
def test_one_to_one_with_two_inputs_and_a_loaded_input(
    inputs: tuple[Path, Dataset, Dataset], workers: int
) -> None:
    root, nums, labels = inputs
    rows = ds(root, Row, "rows")
    out = Join([nums, labels], rows, loadedInputs=[labels], workers=workers)()
    assert out["objects"] == N - 1 and out["resumed"] == 0
    got = {r.numId: r for r in rows}
    assert len(got) == N - 1
    assert got[3].label == "L3" and got[3].value == 9 and got[3].extra == "xL4"
    deps = {d["name"] for d in rows.read_def()["dependencies"]}
    assert deps == {"nums", "labels"}
    assert rows.checksum == out["checksum"]
    assert not any(".hml-task" in key for key in rows.storage.list(rows.directory))


def test_workers_do_not_change_the_checksum(inputs: tuple[Path, Dataset, Dataset]) -> None:
    root, nums, labels = inputs
    sums = []
    for workers in (1, 3):
        rows = ds(root, Row, f"rows{workers}")
        Join([nums, labels], rows, loadedInputs=[labels], workers=workers, creationTime="t")()
        sums.append(rows.read_chk()[f"rows{workers}_a.jsonl.gz"])
    assert sums[0] == sums[1]


@pytest.mark.parametrize("workers", [1, 2])
def test_one_to_many_routes_objects_to_their_chunks(
    inputs: tuple[Path, Dataset, Dataset], workers: int
) -> None:
    root, nums, labels = inputs
    digits = ds(root, Digit, "digits", chunks=256)
    out = Digits([nums, labels], digits, workers=workers)()
    expected = {(i, d + f"L{i % 5}") for i in range(N) if i != 7 for d in set(str(i * i))}
    got = {(d.numId, d.digit) for d in digits}
    assert got == expected and out["objects"] == len(expected)
    # the stream index was written at publish, and is what a full indexing pass finds
    stored = digits.storage.read_text(index_key(digits))
    assert DatasetIndex.from_json(stored).to_json() == build_index(digits).to_json()
    counts = digits.verify()  # every chunk verifies and holds only its own objects
    assert sum(counts.values()) == len(expected)
    for cid in ["00", "7f", "ff"]:
        assert all(digits.chunk_id_of(obj) == cid for obj in digits.read_chunk(cid))


def test_one_to_many_bounded_memory_spills_and_stays_identical(
    inputs: tuple[Path, Dataset, Dataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, nums, labels = inputs
    first = ds(root, Digit, "spill_a")
    Digits([nums, labels], first, workers=1, creationTime="t")()
    import hypermodel.data.jobs as jobs

    monkeypatch.setattr(jobs.Router.__init__, "__defaults__", (64,))
    second = ds(root, Digit, "spill_b")
    Digits([nums, labels], second, workers=2, creationTime="t")()
    members = [sum(len(c.members) for c in load_index(d).chunks) for d in (first, second)]
    assert members[1] > 2 * members[0]  # the small bound spilled many more gzip members
    a, b = first.read_chk(), second.read_chk()
    assert [a[f"spill_a_{c}.jsonl.gz"] for c in first.chunk_ids()] == [
        b[f"spill_b_{c}.jsonl.gz"] for c in second.chunk_ids()
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_job_publishes_nothing_and_the_rerun_resumes_identically(
    inputs: tuple[Path, Dataset, Dataset], monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    root, nums, labels = inputs
    clean = ds(root, Row, "rows")
    expected = Join([nums, labels], clean, loadedInputs=[labels], creationTime="t")()["checksum"]
    clean.delete()
    in_c = [n.numId for n in nums.read_chunk("c")]
    bad = in_c[len(in_c) // 2]  # mid-chunk: the error names this object, not its chunk's first
    monkeypatch.setenv("ENG4_FAIL_ON", str(bad))
    rows = ds(root, Row, "rows")
    task = Join([nums, labels], rows, loadedInputs=[labels], workers=workers, creationTime="t")
    with pytest.raises(TaskFailedError) as info:
        task()
    message = str(info.value)
    assert "chunk c" in message and f"object id ({bad},)" in message and "bad number" in message
    assert not rows.exists()
    monkeypatch.delenv("ENG4_FAIL_ON")
    out = Join([nums, labels], rows, loadedInputs=[labels], workers=workers, creationTime="t")()
    assert out["checksum"] == expected == rows.checksum
    assert out["resumed"] >= (12 if workers == 1 else 1)  # chunks 0..b completed before c failed


def test_one_to_many_failure_and_resume(
    inputs: tuple[Path, Dataset, Dataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, nums, labels = inputs
    clean = ds(root, Digit, "digits")
    expected = Digits([nums, labels], clean, creationTime="t")()["checksum"]
    clean.delete()
    bad = next(n.numId for n in nums.read_chunk("5"))
    monkeypatch.setenv("ENG4_FAIL_ON", str(bad))
    digits = ds(root, Digit, "digits")
    with pytest.raises(TaskFailedError, match=rf"chunk 5, object id \({bad},\): KeyError"):
        Digits([nums, labels], digits, workers=1, creationTime="t")()
    assert not digits.exists()
    monkeypatch.delenv("ENG4_FAIL_ON")
    out = Digits([nums, labels], digits, workers=2, creationTime="t")()
    assert out["resumed"] == 5 and out["checksum"] == expected


def test_kubeflow_entry_points_run_chunks_then_publish(
    inputs: tuple[Path, Dataset, Dataset],
) -> None:
    root, nums, labels = inputs
    rows = ds(root, Row, "rows")
    task = Join([nums, labels], rows, loadedInputs=[labels])
    with pytest.raises(TaskFailedError, match="did not complete"):
        task.execute_step("publish")
    for cid in rows.chunk_ids():
        assert task.execute_step(f"chunk:{cid}")["chunk"] == cid
    out = task.execute_step("publish")
    assert rows.exists() and out["checksum"] == rows.checksum and out["objects"] == N - 1
    # a second run finds the output up to date and returns it
    again = Join([nums, labels], rows, loadedInputs=[labels])()
    assert again["checksum"] == out["checksum"] and again["objects"] is None


def test_declaration_and_output_errors(inputs: tuple[Path, Dataset, Dataset]) -> None:
    root, nums, labels = inputs
    with pytest.raises(DatasetUsageError, match="chunk counts"):
        Join([nums, ds(root, Label, "x", chunks=256)], ds(root, Row, "r"))
    with pytest.raises(DatasetUsageError, match="OneToMany"):
        Join([nums, labels], ds(root, Row, "r", chunks=256))
    with pytest.raises(TaskFailedError, match="another chunk"):
        WrongId([nums], ds(root, Num, "wrong"))()
    with pytest.raises(DatasetUsageError, match="not published"):
        WrongId([ds(root, Num, "missing")], ds(root, Num, "wrong"))()
    extra = ds(root, Label, "extra")
    LoadAllLabels(outputDataset=extra)()
    with pytest.raises(TaskFailedError, match=r"init\(\) failed: IndexError"):
        Join([nums, labels], ds(root, Row, "noload"), workers=2)()  # init() needs loadedData
    seven = extra.chunk_id_of(Label(numId=7, label=""))
    with pytest.raises(TaskFailedError, match=rf"chunk {seven}, object id \(7,\): it is in input"):
        Join([nums, extra], ds(root, Row, "mismatch"), loadedInputs=[labels])()


def test_tasks_are_ops_in_a_pipeline(inputs: tuple[Path, Dataset, Dataset]) -> None:
    root, _, labels = inputs
    app = hml.HmlApp(name="tasks").configure(root=str(root))
    rows, digits = ds(root, Row, "prow"), ds(root, Digit, "pdig")
    squares = ds(root, Num, "pnums")

    @hml.pipeline(app.pipelines)
    def chain() -> None:
        # declared out of order: the runner orders tasks by the datasets they read and write
        Digits([squares, labels], digits, workers=2)()
        Join([squares, labels], rows, loadedInputs=[labels], workers=2)()
        LoadNums(N, outputDataset=squares)()

    result = app.pipelines.run_all("chain", {}, workers=2)
    assert result.ok, result.failed and result.failed.error
    assert result.outputs["join"]["checksum"] == rows.checksum
    assert result.outputs["digits"]["checksum"] == digits.checksum
