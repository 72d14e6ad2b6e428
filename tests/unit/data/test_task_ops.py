"""Tasks are ops: the runner's retries apply to them, and a retry resumes the finished chunks;
inside a run their outputs are versions, reused when code and inputs are equal."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypermodel import hml
from hypermodel.data.tasks import OneToOne

from .test_tasks import Label, LoadLabels, LoadNums, N, Num, Row, ds


class FlakyCopy(OneToOne):
    """Fails once on one object (while ``flag`` exists), then works."""

    def __init__(self, flag: Path, bad: int, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.flag = str(flag)
        self.bad = bad

    def run(self, num: Num, label: Label) -> Row:
        flag = Path(self.flag)
        if num.numId == self.bad and flag.exists():
            flag.unlink()
            raise ValueError(f"flaky on {num.numId}")
        return Row(numId=num.numId, value=num.value, label=label.label, extra="", pid=0)


def app_with(root: Path, flag: Path, bad: int, **task_options: object) -> hml.HmlApp:
    app = hml.HmlApp(name="taskops").configure(root=str(root))
    nums, labels, rows = ds(root, Num, "nums"), ds(root, Label, "labels"), ds(root, Row, "rows")

    @hml.pipeline(app.pipelines)
    def flaky() -> None:
        LoadNums(N, outputDataset=nums, progress=False)()
        LoadLabels(outputDataset=labels, progress=False)()
        FlakyCopy(flag, bad, [nums, labels], rows, workers=1, progress=False, **task_options)()

    return app


def test_a_task_retries_like_any_op_and_resumes_its_finished_chunks(tmp_path: Path) -> None:
    root, flag = tmp_path / "bucket", tmp_path / "fail-once"
    flag.touch()
    # an id in the last chunk: fifteen chunks finish before the failure
    bad = next(
        i
        for i in range(N)
        if i != 7 and ds(root, Num, "x").chunk_id_of(Num(numId=i, value=0)) == "f"
    )
    app = app_with(root, flag, bad, retries=1, backoff="none")
    result = app.pipelines.run_all("flaky", {}, workers=0)
    assert result.ok, result.failed and result.failed.error
    copy = result.tasks["flaky_copy"]
    assert copy.attempts == 2 and not flag.exists()
    assert result.outputs["flaky_copy"]["resumed"] == 15  # the second attempt ran chunk f only
    assert result.outputs["flaky_copy"]["objects"] == N - 1


def test_without_retries_the_task_fails_and_nothing_is_published(tmp_path: Path) -> None:
    root, flag = tmp_path / "bucket", tmp_path / "fail-once"
    flag.touch()
    app = app_with(root, flag, bad=3)
    result = app.pipelines.run_all("flaky", {}, workers=0)
    assert not result.ok and result.tasks["flaky_copy"].attempts == 1
    assert "flaky on 3" in result.tasks["flaky_copy"].error
    assert not ds(root, Row, "rows").exists()
    # run again: the same version is planned, its finished chunks resumed
    again = app.pipelines.run_all("flaky", {}, workers=0)
    assert again.ok and again.outputs["flaky_copy"]["resumed"] >= 1


def test_task_options_are_op_options(tmp_path: Path) -> None:
    task = FlakyCopy(tmp_path, 0, [ds(tmp_path, Num, "a"), ds(tmp_path, Label, "b")],
                     ds(tmp_path, Row, "c"), retries=3, backoff="fixed", backoff_s=2)  # fmt: skip
    assert (task.retries, task.backoff, task.backoff_s) == (3, "fixed", 2)
    with pytest.raises(TypeError):
        FlakyCopy(tmp_path, 0, [ds(tmp_path, Num, "a")], ds(tmp_path, Row, "c"), no_such=1)
