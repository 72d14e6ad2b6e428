"""An unreachable bucket (a closed port on loopback) costs milliseconds, not the client's
retries: tracking goes dry at once, an op's finished output is retried with a bounded backoff
and then kept in its workdir, said in one line, never a botocore traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hypermodel.errors import HypermodelError, StorageError
from tests.support import REPO, require_module

require_module("s3fs")  # skipped on a laptop without it, a failure under CI


def _closed_port() -> int:
    """A loopback port nobody listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unresponsive() -> Iterator[int]:
    """A loopback port whose accept queue is full: connections get no answer at all."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    held = []
    for _ in range(4):
        client = socket.socket()
        client.setblocking(False)
        try:
            client.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        held.append(client)
    time.sleep(0.1)
    yield port
    for client in held:
        client.close()
    server.close()


@pytest.fixture
def dead_s3(monkeypatch: pytest.MonkeyPatch) -> str:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("HML_S3_ENDPOINT", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return endpoint


def test_a_tracking_run_against_a_closed_port_goes_dry_at_once(dead_s3: str) -> None:
    from hypermodel.storage import open_storage
    from hypermodel.tracking.run import Run

    t0 = time.monotonic()
    run = Run("r1", storage=open_storage("s3://bucket/p"))
    took = time.monotonic() - t0
    assert run.dry and took < 2.0, took  # was 10.6 s of retries
    run.add_metrics("loss", 1.0)  # a dry run accepts writes and records nothing
    run.close()


def test_the_connect_timeout_is_short_and_configurable(
    unresponsive: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypermodel.storage import open_storage
    from hypermodel.tracking.run import Run

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    storage = open_storage("s3://bucket/p", endpoint_url=f"http://127.0.0.1:{unresponsive}")
    t0 = time.monotonic()
    run = Run("r2", storage=storage, connect_timeout=0.3)
    assert run.dry and time.monotonic() - t0 < 1.5
    monkeypatch.setenv("HML_CONNECT_TIMEOUT", "0.2")
    t0 = time.monotonic()
    assert Run("r3", storage=storage).dry and time.monotonic() - t0 < 1.5


def test_storage_errors_of_the_client_are_one_line(dead_s3: str) -> None:
    from hypermodel.storage import open_storage

    storage = open_storage("s3://bucket/p")
    assert storage.unreachable(1.0) is not None
    with pytest.raises(StorageError) as info:  # was botocore's EndpointConnectionError
        storage.read_bytes("x.json")
    assert isinstance(info.value, HypermodelError) and "\n" not in str(info.value)


def test_an_op_output_the_bucket_refuses_is_kept_and_said_in_one_line(
    dead_s3: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "HML_WORKDIR": str(tmp_path / "work"),
        "HML_STORE_ATTEMPTS": "3",
        "HML_STORE_BACKOFF": "0.2",
    }
    argv = [sys.executable, "-m", "tests.unit.spine.cli_app", "--root", "s3://bucket/p"]
    argv += ["pipelines", "basic", "run", "load", "--rows", "10", "--no-cache"]
    argv += ["--hml-run-id", "run-1"]
    t0 = time.monotonic()
    out = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    assert took < 30, took  # three attempts 0.2 s and 0.4 s apart; was 20 s, then lost
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) <= 6, out.stderr
    kept = tmp_path / "work" / "run-1" / "load" / "hml-output.json"
    assert f"the output is kept at {kept}" in out.stderr, out.stderr
    assert "op 'load' finished, but its output could not be stored in s3://bucket/p" in out.stderr
    line = next(x for x in out.stderr.splitlines() if "kept at" in x)
    assert "3 attempt(s)" in line
    assert json.loads(kept.read_text())["output"] == "data-10"


def test_storing_retries_a_bucket_that_comes_back(tmp_path: Path) -> None:
    from hypermodel.local.store import OutputStore, Retry
    from hypermodel.storage.local import LocalStorage

    class Flaky(LocalStorage):
        fails = 2

        def write_bytes(self, key: str, data: bytes) -> None:
            if self.fails:
                self.fails -= 1
                raise StorageError("connection reset (simulated)")
            super().write_bytes(key, data)

    storage = Flaky(tmp_path / "bucket")
    store = OutputStore(storage, Retry(attempts=4, backoff=0.01))
    store.save("run-1", "p", "t", {"x": 1}, {}, keep_in=tmp_path / "work")
    assert json.loads(storage.read_bytes("runs/run-1/outputs/t.json"))["output"] == {"x": 1}
    assert not (tmp_path / "work").exists()


def test_a_pipeline_run_against_a_dead_bucket_fails_fast_before_any_op(
    dead_s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from . import apps

    monkeypatch.setenv("HML_STORE_ATTEMPTS", "2")
    monkeypatch.setenv("HML_STORE_BACKOFF", "0.1")
    app = apps.make_app("spine-dead").configure(root="s3://bucket/p")
    t0 = time.monotonic()
    with pytest.raises(StorageError, match=r"cannot write the record of run .*\(2 attempt\(s\)"):
        app.pipelines.run_all("basic", workers=0)
    assert time.monotonic() - t0 < 10
