"""Helpers shared by the tests."""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip on a laptop where a real component cannot start; fail under CI (CI=true).

    Works inside a test or fixture and at module level (the whole module is skipped, or,
    under CI, its collection fails).
    """
    if IN_CI:
        pytest.fail(f"required test component unavailable under CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


# What installs each optional module the tests import; `make venv` (and so `make test`)
# installs every one of them (see the Makefile's .installed-dev target).
INSTALLED_BY = {
    "kfp": "the kubeflow extra: pip install -e '.[kubeflow]' (make venv)",
    "kubernetes": "the k8s extra: pip install -e '.[k8s]' (make venv)",
    "yaml": "the k8s extra (PyYAML): pip install -e '.[k8s]' (make venv)",
    "kubernetes_validate": "the dev extra: pip install -e '.[dev]' (make venv)",
    "docker": "the dev extra (the Docker SDK): pip install -e '.[dev]' (make venv)",
    "s3fs": "the s3 extra: pip install -e '.[s3]' (make venv)",
    "flask": "the serve extra: pip install -e '.[serve]' (make venv)",
    "wines": "the demo app: pip install -e ./demo (make venv)",
    "tensorflow": "the tf extra: pip install -e '.[tf]' (make venv)",
    "torch": "make venv: pip install torch==2.13.0",
    "hypergol": "make venv: pip install --no-deps hypergol==0.2.1",
    "isal": "a core dependency on x86_64 and aarch64: pip install -e . (make venv)",
}

# pyproject.toml installs isal only on these machines; elsewhere its absence is expected.
ISAL_MACHINES = ("x86_64", "amd64", "aarch64", "arm64")


def require_module(name: str, installed_by: str | None = None) -> ModuleType:
    """Import ``name``, a module `make test` installs; unavailable() (skip, or fail under CI)
    with what installs it when it cannot be imported."""
    if installed_by is None:
        if name not in INSTALLED_BY:
            raise ValueError(f"say what installs {name!r}: add it to INSTALLED_BY")
        installed_by = INSTALLED_BY[name]
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        error = exc  # reported outside the handler: one message, no chained traceback
    unavailable(f"{name} cannot be imported ({error}); it is installed by {installed_by}")


def require_isal() -> ModuleType:
    """isal where pyproject.toml installs it; a plain skip on machines it does not support."""
    if platform.machine().lower() not in ISAL_MACHINES:
        pytest.skip(f"isal is not a dependency on {platform.machine()} (zlib is used there)")
    return require_module("isal")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"server exited with code {proc.returncode} before listening on {port}"
            )
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def which_or_unavailable(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        unavailable(f"'{binary}' is not installed (run `make test-infra`)")
    return path


REPO = Path(__file__).resolve().parent.parent


def git_repo(work: Path, files: dict[str, str], message: str = "c", branch: str = "main") -> Any:
    """A git work tree at ``work`` with ``files`` committed by a fixed author (GitPython)."""
    import git

    work.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(work, initial_branch=branch)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Ada Lovelace")
        cw.set_value("user", "email", "ada@example.com")
    for name, text in files.items():
        (work / name).write_text(text)
    repo.index.add(list(files))
    repo.index.commit(message)
    return repo
