from __future__ import annotations

import pytest

from hypermodel import hml
from hypermodel.errors import DeclarationError
from tests.support import require_module

from . import apps


def test_two_apps_keep_their_own_pipelines_and_commands() -> None:
    one, two = apps.make_app("one"), hml.HmlApp(name="two")

    @hml.pipeline(two.pipelines)
    def only_two():
        apps.load()

    assert [p.name for p in one.pipelines] == ["basic", "parallel", "failing"]
    assert [p.name for p in two.pipelines] == ["only_two"]
    import click

    def pipeline_commands(app: hml.HmlApp) -> set[str]:
        cli = app.cli()
        group = cli.get_command(click.Context(cli), "pipelines")
        assert isinstance(group, click.Group)
        return set(group.commands)

    assert pipeline_commands(one) == {"basic", "parallel", "failing"}
    assert pipeline_commands(two) == {"only_two"}


def test_duplicate_pipeline_name_is_an_error_at_declaration() -> None:
    app = apps.make_app()
    with pytest.raises(DeclarationError, match="already has a pipeline named 'basic'"):

        @hml.pipeline(app.pipelines)
        def basic():
            apps.load()


def test_same_op_twice_gets_distinct_task_names() -> None:
    pipeline = apps.make_app().pipelines["basic"]
    assert pipeline.order() == ["load", "train", "train-2", "combine"]
    assert pipeline.task("combine").dependencies() == ["train", "train-2"]


def test_decorators_return_useful_objects() -> None:
    app = hml.HmlApp(name="deco")
    assert isinstance(apps.load, hml.Op)
    assert apps.load(rows=3) == "data-3"  # outside a pipeline an op is a plain call

    @hml.pipeline(app.pipelines)
    def p():
        apps.load()

    assert isinstance(p, hml.Pipeline) and app.pipelines["p"] is p
    assert p.order() == ["load"]

    @hml.deploy_op(app.pipelines)
    def configure(op: hml.ContainerConfig) -> hml.ContainerConfig:
        return op.with_env("A", 1)

    # each configurator decorator hands back the function itself: still callable as written,
    # and registered where it applies
    assert configure(hml.ContainerConfig()).env == {"A": "1"}
    assert app.pipelines.container_config(p, p.task("load")).env == {"A": "1"}

    @hml.deploy_inference(app.inference)
    def scale(deployment: hml.HmlInferenceDeployment) -> hml.HmlInferenceDeployment:
        return deployment.with_replicas(3)

    assert scale(hml.HmlInferenceDeployment()).replicas == 3
    assert app.inference.deployment_config().replicas == 3

    initialised: list[object] = []

    @hml.inference(app.inference)
    def init(inference_app: object) -> None:
        initialised.append(inference_app)

    init("direct")  # a plain function again
    require_module("flask")
    app.inference.build()  # the server's build runs the registered initialiser, once
    app.inference.build()
    assert initialised == ["direct", app.inference]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda: apps.load(nope=1), "unknown argument 'nope'"),
        (lambda: apps.train(depth=3), "required argument 'dataset' is not given"),
        (lambda: apps.load(rows="many"), "argument 'rows': expected int, got str"),
        (lambda: apps.after_broken(value=apps.load()), "expects int but op 'load' returns str"),
    ],
)
def test_bad_pipeline_bodies_fail_at_declaration_naming_op_and_argument(body, message) -> None:  # type: ignore[no-untyped-def]
    app = hml.HmlApp(name="bad")
    with pytest.raises(DeclarationError, match=message):
        app.pipelines.pipeline("p")(lambda: body())


def test_cycle_is_reported() -> None:
    app = hml.HmlApp(name="cyc")

    def body():
        a = apps.load(rows=1)
        b = apps.load(rows=2)
        a.after(b)
        b.after(a)

    with pytest.raises(DeclarationError, match="dependency cycle"):
        app.pipelines.pipeline("p")(body)


def test_unsupported_annotation_is_refused() -> None:
    with pytest.raises(DeclarationError, match="type 'set' is not supported"):

        @hml.op()
        def bad(values: set) -> int:  # type: ignore[type-arg]
            return 1


def test_pipeline_params_type_checked_against_op_arguments() -> None:
    app = hml.HmlApp(name="types")

    def body(depth: str = "3"):
        apps.train(dataset="d", depth=depth)

    with pytest.raises(DeclarationError, match="expects int but pipeline parameter 'depth' is str"):
        app.pipelines.pipeline("p")(body)


def test_unsafe_names_refused() -> None:
    with pytest.raises(Exception, match="not allowed"):
        hml.HmlApp(name="../escape")


def test_task_configuration_is_kept_apart_from_the_op() -> None:
    app = hml.HmlApp(name="cfg", image_url="img:1")

    @hml.pipeline(app.pipelines)
    def p():
        apps.load(rows=1).with_resources(cpu="3").with_env("X", "1").set_retry(4)
        apps.load(rows=2)

    first, second = p.task("load"), p.task("load-2")
    assert first.retries == 4 and second.retries == 0
    assert app.pipelines.container_config(p, first).cpu_request == "3"
    assert app.pipelines.container_config(p, second).cpu_request is None
    assert app.pipelines.container_config(p, second).image == "img:1"


def test_an_apps_own_commands_take_hml_options_and_the_app_as_context() -> None:
    from click.testing import CliRunner

    one, two = hml.HmlApp(name="one"), hml.HmlApp(name="two")

    @one.command()
    @hml.option("--rows", type=int, default=3)
    @hml.pass_context
    def seed(ctx, rows: int) -> None:  # type: ignore[no-untyped-def]
        print(f"{ctx.obj.name} seeds {rows} rows")

    out = CliRunner().invoke(one.cli(), ["seed", "--rows", "5"])
    assert out.exit_code == 0 and out.output == "one seeds 5 rows\n"
    assert "seed" in CliRunner().invoke(one.cli(), ["--help"]).output
    assert CliRunner().invoke(two.cli(), ["seed"]).exit_code == 2  # no such command in two
    with pytest.raises(DeclarationError, match="already has a command named 'pipelines'"):
        one.command("pipelines")(lambda: None)
    with pytest.raises(DeclarationError, match="already has a command named 'seed'"):
        one.command("seed")(lambda: None)


def test_merging_settings_keeps_the_gpu_vendor_of_the_gpu_request() -> None:
    from hypermodel.dsl.config import ContainerConfig

    op_cfg = ContainerConfig().with_resources(gpu=2, gpu_vendor="amd.com/gpu")
    merged = op_cfg.merged(ContainerConfig().with_resources(cpu="2"))  # a task adding a CPU
    assert (merged.gpu_limit, merged.gpu_vendor) == (2, "amd.com/gpu")
    swapped = op_cfg.merged(ContainerConfig().with_resources(gpu=1))  # a task's own GPU count
    assert (swapped.gpu_limit, swapped.gpu_vendor) == (1, "nvidia.com/gpu")
