"""The Dockerfile and the generated Deployment agree on how the container starts."""

from __future__ import annotations

import json
import re

from tests.support import REPO


def instructions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            keyword, _, rest = line.partition(" ")
            found.setdefault(keyword, []).append(rest)
    return found


def test_entrypoint_is_the_demo_console_script() -> None:
    found = instructions()
    demo = (REPO / "demo" / "pyproject.toml").read_text()
    assert json.loads(found["ENTRYPOINT"][-1]) == ["wines"]
    assert re.search(r'(?m)^wines = "wines\.app:main"$', demo), "the demo's console script moved"
    # The Deployment passes only arguments, so the default command must be the same server.
    assert json.loads(found["CMD"][-1])[:2] == ["inference", "run-prod"]
    assert found["FROM"] == ["python:3.11-slim"]


def test_copied_paths_exist_and_local_state_is_ignored() -> None:
    for copy in instructions()["COPY"]:
        *sources, _ = copy.split()
        for source in sources:
            assert (REPO / source).exists(), source
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".hml", ".git"} <= set(ignored)
