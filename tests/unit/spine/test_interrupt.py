"""Ctrl-C during `run-all`, for real: a subprocess of a small app, interrupted while two ops
run in pool workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.store import RunStore
from tests.support import REPO


def _pids(signals: Path, names: tuple[str, ...], proc: subprocess.Popen[str]) -> list[int]:
    """The pids the running ops wrote (their 'I am running' event), once all are there."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"run-all ended before its ops ran: {proc.communicate()}")
        try:
            return [int((signals / f"{n}.pid").read_text()) for n in names]
        except (FileNotFoundError, ValueError):
            time.sleep(0.02)
    pytest.fail("the ops did not start within 60s")


def _start(root: Path, argv: list[str]) -> subprocess.Popen[str]:
    """The app's run-all in a session of its own (so a test can signal its process group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.unit.spine.resilience_app", "--root", str(root), *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("target", ["the run-all process", "its process group (a terminal)"])
def test_ctrl_c_during_run_all_cancels_the_run(tmp_path: Path, target: str) -> None:
    root, signals = tmp_path / "bucket", tmp_path / "signals"
    signals.mkdir()
    argv = ["pipelines", "hanging", "run-all", "-q", "--workers", "2", "--signals", str(signals)]
    proc = _start(root, argv)
    try:
        pids = _pids(signals, ("a", "b"), proc)
        if target == "the run-all process":
            proc.send_signal(signal.SIGINT)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    (run_id,) = os.listdir(root / "runs")
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines() == [
        "interrupted: cancelled 2 running ops (hang, hang-2) and 1 not yet started; "
        f"run {run_id} recorded as cancelled"
    ]
    assert all(_gone(pid) for pid in pids), f"worker processes still alive: {pids}"

    record = orjson.loads((root / "runs" / run_id / "run.json").read_bytes())
    assert record["status"] == "cancelled" and record["finished"]
    tasks = {t["name"]: t for t in record["tasks"]}
    assert {n: t["status"] for n, t in tasks.items()} == {
        "hang": "cancelled",
        "hang-2": "cancelled",
        "after": "cancelled",
    }
    assert [h["status"] for h in tasks["hang"]["attempt_history"]] == ["cancelled"]
    assert tasks["after"]["attempt_history"] == []
    # the ops' tracked runs say so too (their workers were ended before they could)
    tracked = RunStore(LocalStorage(str(root))).load(f"{run_id}.hang")
    assert tracked.state == "stopped" and "interrupted" in str(tracked.error)


def test_ctrl_c_with_workers_0_cancels_the_op_running_in_this_process(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hypermodel.cli.hml_cli import build_hml_cli

    root, signals = tmp_path / "bucket", tmp_path / "signals"
    signals.mkdir()
    argv = ["pipelines", "hanging", "run-all", "-q", "--workers", "0", "--signals", str(signals)]
    proc = _start(root, argv)
    try:
        (pid,) = _pids(signals, ("a",), proc)
        assert pid == proc.pid  # the op runs in the run-all process itself
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    (run_id,) = os.listdir(root / "runs")
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert stderr.splitlines() == [
        f"interrupted: cancelled 1 running op (hang) and 2 not yet started; "
        f"run {run_id} recorded as cancelled"
    ]
    record = orjson.loads((root / "runs" / run_id / "run.json").read_bytes())
    assert record["status"] == "cancelled"
    assert {t["status"] for t in record["tasks"]} == {"cancelled"}
    shown = CliRunner().invoke(
        build_hml_cli(), ["--root", str(root), "runs", "show", f"{run_id}.hang"]
    )
    assert "  1  stopped" in shown.output
    assert "cancelled: the run was interrupted" in shown.output
