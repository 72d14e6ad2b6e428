"""The compiled IR of a pipeline that uses every feature, read back with kfp's loader and YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hypermodel import hml
from hypermodel.errors import DeclarationError
from hypermodel.kubeflow import CompileResult, compile_pipeline

from .apps import SECRET_VALUE, make_app
from .conftest import dag_task, executor


def test_kfp_loader_accepts_the_yaml_with_typed_pipeline_inputs(compiled: CompileResult) -> None:
    from kfp import components

    assert compiled.path is not None
    component = components.load_component_from_file(str(compiled.path))
    assert component.name == "scoring"
    types = {name: spec.type for name, spec in component.component_spec.inputs.items()}
    assert types == {"count": "Integer", "weight": "Float", "strict": "Boolean"}
    assert component.component_spec.inputs["count"].default == 3


def test_pipeline_inputs_and_op_outputs_are_typed_parameters(ir: dict[str, Any]) -> None:
    spec = ir["spec"]
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert {k: v["parameterType"] for k, v in inputs.items()} == {
        "count": "NUMBER_INTEGER",
        "weight": "NUMBER_DOUBLE",
        "strict": "BOOLEAN",
    }
    outputs = {
        name.removeprefix("comp-"): c["outputDefinitions"]["parameters"]["output"]["parameterType"]
        for name, c in spec["components"].items()
    }
    assert outputs == {
        "make-items": "LIST",
        "score": "STRUCT",
        "summarize": "NUMBER_DOUBLE",
        "passed": "BOOLEAN",
        "cleanup": "STRING",
    }
    score_inputs = spec["components"]["comp-score"]["inputDefinitions"]["parameters"]
    assert {k: v["parameterType"] for k, v in score_inputs.items()} == {
        "items": "LIST",
        "weight": "NUMBER_DOUBLE",
        "verbose": "BOOLEAN",
        "options": "STRUCT",
    }


def test_outputs_feed_downstream_inputs_and_after_orders(ir: dict[str, Any]) -> None:
    score = dag_task(ir, "score")["inputs"]["parameters"]
    assert score["items"] == {
        "taskOutputParameter": {"outputParameterKey": "output", "producerTask": "make-items"}
    }
    assert score["weight"] == {"componentInputParameter": "weight"}
    assert score["verbose"] == {"runtimeValue": {"constant": True}}
    assert score["options"] == {"runtimeValue": {"constant": {"mode": "fast"}}}
    assert dag_task(ir, "passed")["inputs"]["parameters"]["strict"] == {
        "componentInputParameter": "strict"
    }
    assert dag_task(ir, "cleanup")["dependentTasks"] == ["passed"]
    assert "inputs" not in dag_task(ir, "cleanup")


def test_command_runs_the_apps_console_script_with_placeholders(ir: dict[str, Any]) -> None:
    container = executor(ir, "score")
    assert container["image"] == "registry.example/app:1"
    assert container["command"] == ["kfpapp"]
    args = container["args"]
    assert args[:4] == ["pipelines", "scoring", "run", "score"]
    assert args[args.index("--items") + 1] == "{{$.inputs.parameters['items']}}"
    # bool switches cannot take a placeholder: they travel as --hml-arg NAME VALUE
    i = args.index("--hml-arg")
    assert args[i + 1 : i + 3] == ["verbose", "{{$.inputs.parameters['verbose']}}"]
    assert args[args.index("--hml-run-id") + 1] == "{{$.pipeline_job_uuid}}"
    assert args[args.index("--hml-task-id") + 1] == "{{$.pipeline_task_uuid}}"
    assert args[args.index("--hml-retries") + 1] == "0"
    assert (
        args[args.index("--hml-output-file") + 1]
        == "{{$.outputs.parameters['output'].output_file}}"
    )
    assert executor(ir, "make-items")["args"][:4] == ["pipelines", "scoring", "run", "make_items"]


def test_args_carry_the_ops_code_digest_so_changed_code_misses_kubeflows_cache(
    ir: dict[str, Any],
) -> None:
    from hypermodel.kubeflow.compiler import CODE_DIGITS

    from . import apps

    args = executor(ir, "score")["args"]
    digest = args[args.index("--hml-code") + 1]
    assert digest == apps.score.code_fingerprint[:CODE_DIGITS]
    other = executor(ir, "make-items")["args"]
    assert other[other.index("--hml-code") + 1] == apps.make_items.code_fingerprint[:CODE_DIGITS]
    assert digest != other[other.index("--hml-code") + 1]


def test_retries_and_caching(ir: dict[str, Any]) -> None:
    assert dag_task(ir, "score")["retryPolicy"]["maxRetryCount"] == 3
    assert dag_task(ir, "cleanup")["retryPolicy"]["maxRetryCount"] == 2  # task.set_retry
    assert "retryPolicy" not in dag_task(ir, "summarize")
    assert dag_task(ir, "make-items")["cachingOptions"] == {"enableCache": True}
    # hypermodel ops are not cached unless asked; Kubeflow's default (cache on) is overridden
    assert dag_task(ir, "score")["cachingOptions"].get("enableCache", False) is False


def test_resources_and_gpu(ir: dict[str, Any]) -> None:
    res = executor(ir, "score")["resources"]
    assert res["resourceCpuRequest"] == "500m"
    assert res["resourceCpuLimit"] == "2"
    assert res["resourceMemoryRequest"] == "1Gi"
    assert res["resourceMemoryLimit"] == "4Gi"
    assert res["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert res["accelerator"]["resourceCount"] == "1"
    assert "resources" not in executor(ir, "summarize")


def test_env_from_app_deploy_op_gcp_auth_and_remote_root(ir: dict[str, Any]) -> None:
    env = {e["name"]: e["value"] for e in executor(ir, "score")["env"]}
    assert env["APP_LEVEL"] == "on"
    assert env["CONFIGURED_BY"] == "deploy_op"
    assert env["HML_ROOT"] == "gs://hml-test-bucket/kfp"
    assert (
        env["GOOGLE_APPLICATION_CREDENTIALS"] == "/secret/gcp-credentials/gcp-sa/user-gcp-sa.json"
    )
    other = {e["name"]: e["value"] for e in executor(ir, "cleanup")["env"]}
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in other and other["CONFIGURED_BY"] == "deploy_op"


def test_secrets_by_name_volumes_selectors_and_pull_secrets(ir: dict[str, Any]) -> None:
    p = ir["platform"]["exec-score"]
    assert p["secretAsEnv"] == [
        {
            "keyToEnv": [{"envVar": "DB_PASSWORD", "secretKey": "password"}],
            "optional": False,
            "secretName": "db-credentials",
            "secretNameParameter": {"runtimeValue": {"constant": "db-credentials"}},
        }
    ]
    assert {(v["secretName"], v["mountPath"]) for v in p["secretAsVolume"]} == {
        ("model-keys", "/etc/keys"),
        ("gcp-sa", "/secret/gcp-credentials/gcp-sa"),
    }
    assert [(v["constant"], v["mountPath"]) for v in p["pvcMount"]] == [("shared-claim", "/shared")]
    empty = {v["volumeName"]: v for v in p["emptyDirMounts"]}
    assert empty["cache"]["mountPath"] == "/cache" and empty["cache"]["medium"] == "Memory"
    assert empty["hml-work"]["mountPath"] == "/hml-work"
    assert p["nodeSelector"] == {"labels": {"pool": "gpu"}}
    assert p["tolerations"] == [
        {"effect": "NoSchedule", "key": "gpu", "operator": "Equal", "value": "true"}
    ]
    assert [s["secretName"] for s in p["imagePullSecret"]] == ["regcred"]
    assert p["podMetadata"] == {"annotations": {"team": "ml"}, "labels": {"tier": "batch"}}
    assert "secretAsEnv" not in ir["platform"]["exec-cleanup"]


def test_a_secret_value_in_the_local_environment_never_reaches_the_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PASSWORD", SECRET_VALUE)
    monkeypatch.setenv("password", SECRET_VALUE)
    result = compile_pipeline(make_app(), "scoring", tmp_path / "s.yaml")
    assert "db-credentials" in result.yaml
    assert SECRET_VALUE not in result.yaml
    assert SECRET_VALUE not in (tmp_path / "s.yaml").read_text()


def test_a_local_root_warns_and_is_not_put_in_pods(tmp_path: Path) -> None:
    result = compile_pipeline(make_app(root=str(tmp_path / "bucket")), "scoring")
    assert result.path is None
    assert any("pods will not share it" in w for w in result.warnings)
    assert "HML_ROOT" not in result.yaml


def test_remote_root_compiles_without_warnings(compiled: CompileResult) -> None:
    assert compiled.warnings == []


def test_no_image_is_a_clear_declaration_error() -> None:
    with pytest.raises(DeclarationError, match=r"no image to run op 'make_items'.*image_url="):
        compile_pipeline(make_app(image=None), "scoring")


def test_an_op_level_image_overrides_the_app_image(tmp_path: Path) -> None:
    app = hml.HmlApp("imgapp", image_url="app:1", root="gs://b/p")

    @hml.op(image="special:2")
    def special() -> int:
        return 1

    @hml.op()
    def plain(x: int) -> int:
        return x

    @hml.pipeline(app.pipelines)
    def imgs():
        plain(x=special())

    text = compile_pipeline(app, "imgs").yaml
    assert "image: special:2" in text and "image: app:1" in text


def test_an_op_can_provide_its_own_compiled_form() -> None:
    from hypermodel.dsl.op import Op

    calls: list[str] = []

    class Chunked(Op):
        def compile_kfp(self, builder: Any, task: Any, arguments: dict[str, Any]) -> Any:
            calls.append(task.name)
            dsl = builder.dsl
            with dsl.ParallelFor(items=["0", "1", "2"], parallelism=2) as chunk:
                part = builder.component(task, {"chunk": str}, None, name=f"{task.name}-chunk")
                each = builder.configure(part(chunk=chunk), task)
            publish = builder.component(
                task, {}, task.op.return_type, name=f"{task.name}-publish", extra_args=["--publish"]
            )
            return builder.configure(publish(), task).after(each)

    def count(chunk: str = "") -> int:
        return 3

    app = hml.HmlApp("hookapp", image_url="app:1", root="gs://b/p")
    chunked = Chunked(count, name="count", retries=1)

    @hml.op()
    def double(n: int) -> int:
        return 2 * n

    @hml.pipeline(app.pipelines)
    def hooked():
        double(n=chunked())

    text = compile_pipeline(app, "hooked").yaml
    assert calls == ["count"]
    assert (
        "parallelismLimit: 2" in text
        and "comp-count-chunk" in text
        and "comp-count-publish" in text
    )
    assert "producerTask: count-publish" in text  # downstream reads the publish step's output
