"""A task compiles to a Kubeflow fan-out over shards of its chunks plus a publish step; each
pod's command runs its shard (``--step shard:<k>/<n>``) through the app's own CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hypermodel import hml
from hypermodel.data.dataset import Dataset
from hypermodel.data.tasks import OneToOne
from tests.support import REPO as REPO_ROOT
from tests.support import require_module
from tests.unit.kubeflow.replay import load, replay

from .chunky_app import CREATED, make_app
from .test_tasks import Label, N, Num, Row

require_module("kfp")

# The replayed pods run the app's console script: chunky_app, imported from the repository
# root (the image has the app installed; here it is a test module).
ENTRYPOINT = [sys.executable, "-m", "tests.unit.data.chunky_app"]
KFP_RUN = "kfp-run-chunky"
SOURCES = {"load-nums", "load-labels"}
TYPES = {"nums": Num, "labels": Label, "rows": Row}


def fan_out(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The root task that is a ParallelFor, by name."""
    (loop,) = [(n, t) for n, t in spec["root"]["dag"]["tasks"].items() if "parameterIterator" in t]
    return loop


def test_task_compiles_to_parallel_for_and_publish(tmp_path: Path) -> None:
    from hypermodel.kubeflow import compile_pipeline

    app, _ = make_app(tmp_path)
    text = compile_pipeline(app, "chunky").yaml
    assert "comp-join-chunk" in text and "comp-join-publish" in text
    assert "parallelismLimit: 4" in text
    assert "shard:0/16" in text and "shard:15/16" in text and "chunk:0" not in text
    assert "--step" in text and "publish" in text
    assert "comp-load-nums" in text  # a source runs in one pod


def test_kfp_loads_the_fan_out_one_item_per_chunk(tmp_path: Path) -> None:
    """kfp reads the compiled file back; its loop runs the chunk pod once per chunk id, the
    item bound to the pod's ``step``, four at a time, and the publish pod after the loop."""
    from kfp.components import load_component_from_file

    from hypermodel.kubeflow import compile_pipeline

    app, rows = make_app(tmp_path / "root")
    path = tmp_path / "chunky.yaml"
    compile_pipeline(app, "chunky", path)
    spec = load_component_from_file(str(path)).pipeline_spec
    name, _ = fan_out(load(path)[0])
    loop = spec.root.dag.tasks[name]
    assert loop.iterator_policy.parallelism_limit == 4
    items = json.loads(loop.parameter_iterator.items.raw)  # a constant list
    assert items == [f"shard:{k}/16" for k in range(16)] and len(rows.chunk_ids()) == 16
    body = spec.components[loop.component_ref.name].dag.tasks
    assert list(body) == ["join-chunk"]
    step = body["join-chunk"].inputs.parameters["step"].component_input_parameter
    assert step == loop.parameter_iterator.item_input
    publish = spec.root.dag.tasks["join-publish"]
    assert set(publish.dependent_tasks) == {name, *SOURCES}
    assert publish.inputs.parameters["step"].runtime_value.constant.string_value == "publish"


def test_fan_out_starts_after_the_tasks_that_write_its_inputs(tmp_path: Path) -> None:
    from hypermodel.kubeflow import compile_pipeline

    app, _ = make_app(tmp_path / "root")
    path = tmp_path / "chunky.yaml"
    compile_pipeline(app, "chunky", path)
    _, loop = fan_out(load(path)[0])
    assert set(loop.get("dependentTasks", [])) == SOURCES


@pytest.mark.parametrize("pods", [16, 4])
def test_compiled_fan_out_reproduces_run_all(tmp_path: Path, pods: int) -> None:
    """Every pod of the compiled pipeline, run as Kubeflow's launcher would (one per shard in
    the loop: one chunk each with 16 pods, four each with 4), publishes the very dataset a
    local run-all writes."""
    from kfp.components import load_component_from_file

    from hypermodel.kubeflow import compile_pipeline

    pod_root, local_root = tmp_path / "pods", tmp_path / "run-all"
    app, rows = make_app(pod_root, fan_out=pods)
    path = tmp_path / "chunky.yaml"
    compile_pipeline(app, "chunky", path)
    assert load_component_from_file(str(path)).name == "chunky"  # kfp accepts the file
    _, loop = fan_out(load(path)[0])
    assert set(loop["dependentTasks"]) == SOURCES  # the chunk pods wait for their inputs

    published_after: dict[str, bool] = {}  # pod -> is the output published once it is done

    def done(task: str) -> None:
        published_after[task] = rows.exists()

    out = replay(
        path,
        tmp_path,
        run_id=KFP_RUN,
        extra_env={"HML_ROOT": str(pod_root), "CHUNKY_FAN_OUT": str(pods)},
        entrypoint=ENTRYPOINT,
        cwd=REPO_ROOT,  # python -m imports the app from here
        on_done=done,
    )
    assert all(out.commands[t][: len(ENTRYPOINT)] == ENTRYPOINT for t in out.ran)

    # One pod per shard, each running its share of the chunks (its own task id, too).
    chunk_pods = [t for t in out.ran if t.endswith("/join-chunk")]
    steps = [option(out.commands[t], "--step") for t in chunk_pods]
    assert sorted(steps) == sorted(f"shard:{k}/{pods}" for k in range(pods))
    assert len({option(out.commands[t], "--hml-task-id") for t in chunk_pods}) == pods
    ran = [cid for t in chunk_pods for cid in out.outputs[t]["chunks"]]
    assert sorted(ran) == rows.chunk_ids() and len(ran) == 16  # each chunk exactly once
    assert all(len(out.outputs[t]["chunks"]) == 16 // pods for t in chunk_pods)
    assert sum(out.outputs[t]["count"] for t in chunk_pods) == N - 1  # id 7 has no number

    # The sources first, then the chunk pods, then the publish pod: the only one to publish.
    assert out.ran == ["load-labels", "load-nums", *chunk_pods, "join-publish"]
    assert option(out.commands["join-publish"], "--step") == "publish"
    assert published_after == {t: t == "join-publish" for t in out.ran}
    published = out.outputs["join-publish"]
    assert published["checksum"] == rows.checksum and published["objects"] == N - 1
    chk = rows.read_chk()
    for t in chunk_pods:  # what each pod wrote is what was published
        for cid, sha in out.outputs[t]["sha1"].items():
            assert chk[f"rows_{cid}.jsonl.gz"] == sha

    # run-all of the same pipeline, in another root.
    local_app, local_rows = make_app(local_root, fan_out=pods)
    local = local_app.pipelines.run_all("chunky", {}, workers=0)
    local.raise_for_failure()
    assert local.outputs["join"]["checksum"] == local_rows.checksum
    assert published == local.outputs["join"]
    for name in ("nums", "labels", "rows"):  # the same files, byte for byte: same checksums
        assert chunks(pod_root, name) == chunks(local_root, name), name
    assert published["checksum"] == local.outputs["join"]["checksum"]
    assert rows.read_def() == local_rows.read_def()
    assert rows.read_def()["creationTime"] == CREATED


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def chunks(root: Path, name: str) -> dict[str, str]:
    """File -> checksum, from the dataset's .chk (chunks and .def)."""
    return Dataset(TYPES[name], root, name=name).read_chk()


def test_cli_runs_one_chunk_then_publishes(tmp_path: Path) -> None:
    app, rows = make_app(tmp_path)
    runner = CliRunner()
    group = app.cli()
    for op in ("load_nums", "load_labels"):
        result = runner.invoke(group, ["pipelines", "chunky", "run", op])
        assert result.exit_code == 0, result.output
    for cid in rows.chunk_ids():
        result = runner.invoke(
            group, ["pipelines", "chunky", "run", "join", "--step", f"chunk:{cid}"]
        )
        assert result.exit_code == 0, result.output
        assert not rows.exists()
    result = runner.invoke(group, ["pipelines", "chunky", "run", "join", "--step", "publish"])
    assert result.exit_code == 0, result.output
    assert rows.exists() and sum(1 for _ in rows) == N - 1, result.output


def sized_app(root: Path, count: int) -> hml.HmlApp:
    app = hml.HmlApp("sized", image_url="registry.example/sized:1", root=str(root))
    nums = Dataset(Num, root, name="nums", chunkCount=count)
    rows = Dataset(Num, root, name="rows", chunkCount=count)

    @hml.pipeline(app.pipelines, name="sized")
    def sized() -> None:
        Copy([nums], rows, name="copy")()

    return app


def test_the_compiled_yaml_does_not_grow_with_the_chunk_count(tmp_path: Path) -> None:
    from hypermodel.kubeflow import compile_pipeline

    sizes = {}
    for count in (16, 256, 4096):
        text = compile_pipeline(sized_app(tmp_path / f"r{count:04d}", count), "sized").yaml
        sizes[count] = len(text)
        assert "shard:15/16" in text and "chunk:0" not in text
    assert len(set(sizes.values())) == 1, sizes


def test_a_bad_shard_step_is_a_clear_error(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    group = app.cli()
    for step in ("shard:16/16", "shard:a/b", "shard:3", "shard:-1/4"):
        result = CliRunner().invoke(group, ["pipelines", "chunky", "run", "join", "--step", step])
        assert result.exit_code != 0
        assert "shard:<k>/<n>" in str(result.exception) or "shard:<k>/<n>" in result.output


class Copy(OneToOne):
    def run(self, num: Num) -> Num:
        return num
