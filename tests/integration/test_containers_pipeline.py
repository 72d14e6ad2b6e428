"""The demo's COMPILED pipeline in real containers of the demo image, compared with `run-all`.

The image is built with `wines image build` from a git commit of this working tree (so the
commit it bakes in, ``HML_GIT_COMMIT``, is known); `run-all` runs on the host into one bucket
and `wines pipelines wines compile`'s YAML runs, pod by pod, in containers of that image into
another, through Kubeflow's own local executor: ``kfp.local`` with its ``DockerRunner``. Each
container runs as the image's unprivileged user, with no network, a read-only root filesystem,
the platform spec's emptyDirs as tmpfs mounts and the bucket bind-mounted at the same path
(``HML_ROOT``); KFP's pipeline root, where the pods' output parameter files go, is bind-mounted
by kfp.local itself. Then: the same data (dataset chunk checksums), the same model bytes and
distributions, the model naming its own training data, and ONE commit, the image's, in every
dataset, the model and every tracked run on the container side.

What kfp.local needs to run our pods (kfp 2.17, see ``run_with_kfp_local``):

- ``entrypoint=[]``: KFP's ``command`` replaces the image's ENTRYPOINT on Kubernetes, but
  kfp.local hands the command to Docker as CMD, so the image's ENTRYPOINT (``wines``) stays in
  front and every pod fails with ``error: wines: No such command 'wines'.``
- it reports a container that exits quickly as SUCCESS whatever its exit status (it starts the
  container with ``auto_remove=True`` and, when the container is gone before ``wait()``, assumes
  0): that usage error above was logged as "Task 'load' finished with status SUCCESS" and only
  the next task failed, with ``ValueError: Tried to get output 'output' from task 'load', but
  task 'load' not found.``. So this test does not trust its statuses: every op must have written
  its output file and its tracked run must be ``completed``.
- the bucket: ``volumes`` is kfp.local's own (the pipeline root); ``mounts`` passes through.
- the Kubernetes platform spec (emptyDirs) is not applied, and CPU/memory requests are ignored
  with a UserWarning; the image is local, and kfp.local finds it by tag without pulling.
- whole numbers inside a STRUCT output reach the next pod as floats (``"rows": 178.0`` in the
  tracked params of profile and split); the ops' outputs and data are unaffected.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hypermodel.provenance import NO_COMMIT
from tests.integration.conftest import Docker
from tests.integration.demo_support import (
    build_demo_image,
    chunk_checksums,
    commit_of_working_tree,
    hand_back,
    normalised,
    reference,
    stored,
)
from tests.support import require_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

TAG = "hml-wines:pipeline"
OPS = {"load", "profile", "split", "train", "evaluate"}
# what kfp.local says of the settings only a cluster applies (the ops' CPU and memory requests)
IGNORED_LOCALLY = "have no effect in the current local runner"


def empty_dirs(compiled: Path) -> list[str]:
    """Every emptyDir mount path of the compiled pipeline's Kubernetes platform spec."""
    docs = [d for d in yaml.safe_load_all(compiled.read_text()) if d]
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    return sorted({m["mountPath"] for e in executors.values() for m in e.get("emptyDirMounts", [])})


def run_with_kfp_local(
    compiled: Path, bucket: Path, pipeline_root: Path, workspace: Path
) -> list[warnings.WarningMessage]:
    """Run the compiled pipeline with kfp.local's DockerRunner; returns the warnings it gave."""
    import docker as docker_sdk
    from kfp import components, local
    from kfp.local import config

    tmpfs = {path: "" for path in empty_dirs(compiled)}  # a pod's emptyDirs
    assert "/hml-work" in tmpfs  # HML_WORKDIR of every pod
    runner = local.DockerRunner(
        entrypoint=[],  # KFP's command replaces the ENTRYPOINT, as on Kubernetes
        network_mode="none",
        read_only=True,
        tmpfs=tmpfs,
        mounts=[docker_sdk.types.Mount(target=str(bucket), source=str(bucket), type="bind")],
        environment={"HML_ROOT": str(bucket)},
    )
    local.init(runner=runner, pipeline_root=str(pipeline_root), workspace_root=str(workspace))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            components.load_component_from_file(str(compiled))()
    finally:
        config.LocalExecutionConfig.instance = None  # no local execution for later tests
    return caught


def commits(value: Any) -> Iterator[str]:
    """Every value of a ``commit`` or ``commitHash`` key, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("commit", "commitHash"):
                yield str(item)
            yield from commits(item)
    elif isinstance(value, list):
        for item in value:
            yield from commits(item)


def test_compiled_pipeline_in_containers_matches_run_all_with_one_commit(
    docker: Docker, tmp_path: Path
) -> None:
    require_module("wines")
    require_module("kfp")
    require_module("docker")
    bin_dir = Path(sys.executable).parent
    wines, hml = str(bin_dir / "wines"), str(bin_dir / "hml")

    # the image, from a commit of this working tree
    context = tmp_path / "clone"
    commit = commit_of_working_tree(context)
    assert re.fullmatch(r"[0-9a-f]{40}", commit) and commit != NO_COMMIT
    built = build_demo_image(docker, context, TAG, tmp_path / "records")
    assert built.process.returncode == 0, built.process.stderr[-4000:]
    docker.timings["pipeline_image_build"] = built.seconds
    inspect = json.loads(docker("image", "inspect", TAG).stdout)[0]
    assert f"HML_GIT_COMMIT={commit}" in inspect["Config"]["Env"]
    assert inspect["Config"]["Labels"]["org.opencontainers.image.revision"] == commit

    def cli(*args: str, cwd: Path = tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
        ran = subprocess.run(
            list(args),
            cwd=cwd,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert ran.returncode == 0, f"{' '.join(args)}:\n{ran.stdout}\n{ran.stderr}"
        return ran

    # run-all on the host, from the same commit (its work tree is the clone)
    host = tmp_path / "run-all"
    started = time.monotonic()
    cli(wines, "--root", str(host), "pipelines", "wines", "run-all", "--quiet", cwd=context)
    docker.timings["pipeline_run_all_host"] = round(time.monotonic() - started, 1)
    (run_id,) = [p.name for p in (host / "runs").iterdir()]

    # the compiled pipeline, its pods in containers of the image
    shared = tmp_path / "containers"  # every directory the containers write, on the host
    bucket, pipeline_root, workspace = shared / "bucket", shared / "kfp-root", shared / "kfp-ws"
    for directory in (bucket, pipeline_root, workspace):
        directory.mkdir(parents=True)
        directory.chmod(0o777)  # the image's user (uid 10001) writes there
    compiled = tmp_path / "wines.yaml"
    compile_args = ["--root", str(bucket), "pipelines", "wines", "compile", "-o", str(compiled)]
    cli(wines, *compile_args, WINES_IMAGE=TAG)  # the demo's image_url
    spec = next(yaml.safe_load_all(compiled.read_text()))
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {TAG}
    try:
        started = time.monotonic()
        caught = run_with_kfp_local(compiled, bucket, pipeline_root, workspace)
        docker.timings["pipeline_containers"] = round(time.monotonic() - started, 1)
        unexpected = [str(w.message) for w in caught if IGNORED_LOCALLY not in str(w.message)]
        assert not unexpected, unexpected

        # kfp.local's statuses are not trusted (see the module doc): each op left its output
        # parameter file in KFP's pipeline root and its run in the bucket
        (kfp_run,) = [p.name for p in (bucket / "runs").iterdir()]
        outputs = {p.parent.name for p in pipeline_root.glob("*/*/output")}
        assert outputs == OPS, outputs
        shown = json.loads(
            cli(hml, "--root", str(bucket), "runs", "show", kfp_run, "--format", "json").stdout
        )
        assert {r["task"] for r in shown} == OPS
        for run in shown:
            assert run["state"] == "completed", run
            assert run["meta"]["kfp_run_id"] == kfp_run
            assert run["meta"]["git"]["commit"] == commit, run["meta"]

        # the same results as run-all
        host_out = {op: stored(host, run_id, op) for op in OPS}
        pod_out = {op: stored(bucket, kfp_run, op) for op in OPS}
        for op in sorted(OPS):
            got, expected = normalised(pod_out[op], kfp_run), normalised(host_out[op], run_id)
            assert got == expected, f"op {op}: containers gave {got}, run-all gave {expected}"
        host_split, pod_split = host_out["split"], pod_out["split"]
        for host_name, pod_name in [
            (host_out["load"]["name"], pod_out["load"]["name"]),
            (host_split["train"], pod_split["train"]),
            (host_split["test"], pod_split["test"]),
        ]:
            assert chunk_checksums(host, host_name) == chunk_checksums(bucket, pod_name)
        host_ref = reference(host, host_out["train"]["version"])
        pod_ref = reference(bucket, pod_out["train"]["version"])
        for key in ("model_sha256", "distributions_sha256"):
            assert pod_ref[key] == host_ref[key], key
        # the model names the data it was trained on: the containers' own train split
        assert pod_ref["datasets"] == [pod_split["train_checksum"]]
        assert host_ref["datasets"] == [host_split["train_checksum"]]
        assert pod_ref["run_id"] == kfp_run

        # ONE commit on the container side: the image's, in the model ...
        assert pod_ref["commit"] == commit and pod_ref["dirty"] is False
        assert pod_ref["long_name"].endswith("_" + commit[:8])
        # ... in every dataset .def and what each names as its dependencies ...
        defs = sorted(bucket.glob("wines/*/*/*.def"))
        assert len(defs) == 3, defs  # wines, train, test
        for path in defs:
            found = list(commits(json.loads(path.read_text())))
            assert found and set(found) == {commit}, (path, found)
        # ... in every tracked run's record ...
        run_files = sorted(bucket.glob("tracking/runs/*/run.json"))
        assert {p.parent.name.split(".", 1)[1] for p in run_files} == OPS
        for path in run_files:
            assert json.loads(path.read_text())["git"]["commit"] == commit, path
        # ... and nowhere another one (no 000..0, no "unknown") in anything the pods wrote
        everywhere = {
            c
            for path in bucket.rglob("*")
            if path.is_file() and path.suffix in (".json", ".def")
            for c in commits(json.loads(path.read_text()))
        }
        assert everywhere == {commit}, everywhere

        # as a user would see it: the model's training data, its lineage and commits
        lineage = cli(hml, "--root", str(bucket), "datasets", "lineage", pod_ref["datasets"][0])
        lines = lineage.stdout.strip().splitlines()
        assert len(lines) == 2, lineage.stdout  # train <- wines
        assert pod_split["train"] in lines[0] and pod_ref["datasets"][0][:12] in lines[0]
        assert pod_out["load"]["checksum"][:12] in lines[1]  # made from the loaded wines
        assert all(f"commit {commit[:10]} " in line for line in lines), lineage.stdout

        # the host ran the same commit: its lineage names it too
        assert host_ref["commit"] == commit
    finally:
        hand_back(docker, TAG, shared)  # the image's user's files, so that pytest removes them
        print(f"\ncontainer stage timings (s): {docker.timings}")
