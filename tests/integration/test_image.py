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
import stat
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.conftest import Docker
from tests.integration.demo_support import build_demo_image, commit_of_working_tree, hand_back
from tests.support import REPO, require_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

TAG = "hml-wines:test"


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
    commit = commit_of_working_tree(context)
    records = tmp_path / "records"

    built = build_demo_image(docker, context, TAG, records)
    build = built.process
    docker.timings["image_build"] = built.seconds
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
        hand_back(docker, TAG, bucket)  # root's files, so that pytest can remove them
        print(f"\ncontainer stage timings (s): {docker.timings}")
