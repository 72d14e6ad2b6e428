"""Helpers for the tests that run the demo app (`wines`) somewhere else than `run-all` does and
compare: its image built from a git commit of this working tree, and its results in a bucket.

- :func:`commit_of_working_tree` copies the image's build context (tracked and new files, as
  they are now) into a fresh git repository and commits it, so the commit an image records is
  known and the build is never refused as dirty.
- :func:`build_demo_image` runs ``wines image build`` on that context and the offline base image.
- :func:`hand_back` gives files a root container wrote in a host directory back to the host user.
- :func:`stored`, :func:`normalised`, :func:`chunk_checksums`, :func:`reference` read and
  compare what two runs of the demo left in their buckets.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.conftest import Docker
from tests.support import REPO

# what the image is built from: the Dockerfile's COPY sources and the build's own files
CONTEXT_PATHS = (
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "setup.py",
    "README.md",
    "src",
    "demo",
)
GIT = [
    "git",
    "-c",
    "user.name=hypermodel tests",
    "-c",
    "user.email=tests@hypermodel.invalid",
    "-c",
    "commit.gpgsign=false",
]


def commit_of_working_tree(target: Path) -> str:
    """Copy the build's files of this working tree (tracked and new, as they are now) into
    ``target``, commit them there and return the commit."""
    listed = subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "ls-files",
            "-z",
            "-co",
            "--exclude-standard",
            "--",
            *CONTEXT_PATHS,
        ],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        rel = raw.decode()
        source = REPO / rel
        if not source.is_file():  # deleted in the working tree
            continue
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(source.read_bytes())
    subprocess.run([*GIT, "init", "-q", str(target)], check=True)
    subprocess.run([*GIT, "-C", str(target), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(target), "commit", "-q", "-m", "image test"], check=True)
    head = subprocess.run(
        ["git", "-C", str(target), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    return head.stdout.strip()


@dataclass
class Built:
    """What :func:`build_demo_image` ran: the CLI's output, its duration, the image replaced."""

    process: subprocess.CompletedProcess[str]
    seconds: float
    previous: str  # the image id the tag named before the build ("" if none)


def build_demo_image(docker: Docker, context: Path, tag: str, records: Path) -> Built:
    """``wines --root RECORDS image build --tag TAG`` of ``context`` on the offline base image.

    The image the tag named before (the previous run's) is removed once replaced, so that
    repeated runs do not pile up images; the caller checks the build's output."""
    wines = Path(sys.executable).parent / "wines"
    previous = docker("image", "inspect", "--format", "{{.Id}}", tag, check=False).stdout.strip()
    options = ["--tag", tag, "--base-image", docker.base_image, "--context", str(context)]
    started = time.monotonic()
    build = subprocess.run(
        [str(wines), "--root", str(records), "image", "build", *options],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    seconds = round(time.monotonic() - started, 1)
    if build.returncode == 0:
        now = docker("image", "inspect", "--format", "{{.Id}}", tag, check=False).stdout.strip()
        if previous and previous != now:
            docker("rmi", previous, check=False)
    return Built(build, seconds, previous)


def hand_back(docker: Docker, image: str, directory: Path) -> None:
    """Give ``directory`` back to the host user (when it is not root) with a root container of
    ``image``, so that pytest can remove what containers wrote there as another user."""
    if os.getuid() == 0 or not directory.exists():
        return
    docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "0",
        "-v",
        f"{directory}:/hand-back",
        "--entrypoint",
        "chown",
        image,
        "-R",
        f"{os.getuid()}:{os.getgid()}",
        "/hand-back",
        check=False,
    )


# -- the demo's results in a bucket ---------------------------------------------------------------
def stored(root: Path, run_id: str, task: str) -> Any:
    """The output op ``task`` of pipeline run ``run_id`` stored in the bucket at ``root``."""
    return json.loads((root / "runs" / run_id / "outputs" / f"{task}.json").read_text())["output"]


# Values that name a moment or a checksum over one (creation time in a .def, a model version).
VOLATILE = {"checksum", "train_checksum", "test_checksum", "model", "version"}


def normalised(value: Any, run_id: str) -> Any:
    """An op's output with the run id and the values that name a moment taken out."""
    if isinstance(value, dict):
        return {k: normalised(v, run_id) for k, v in value.items() if k not in VOLATILE}
    text = json.dumps(value, sort_keys=True).replace(run_id.replace("-", "_"), "<run>")
    text = re.sub(r"@[0-9]{8}-[0-9]{6}-[0-9]{6}-[0-9a-f]{4}", "@<version>", text)  # new per run
    return json.loads(text.replace(run_id, "<run>"))


def chunk_checksums(root: Path, ref: str) -> dict[str, str]:
    """The chunk checksums of dataset ``ref`` (``name[@version]``), keyed without its name."""
    name, _, version = ref.partition("@")
    branch = f"main@{version}" if version else "main"
    chk = json.loads((root / "wines" / branch / name / f"{name}.chk").read_text())
    return {k.replace(name, "<name>"): v for k, v in chk.items() if not k.endswith(".def")}


def reference(root: Path, version: str) -> dict[str, Any]:
    """The reference.json of the demo's model version ``version``."""
    path = root / "models" / "wine-classifier" / version / "reference.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]
