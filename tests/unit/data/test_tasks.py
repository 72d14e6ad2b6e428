"""Tasks over chunks: the three kinds, multiple and loaded inputs, Delayed, failure and resume."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hypermodel.data.task_base as task_base
import hypermodel.data.tasks as tasks_mod
from hypermodel import hml
from hypermodel.data.dataset import Dataset
from hypermodel.data.errors import DatasetUsageError
from hypermodel.data.index import DatasetIndex, build_index, index_key, load_index
from hypermodel.data.jobs import Progress
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
        self.pid = os.getpid()  # where it was built


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


class LabelledDigits(OneToMany):
    """One-to-many with a loaded input (a label map made in init()) and a Delayed member."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = Delayed(Unpicklable, prefix="d")
        self.labels: dict[int, str] = {}
        self.inits = 0

    def init(self) -> None:
        self.labels = {obj.numId: obj.label for obj in self.loadedData[0]}
        self.inits += 1

    def run(self, num: Num) -> None:
        # built in this worker process, before its one init()
        assert isinstance(self.helper, Unpicklable) and self.helper.pid == os.getpid()
        assert self.inits == 1
        for d in sorted(set(str(num.value))):
            self.output.append(
                Digit(numId=num.numId, digit=self.helper.prefix + d + self.labels[num.numId])
            )


class LabelSource(Source):
    """A source over a loaded input (read in init()) with a Delayed member."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = Delayed(Unpicklable, prefix="s")
        self.by_id: dict[int, str] = {}
        self.inits = 0

    def init(self) -> None:
        self.by_id = {obj.numId: obj.label for obj in self.loadedData[0]}
        self.inits += 1

    def source_iterator(self) -> Iterator[int]:
        assert self.inits == 1 and isinstance(self.helper, Unpicklable)
        yield from sorted(self.by_id)

    def run(self, i: int) -> Label:
        return Label(numId=i, label=self.helper.prefix + self.by_id[i])


def meet(directory: Path, parties: int, timeout: float = 30.0) -> None:
    """Sign in (a file named by this pid) and wait until ``parties`` processes have."""
    directory.mkdir(exist_ok=True)
    (directory / str(os.getpid())).touch()
    deadline = time.monotonic() + timeout
    while len(list(directory.iterdir())) < parties and time.monotonic() < deadline:
        time.sleep(0.01)


class Stamped(OneToOne):
    """Stamps each output with the pid of the process that ran its job. The first job of each
    process waits until ``parties`` processes have started one, so that one fast worker
    cannot take every chunk while the other is still starting."""

    def __init__(self, rendezvous: Path, parties: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rendezvous = str(rendezvous)
        self.parties = parties
        self.arrived = False

    def run(self, num: Num) -> Row:
        if not self.arrived:  # per worker: each has its own prepared copy of the task
            self.arrived = True
            meet(Path(self.rendezvous), self.parties)
        return Row(numId=num.numId, value=num.value, label="", extra="", pid=os.getpid())


class ByLabel(BaseData, id="numId"):
    """Placed by its label, not by its id."""

    numId: int
    label: str

    def get_hash_id(self) -> tuple[str]:
        return (self.label,)


class ToByLabel(OneToMany):
    def run(self, label: Label) -> None:
        self.output.append(ByLabel(numId=label.numId, label=label.label))


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


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_run_jobs_in_that_many_processes(
    inputs: tuple[Path, Dataset, Dataset], tmp_path: Path, workers: int
) -> None:
    root, nums, _ = inputs
    rows = ds(root, Row, "stamped")
    rendezvous = tmp_path / "rendezvous"
    out = Stamped(rendezvous, workers, [nums], rows, workers=workers)()
    assert out["objects"] == N - 1
    pids = {r.pid for r in rows}
    assert len(pids) == workers
    assert pids == {int(p.name) for p in rendezvous.iterdir()}
    if workers == 1:
        assert pids == {os.getpid()}  # one worker: the jobs run in this process
    else:
        assert os.getpid() not in pids  # the pool's processes, not this one
    for cid in rows.chunk_ids():  # one job per chunk, each in one process
        assert len({r.pid for r in rows.read_chunk(cid)}) == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_one_to_many_with_a_loaded_input_and_a_delayed_member(
    inputs: tuple[Path, Dataset, Dataset], workers: int
) -> None:
    root, nums, labels = inputs
    digits = ds(root, Digit, "labelled", chunks=256)
    task = LabelledDigits([nums], digits, loadedInputs=[labels], workers=workers)
    out = task()
    expected = {(i, f"d{d}L{i % 5}") for i in range(N) if i != 7 for d in set(str(i * i))}
    assert {(d.numId, d.digit) for d in digits} == expected
    assert out["objects"] == len(expected)
    assert {d["name"] for d in digits.read_def()["dependencies"]} == {"nums", "labels"}
    assert isinstance(task.helper, Delayed) and task.inits == 0  # built in the workers only


def test_source_with_a_loaded_input_and_a_delayed_member(
    inputs: tuple[Path, Dataset, Dataset],
) -> None:
    root, _, labels = inputs
    relabelled = ds(root, Label, "relabelled")
    task = LabelSource(outputDataset=relabelled, loadedInputs=[labels])
    out = task()
    assert {obj.numId: obj.label for obj in relabelled} == {
        i: f"sL{i % 5}" for i in range(N) if i != 7
    }
    assert out["objects"] == N - 1
    # the loaded input is in the lineage, as any input is
    assert [d["name"] for d in relabelled.read_def()["dependencies"]] == ["labels"]
    assert isinstance(task.helper, Delayed) and task.inits == 0


def test_an_overridden_get_hash_id_routes_one_to_many_outputs(
    inputs: tuple[Path, Dataset, Dataset],
) -> None:
    root, _, labels = inputs
    by_label = ds(root, ByLabel, "by_label")
    ToByLabel([labels], by_label, workers=2)()
    placed = {cid: {o.label for o in by_label.read_chunk(cid)} for cid in by_label.chunk_ids()}
    for cid, found in placed.items():
        for label in found:  # 16 chunks: the first hex digit of SHA1(label)
            assert cid == hashlib.sha1(label.encode()).hexdigest()[0]
    assert sorted(x for found in placed.values() for x in found) == [f"L{k}" for k in range(5)]
    assert sum(len(list(by_label.read_chunk(c))) for c in placed) == N - 1


# -- progress ----------------------------------------------------------------------------------
BARS: list[RecordedProgress] = []
PEEKS: list[tuple[int, ...]] = []


class RecordedProgress(Progress):
    """The tasks' progress, with every advance() kept and the live one reachable from run()."""

    def __init__(self, label: str, total: int, enabled: bool | None = None) -> None:
        super().__init__(label, total, False)
        self.label = label
        self.calls: list[tuple[int, int]] = []
        BARS.append(self)

    def advance(self, objects: int, chunks: int = 1) -> None:
        super().advance(objects, chunks)
        self.calls.append((objects, chunks))


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordedProgress]]:
    BARS.clear()
    PEEKS.clear()
    monkeypatch.setattr(tasks_mod, "Progress", RecordedProgress)  # Source
    monkeypatch.setattr(task_base, "Progress", RecordedProgress)  # chunk tasks
    yield BARS
    BARS.clear()
    PEEKS.clear()


class Counting(Source):
    """Looks at the live progress while it yields its (2 * batch)-th item."""

    def __init__(self, count: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.count = count

    def source_iterator(self) -> Iterator[int]:
        for i in range(self.count):
            if i == 2 * tasks_mod._SOURCE_PROGRESS_EVERY:
                bar = BARS[-1]
                PEEKS.append((bar.objects, bar.chunks, int(bar.rate)))
            yield i

    def run(self, i: int) -> Num:
        return Num(numId=i, value=i)


class Peeking(OneToOne):
    """Notes the progress (chunks done, objects) as each object is processed."""

    def run(self, num: Num) -> Num:
        PEEKS.append((BARS[-1].chunks, BARS[-1].objects))
        return num


def test_source_progress_is_reported_while_it_runs(
    tmp_path: Path, bars: list[RecordedProgress]
) -> None:
    every = tasks_mod._SOURCE_PROGRESS_EVERY
    total = 3 * every + 5
    out = Counting(total, outputDataset=ds(tmp_path, Num, "counted"))()
    assert out["objects"] == total
    (bar,) = bars
    # mid-run: the objects appended so far (to the last batch), at some rate; no chunk done
    ((objects, chunks, rate),) = PEEKS
    assert every <= objects <= 2 * every and chunks == 0 and rate > 0
    # at the end: every object, and the 16 chunks once published
    assert bar.objects == total and bar.chunks == bar.total == 16
    assert len(bar.calls) >= 4 and bar.calls[-1][1] == 16
    assert all(c == 0 for _, c in bar.calls[:-1])


def test_chunk_task_progress_counts_each_chunk_as_it_completes(
    inputs: tuple[Path, Dataset, Dataset], bars: list[RecordedProgress]
) -> None:
    root, nums, _ = inputs
    counts = [len(list(nums.read_chunk(cid))) for cid in nums.chunk_ids()]
    Peeking([nums], ds(root, Num, "peeked"), workers=1)()
    (bar,) = bars
    assert bar.calls == [(n, 1) for n in counts]  # one advance per chunk, with its objects
    # every job saw the chunks before it already counted: live, not at the end
    assert {chunks for chunks, _ in PEEKS} == set(range(16))
    for chunks, objects in PEEKS:
        assert objects == sum(counts[:chunks])
    assert bar.objects == N - 1 and bar.rate > 0


def test_progress_with_two_workers_counts_chunks_as_they_come_back(
    inputs: tuple[Path, Dataset, Dataset], bars: list[RecordedProgress]
) -> None:
    root, nums, labels = inputs
    counts = [len(list(nums.read_chunk(cid))) for cid in nums.chunk_ids()]
    Join([nums, labels], ds(root, Row, "rows"), loadedInputs=[labels], workers=2)()
    (bar,) = bars
    assert sorted(bar.calls) == sorted((n, 1) for n in counts)
    assert bar.chunks == 16 and bar.objects == N - 1


def test_the_progress_bar_goes_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    LoadNums(3000, outputDataset=ds(tmp_path, Num, "shown"), progress=True)()
    out, err = capsys.readouterr()
    assert out == ""  # stdout stays the op's (an op's output may be piped)
    assert "load_nums source" in err and "16/16 chunks" in err
    assert "2,999 objects" in err and "objects/s" in err
