"""Shared pieces of the seed documents' examples: running a command, installing a generated
app's console script, and the bucket servers of tests/integration (fake-gcs-server, moto)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import (  # noqa: F401  (fixtures)
    gcs_endpoint,
    gcs_url,
    s3_endpoint,
    s3_url,
)

BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _author(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HML_AUTHOR", "alice@example.org")


def sh(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run a command of an example; it must succeed (its output is returned for checks)."""
    out = subprocess.run(
        cmd,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out


def install_console_script(package_dir: Path, target: Path) -> Path:
    """pip writes the package's console scripts (from its own setup.py / pyproject.toml) into
    ``target/bin``, running this interpreter; the package itself is found on PYTHONPATH."""
    sh(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            "-e",
            str(package_dir),
        ],
        cwd=package_dir,
    )
    return target / "bin"
