"""Re-runs you can trust: the scheduler starts an op the moment its inputs exist, retries wait
their backoff without holding up other ops, every attempt is recorded, and --resume re-runs
only what did not succeed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from hypermodel import hml
from hypermodel.errors import DeclarationError, UsageError
from tests.support import REPO

from . import resilience_app


@pytest.fixture
def app(hml_root: Path) -> hml.HmlApp:
    return resilience_app.make_app().configure(root=str(hml_root))


def signals(tmp_path: Path, name: str) -> str:
    folder = tmp_path / name
    folder.mkdir()
    return str(folder)


def run_record(app: hml.HmlApp, run_id: str) -> dict[str, Any]:
    return orjson.loads(app.storage().read_bytes(f"runs/{run_id}/run.json"))  # type: ignore[no-any-return]


def cli(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.unit.spine.resilience_app", "--root", str(root), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


class Recorder:
    """A reporter that keeps every call, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def run_started(self, run_id: str, pipeline: Any, results: Any) -> None:
        pass

    def task_changed(self, result: Any) -> None:
        self.events.append(("changed", result.name, result.status, result.attempts))

    def attempt_failed(self, result: Any, attempt: int, error: str, retry_in: float | None) -> None:
        self.events.append(("failed", result.name, attempt, error, retry_in))

    def run_finished(self, result: Any) -> None:
        pass


# -- the scheduler -------------------------------------------------------------------------------


def test_a_cached_op_makes_its_dependents_ready_while_an_unrelated_op_runs(
    app: hml.HmlApp, tmp_path: Path
) -> None:
    """`wait_for_b` finishes only after `signal_b` ran, and `signal_b` needs only the cached
    `source`: a scheduler that waits for a running op before starting `signal_b` never gets
    there (wait_for_b gives up after its timeout and the run fails)."""
    first = app.pipelines.run_all("unblock", {"signals": signals(tmp_path, "one")}, workers=2)
    assert first.ok, first.failed and first.failed.error
    second = app.pipelines.run_all("unblock", {"signals": signals(tmp_path, "two")}, workers=2)
    assert second.tasks["source"].status == "cached"
    assert second.ok, second.failed and second.failed.error
    assert second.outputs == {
        "source": "source-1",
        "signal_b": "b saw source-1",
        "wait_for_b": "c saw b",
    }


# -- retries and backoff -------------------------------------------------------------------------


def test_backoff_delays() -> None:
    exp = hml.op(retries=9, backoff_s=1, max_backoff_s=60)(resilience_app.last.fn)
    assert [exp.backoff_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    fixed = hml.op(retries=3, backoff="fixed", backoff_s=2.5)(resilience_app.last.fn)
    assert [fixed.backoff_delay(n) for n in (1, 2, 3)] == [2.5, 2.5, 2.5]
    none = hml.op(retries=3, backoff="none", backoff_s=5)(resilience_app.last.fn)
    assert none.backoff_delay(1) == 0
    default = hml.op(retries=2)(resilience_app.last.fn)  # a mature default: 1s, doubling, 60s cap
    assert (default.backoff, default.backoff_delay(1), default.max_backoff_s) == (
        "exponential",
        1.0,
        60.0,
    )


@pytest.mark.parametrize(
    ("options", "needles"),
    [
        ({"backoff": "linear"}, ("op 'last'", "'linear'", "'exponential', 'fixed', 'none'")),
        ({"backoff_s": -1}, ("op 'last'", "backoff_s must be a number of seconds >= 0", "-1")),
        ({"max_backoff_s": "60s"}, ("op 'last'", "max_backoff_s", "'60s'")),
        ({"backoff_s": True}, ("op 'last'", "backoff_s")),
        ({"backoff_s": 10, "max_backoff_s": 5}, ("op 'last'", "raise max_backoff_s")),
    ],
)
def test_a_bad_backoff_is_a_declaration_error_naming_the_op_and_the_fix(
    options: dict[str, Any], needles: tuple[str, ...]
) -> None:
    with pytest.raises(DeclarationError) as info:
        hml.op(retries=2, **options)(resilience_app.last.fn)
    for needle in needles:
        assert needle in str(info.value)


def test_retries_wait_their_backoff_and_each_failure_is_reported_as_it_happens(
    app: hml.HmlApp, tmp_path: Path
) -> None:
    recorder = Recorder()
    params = {"counter": str(tmp_path / "count"), "fail_times": 2}
    result = app.pipelines.run_all("retrying", params, workers=2, reporter=recorder)
    task = result.tasks["flaky"]
    assert (task.status, task.attempts, task.output) == ("succeeded", 3, 3)
    failures = [e for e in recorder.events if e[0] == "failed"]
    assert failures == [
        ("failed", "flaky", 1, "RuntimeError: flaky failure number 1", 0.2),
        ("failed", "flaky", 2, "RuntimeError: flaky failure number 2", 0.3),  # 0.4, capped
    ]
    # each failure is told before the next attempt starts, not at the end
    second_start = recorder.events.index(("changed", "flaky", "running", 2))
    assert recorder.events.index(failures[0]) < second_start
    history = run_record(app, result.run_id)["tasks"][0]["attempt_history"]
    assert history == task.history
    assert [(h["attempt"], h["status"], h.get("error")) for h in history] == [
        (1, "failed", "RuntimeError: flaky failure number 1"),
        (2, "failed", "RuntimeError: flaky failure number 2"),
        (3, "succeeded", None),
    ]
    for before, after, delay in zip(history, history[1:], (0.2, 0.3), strict=False):
        assert after["started"] - (before["started"] + before["duration"]) >= delay - 0.01
        assert before["duration"] >= 0


def test_a_backoff_does_not_hold_up_other_ops(app: hml.HmlApp, tmp_path: Path) -> None:
    """`needs_chain` fails, waits 1s, and its retry succeeds only if the independent chain
    `chain_one` -> `chain_two` ran during that wait."""
    result = app.pipelines.run_all(
        "backoff_elsewhere", {"signals": signals(tmp_path, "s")}, workers=2
    )
    assert result.ok, result.failed and result.failed.error
    retried = result.tasks["needs_chain"].history
    assert [h["status"] for h in retried] == ["failed", "succeeded"]
    assert result.tasks["chain_two"].history[0]["started"] < retried[1]["started"]


def test_workers_0_retries_with_backoff_in_this_process(app: hml.HmlApp, tmp_path: Path) -> None:
    params = {"counter": str(tmp_path / "count"), "fail_times": 1}
    result = app.pipelines.run_all("retrying", params, workers=0)
    history = result.tasks["flaky"].history
    assert [h["status"] for h in history] == ["failed", "succeeded"]
    assert history[1]["started"] - (history[0]["started"] + history[0]["duration"]) >= 0.19


def test_a_single_op_run_honours_the_backoff_and_reports_each_attempt(
    app: hml.HmlApp, tmp_path: Path
) -> None:
    recorder = Recorder()
    result = app.pipelines.run_op(
        "retrying", "flaky", {"counter": str(tmp_path / "c"), "fail_times": 3}, reporter=recorder
    )
    assert (result.status, result.attempts) == ("succeeded", 4)
    assert [e[2:] for e in recorder.events if e[0] == "failed"] == [
        (1, "RuntimeError: flaky failure number 1", 0.2),
        (2, "RuntimeError: flaky failure number 2", 0.3),
        (3, "RuntimeError: flaky failure number 3", 0.3),
    ]
    history = result.history
    assert [h["status"] for h in history] == ["failed"] * 3 + ["succeeded"]
    assert history[1]["started"] - (history[0]["started"] + history[0]["duration"]) >= 0.19


def test_the_cli_prints_each_failed_attempt_as_it_happens(tmp_path: Path) -> None:
    first = "always_fails attempt 1/2 failed: ValueError: boom 3 (retrying in 0.1s)"
    last = "always_fails attempt 2/2 failed: ValueError: boom 3 (no attempts left)"
    for quiet in ((), ("-q",)):
        out = cli("pipelines", "failing", "run-all", *quiet, root=tmp_path)
        assert out.returncode == 1, out.stderr
        lines = out.stderr.splitlines()
        assert first in lines and last in lines, out.stderr
        assert (
            lines.index(first)
            < lines.index(last)
            < lines.index("Traceback (most recent call last):")
        )
    single = cli("pipelines", "failing", "run", "always_fails", "--x", "3", root=tmp_path)
    assert single.returncode == 1
    lines = single.stderr.splitlines()
    assert lines[:2] == [first, last], single.stderr
    assert "error: op 'always_fails' failed after 2 attempt(s)" in lines


def test_runs_show_lists_the_attempts_of_an_op(app: hml.HmlApp, tmp_path: Path) -> None:
    from hypermodel.cli.hml_cli import build_hml_cli

    params = {"counter": str(tmp_path / "count"), "fail_times": 2}
    result = app.pipelines.run_all("retrying", params, workers=2)
    out = CliRunner().invoke(
        build_hml_cli(),
        ["--root", app.settings.root, "runs", "show", f"{result.run_id}.flaky"],
        catch_exceptions=False,
    )
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    rows = lines[lines.index("attempts:") + 1 :][:3]
    assert [row.split()[:2] for row in rows] == [
        ["1", "failed"],
        ["2", "failed"],
        ["3", "completed"],
    ]
    assert rows[0].endswith("RuntimeError: flaky failure number 1")
    assert rows[1].endswith("RuntimeError: flaky failure number 2")
    assert all(row.split()[2].endswith("s") for row in rows)  # each attempt's duration


# -- --resume ------------------------------------------------------------------------------------


def test_resume_reruns_only_what_did_not_succeed(app: hml.HmlApp, tmp_path: Path) -> None:
    counter, marker = tmp_path / "count", tmp_path / "marker"
    params = {"counter": str(counter), "marker": str(marker), "depth": 4}
    failed = app.pipelines.run_all("resumable", params, workers=2)
    statuses = {n: t.status for n, t in failed.tasks.items()}
    assert statuses == {"step_one": "succeeded", "fragile": "failed", "last": "skipped"}
    marker.touch()  # the cause of the failure is fixed

    resumed = app.pipelines.run_all("resumable", {}, workers=2, resume=failed.run_id)
    assert resumed.ok and resumed.run_id != failed.run_id
    assert resumed.resumed_from == failed.run_id
    assert resumed.params == {"counter": str(counter), "marker": str(marker), "depth": 4}
    step = resumed.tasks["step_one"]
    assert (step.status, step.output, step.resumed_from) == ("resumed", 40, failed.run_id)
    assert len(counter.read_text().splitlines()) == 1  # not run again
    assert resumed.outputs == {"step_one": 40, "fragile": 41, "last": 42}
    assert [resumed.tasks[n].status for n in ("fragile", "last")] == ["succeeded", "succeeded"]
    record = run_record(app, resumed.run_id)
    assert record["resumed_from"] == failed.run_id and record["status"] == "succeeded"
    assert {t["name"]: t["status"] for t in record["tasks"]}["step_one"] == "resumed"
    stored = orjson.loads(app.storage().read_bytes(f"runs/{resumed.run_id}/outputs/step_one.json"))
    assert stored["output"] == 40 and stored["resumed_from"] == failed.run_id

    # resuming a run that succeeded takes everything from it
    again = app.pipelines.run_all("resumable", {}, workers=0, resume=resumed.run_id)
    assert {t.status for t in again.tasks.values()} == {"resumed"}
    assert len(counter.read_text().splitlines()) == 1


def test_resume_of_a_killed_run_takes_the_outputs_it_stored(
    app: hml.HmlApp, tmp_path: Path
) -> None:
    counter, marker = tmp_path / "count", tmp_path / "marker"
    params = {"counter": str(counter), "marker": str(marker)}
    failed = app.pipelines.run_all("resumable", params, workers=0)
    record = run_record(app, failed.run_id)  # as a run killed with -9 leaves it
    record["status"], record["finished"] = "running", None
    for task in record["tasks"]:
        task["status"] = "pending"
    app.storage().write_bytes(f"runs/{failed.run_id}/run.json", orjson.dumps(record))
    marker.touch()
    resumed = app.pipelines.run_all("resumable", {}, workers=0, resume=failed.run_id)
    assert [t.status for t in resumed.tasks.values()] == ["resumed", "succeeded", "succeeded"]
    assert len(counter.read_text().splitlines()) == 1


def test_resume_keeps_the_parameters_of_the_run_it_resumes(app: hml.HmlApp, tmp_path: Path) -> None:
    params = {"counter": str(tmp_path / "c"), "marker": str(tmp_path / "m"), "depth": 4}
    failed = app.pipelines.run_all("resumable", params, workers=0)
    with pytest.raises(UsageError, match=r"ran with --depth 4, not 5: --resume keeps"):
        app.pipelines.run_all("resumable", {"depth": 5}, workers=0, resume=failed.run_id)
    same = app.pipelines.run_all("resumable", {"depth": 4}, workers=0, resume=failed.run_id)
    assert same.tasks["step_one"].status == "resumed"
    with pytest.raises(UsageError, match=r"is a run of pipeline 'resumable', not 'failing'"):
        app.pipelines.run_all("failing", {}, resume=failed.run_id)


def test_resume_of_an_unknown_run_is_one_line_exit_2(tmp_path: Path) -> None:
    out = cli("pipelines", "resumable", "run-all", "--resume", "no-such-run", root=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "no run 'no-such-run' to resume" in lines[0] and "hml runs list" in lines[0]
    assert f"{tmp_path}/runs/" in lines[0]
    bad = cli("pipelines", "resumable", "run-all", "--resume", "../etc", root=tmp_path)
    assert bad.returncode == 2 and "no run '../etc' to resume" in bad.stderr


def test_resume_from_the_cli(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    args = ("--counter", str(tmp_path / "c"), "--marker", str(marker))
    first = cli("pipelines", "resumable", "run-all", "-q", *args, root=tmp_path)
    assert first.returncode == 1
    run_id = first.stderr.strip().splitlines()[-1].split("(run ")[1].rstrip(")")
    marker.touch()
    out = cli("pipelines", "resumable", "run-all", "-q", "--resume", run_id, root=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"resumed from run {run_id}: the ops done there kept their outputs" in out.stdout
    assert "│ step_one │ resumed   │" in out.stdout
    assert "last: 22" in out.stdout
