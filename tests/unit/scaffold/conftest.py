"""Helpers for the scaffolding tests: invoke `hml new ...` in-process, make a project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from hypermodel.cli.hml_cli import build_hml_cli
from tests.support import REPO


def hml(*args: str, cwd: Path | None = None) -> Result:
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(build_hml_cli(), list(args), catch_exceptions=True)
    with _chdir(cwd):
        return runner.invoke(build_hml_cli(), list(args), catch_exceptions=True)


class _chdir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.old = Path.cwd()

    def __enter__(self) -> None:
        import os

        os.chdir(self.path)

    def __exit__(self, *exc: Any) -> None:
        import os

        os.chdir(self.old)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture
def project(tmp_path: Path) -> Path:
    ok(
        hml(
            "new",
            "project",
            "ShopDemo",
            "--directory",
            str(tmp_path),
            "--hypermodel-spec",
            str(REPO),
        )
    )
    return tmp_path / "shop_demo"
