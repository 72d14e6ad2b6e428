"""compile: time to compile the demo pipeline (5 ops) to Kubeflow Pipelines v2 YAML.

Measured three ways: the CLI end to end (`wines pipelines wines compile -o FILE`, a fresh
process importing kfp), the same command's floor (a process that only imports the kfp modules
the compiler needs), and in-process compile_pipeline() against a hand-written kfp pipeline of the
same shape (5 container components, same wiring and container settings) compiled by kfp alone.
Targets: CLI <= 1.3x the import floor; in-process <= 2x plain kfp.
"""

# No `from __future__ import annotations`: kfp reads the component annotations as real types.
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import PYTHON, line, median_command, median_time, ratio


def plain_kfp_pipeline() -> Any:
    """The demo's graph written directly with kfp (no hypermodel), for comparison."""
    from kfp import dsl

    @dsl.container_component
    def load(output: dsl.OutputPath(str)):  # type: ignore[valid-type]
        return dsl.ContainerSpec(image="img", command=["wines"], args=["load", output])

    @dsl.container_component
    def profile(data: str, output: dsl.OutputPath(dict)):  # type: ignore[valid-type]
        return dsl.ContainerSpec(image="img", command=["wines"], args=["profile", data, output])

    @dsl.container_component
    def split(data: str, test_fraction: float, output: dsl.OutputPath(dict)):  # type: ignore[valid-type]
        return dsl.ContainerSpec(
            image="img", command=["wines"], args=["split", data, test_fraction, output]
        )

    @dsl.container_component
    def train(parts: dict, n_estimators: int, max_depth: int, output: dsl.OutputPath(dict)):  # type: ignore[valid-type]
        return dsl.ContainerSpec(
            image="img", command=["wines"], args=["train", parts, n_estimators, max_depth, output]
        )

    @dsl.container_component
    def evaluate(parts: dict, model: dict, summary: dict, output: dsl.OutputPath(dict)):  # type: ignore[valid-type]
        return dsl.ContainerSpec(
            image="img", command=["wines"], args=["evaluate", parts, model, summary, output]
        )

    def configure(task: Any) -> Any:
        # The same settings the demo's compiled tasks carry: env, caching, two emptyDirs.
        from kfp import kubernetes

        task.set_caching_options(False)
        for key, value in (
            ("HML_ROOT", "gs://bench/wines"),
            ("HML_WORKDIR", "/hml-work"),
            ("WINES_LOG_LEVEL", "INFO"),
        ):
            task.set_env_variable(key, value)
        kubernetes.empty_dir_mount(task, volume_name="hml-work", mount_path="/hml-work")
        kubernetes.empty_dir_mount(task, volume_name="scratch", mount_path="/scratch")
        return task

    @dsl.pipeline(name="wines")
    def wines(n_estimators: int = 100, max_depth: int = 4, test_fraction: float = 0.25):
        data = configure(load())
        summary = configure(profile(data=data.output))
        parts = configure(split(data=data.output, test_fraction=test_fraction))
        model = configure(train(parts=parts.output, n_estimators=n_estimators, max_depth=max_depth))
        model.set_retry(1).set_cpu_request("1").set_memory_request("1Gi")
        configure(evaluate(parts=parts.output, model=model.output, summary=summary.output))

    return wines


def main() -> int:
    wines = shutil.which("wines", path=str(Path(sys.executable).parent))
    if wines is None:
        print("compile: the demo is not installed (make venv)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "wines.yaml")
        cli = median_command(
            [wines, "--root", "gs://bench/wines", "pipelines", "wines", "compile", "-o", out],
            runs=7,
        )
        floor = median_command(
            [PYTHON, "-c", "import kfp.dsl, kfp.compiler, kfp.kubernetes"], runs=7
        )
        line("compile", "cli `wines pipelines wines compile` (demo, 5 ops)", cli, runs=7)
        line("compile", "python -c 'import kfp.dsl, kfp.compiler, kfp.kubernetes'", floor, runs=7)
        ratio("compile", "cli compile", "kfp import floor", cli / floor, "<= 1.3x")

        from kfp import compiler
        from wines.app import app

        from hypermodel.kubeflow import compile_pipeline

        ours = median_time(lambda: compile_pipeline(app, "wines"), runs=20, warmup=2)
        plain = median_time(
            lambda: compiler.Compiler().compile(plain_kfp_pipeline(), out), runs=20, warmup=2
        )
        line("compile", "in-process compile_pipeline(app, 'wines')", ours, runs=20)
        line("compile", "in-process plain kfp, same graph", plain, runs=20)
        ratio("compile", "hypermodel", "plain kfp", ours / plain, "<= 2x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
