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
    # a normal base for users; the tests build on a local one (--base-image)
    assert found["FROM"] == ["${BASE_IMAGE}"]
    assert "BASE_IMAGE=python:3.11-slim" in found["ARG"]


def test_the_commit_is_baked_in_and_labelled() -> None:
    """`<app> image build` passes HML_GIT_COMMIT and HML_VERSION: an env var for lineage (no
    .git in the image) and the OCI labels."""
    found = instructions()
    assert "HML_GIT_COMMIT=" in found["ARG"] and "HML_VERSION=" in found["ARG"]
    assert "HML_GIT_COMMIT=${HML_GIT_COMMIT}" in found["ENV"]
    label = (REPO / "Dockerfile").read_text().split("\nLABEL ", 1)[1].split("\n\n", 1)[0]
    assert 'org.opencontainers.image.revision="${HML_GIT_COMMIT}"' in label
    assert 'org.opencontainers.image.version="${HML_VERSION}"' in label


def test_copied_paths_exist_and_local_state_is_ignored() -> None:
    for copy in instructions()["COPY"]:
        *sources, _ = copy.split()
        for source in sources:
            assert (REPO / source).exists(), source
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".hml", ".git"} <= set(ignored)
