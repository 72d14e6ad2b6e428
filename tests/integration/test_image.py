"""The demo's image under a real Docker engine: `wines image build`, then the image runs an op.

The image is built on the offline base image (Debian bookworm made by mmdebstrap, see
scripts/base-image.sh) from a git commit of this working tree, so the commit it records is
known. Its container runs `pipelines wines run load` with no network, as root, into a bucket
directory mounted from the host; the host then reads the dataset with hypermodel, and a second
container, as the image's unprivileged user on a read-only mount, verifies it: files written
by one user are readable by another (modes follow the umask, 0644 under Docker's 022).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.conftest import Docker
from tests.support import REPO, require_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

TAG = "hml-wines:test"
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


def _commit_of_working_tree(target: Path) -> str:
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


def _pyproject_version() -> str:
    import tomllib

    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def _modes(root: Path) -> tuple[set[str], set[str]]:
    files, dirs = set(), set()
    for path in root.rglob("*"):
        mode = stat.filemode(path.stat().st_mode)
        (dirs if path.is_dir() else files).add(mode)
    return files, dirs


def test_demo_image_builds_and_runs_an_op_into_a_mounted_bucket(
    docker: Docker, tmp_path: Path
) -> None:
    require_module("wines")
    from wines.data import Wine

    from hypermodel import hml
    from hypermodel.images import built_image
    from hypermodel.storage import open_storage

    context = tmp_path / "clone"
    commit = _commit_of_working_tree(context)
    records = tmp_path / "records"
    wines = Path(sys.executable).parent / "wines"

    options = ["--base-image", docker.base_image, "--context", str(context)]
    before = docker("image", "inspect", "--format", "{{.Id}}", TAG, check=False).stdout.strip()
    started = time.monotonic()
    build = subprocess.run(
        [str(wines), "--root", str(records), "image", "build", "--tag", TAG, *options],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    docker.timings["image_build"] = round(time.monotonic() - started, 1)
    assert build.returncode == 0, build.stderr[-4000:]
    assert f"built {TAG} (sha256:" in build.stdout and commit[:12] in build.stdout
    assert "Step 1/" in build.stderr or "#1 " in build.stderr  # the build log streamed to stderr

    # the record in the app's root, read with hypermodel
    record = built_image(hml.HmlApp(name="wines", root=str(records)))
    assert record is not None
    inspect = json.loads(docker("image", "inspect", TAG).stdout)[0]
    assert record["tag"] == TAG
    assert record["image_id"] == inspect["Id"]
    assert record["commit"] == commit
    assert record["hypermodel_version"] == _pyproject_version()
    assert record["base_image"] == docker.base_image
    assert "repo_digest" not in record and "dirty" not in record
    datetime.strptime(record["built"], "%Y-%m-%dT%H:%M:%SZ")
    # the labels and the commit baked into the image's environment
    labels = inspect["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == commit
    assert labels["org.opencontainers.image.version"] == _pyproject_version()
    assert f"HML_GIT_COMMIT={commit}" in inspect["Config"]["Env"]
    assert inspect["Config"]["Entrypoint"] == ["wines"]
    if before and before != inspect["Id"]:  # the previous run's image, now untagged
        docker("rmi", before, check=False)

    # the container runs one op, no network, as root, into the host's bucket directory
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    try:
        started = time.monotonic()
        run = docker(
            "run",
            "--rm",
            "--network",
            "none",
            "--user",
            "0",
            "-v",
            f"{bucket}:/bucket",
            "-e",
            "HML_ROOT=/bucket",
            TAG,
            "pipelines",
            "wines",
            "run",
            "load",
        )
        docker.timings["container_run"] = round(time.monotonic() - started, 1)
        output = json.loads(run.stdout)
        assert output["rows"] == 178

        # the host reads what the container wrote
        dataset = hml.Dataset(
            dataType=Wine, location=str(bucket), project="wines", branch="main", name=output["name"]
        )
        wines_read = list(dataset.open("r"))
        assert len(wines_read) == 178 and {w.cultivar for w in wines_read} == {0, 1, 2}
        assert dataset.checksum == output["checksum"]
        # the run record names the commit baked into the image (no .git inside it)
        storage = open_storage(str(bucket))
        runs = [k for k in storage.list("tracking/runs") if k.endswith(".load/run.json")]
        assert len(runs) == 1
        assert json.loads(storage.read_text(runs[0]))["git"]["commit"] == commit

        # modes follow the container's umask (022): readable by every user
        files, dirs = _modes(bucket)
        assert files == {"-rw-r--r--"}, files
        assert dirs == {"drwxr-xr-x"}, dirs
        # so the image's own unprivileged user reads it all, from a read-only mount
        started = time.monotonic()
        verify = docker(
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            f"{bucket}:/bucket:ro",
            "-e",
            "HML_ROOT=/bucket",
            "--entrypoint",
            "hml",
            TAG,
            "datasets",
            "verify",
            output["checksum"],
        )
        docker.timings["container_verify"] = round(time.monotonic() - started, 1)
        assert verify.stdout.startswith("ok: ") and "178 objects verified" in verify.stdout
    finally:
        if os.getuid() != 0:  # hand root's files back, so that pytest can remove them
            docker(
                "run",
                "--rm",
                "--network",
                "none",
                "--user",
                "0",
                "-v",
                f"{bucket}:/bucket",
                "--entrypoint",
                "chown",
                TAG,
                "-R",
                f"{os.getuid()}:{os.getgid()}",
                "/bucket",
                check=False,
            )
        print(f"\ncontainer stage timings (s): {docker.timings}")
