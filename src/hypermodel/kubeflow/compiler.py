"""Compile a hypermodel pipeline to Kubeflow Pipelines v2 IR YAML.

Every task becomes a container component that runs the app's own console script in the app
image (``<entrypoint> pipelines <pipeline> run <task> --arg value ...``), so the code a pod runs
is exactly the code ``run-all`` runs. Pipeline parameters become typed pipeline inputs and each
op's return value a typed output parameter that downstream components consume.

An op can provide its own compiled form (a fan-out over dataset chunks, for instance) by
defining ``compile_kfp(builder, task, arguments)``; see :class:`KfpBuilder` and docs/kubeflow.md.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._lazy import require
from ..dsl.config import KFP, AppSpec, ContainerConfig
from ..dsl.pipeline import Pipeline, PipelineParam, Task
from ..dsl.types import NO_DEFAULT, SUPPORTED
from ..errors import DeclarationError

if TYPE_CHECKING:
    from ..app import HmlApp

#: The name of every component's output parameter.
OUTPUT = "output"
#: Hex digits of the op's code digest passed to each pod (``--hml-code``).
CODE_DIGITS = 16
#: Where pods keep scratch files (an emptyDir, so it is writable under read-only root filesystems).
WORKDIR = "/hml-work"


@dataclass
class CompileResult:
    """What :func:`compile_pipeline` produced; ``warnings`` are meant for the user's eyes."""

    pipeline: str
    yaml: str
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _kfp() -> tuple[Any, Any, Any]:
    purpose = "Compiling pipelines for Kubeflow"
    dsl = require("kfp.dsl", "kubeflow", purpose)
    compiler = require("kfp.compiler", "kubeflow", purpose)
    kubernetes = require("kfp.kubernetes", "kubeflow", purpose)
    return dsl, compiler, kubernetes


def _kfp_type(t: type | None) -> type:
    """The Python type KFP maps to a parameter type (untyped values travel as text)."""
    return t if t in SUPPORTED else str


class KfpBuilder:
    """Builds the KFP tasks of one pipeline; handed to ``Op.compile_kfp`` hooks.

    A hook receives this builder, the hypermodel :class:`Task` and ``arguments`` (argument
    name -> KFP channel or constant) and returns the KFP task whose ``Output`` is the task's
    output. It can call :meth:`component`, :meth:`command`, :meth:`configure` and use
    :attr:`dsl` (``kfp.dsl``, e.g. ``dsl.ParallelFor``) and :attr:`kubernetes`.
    """

    def __init__(self, spec: AppSpec, pipeline: Pipeline) -> None:
        self.spec = spec
        self.pipeline = pipeline
        self.dsl, self._compiler, self.kubernetes = _kfp()
        self.warnings: list[str] = []
        self.kfp_tasks: dict[str, Any] = {}
        self.service_accounts: set[str] = set()

    # -- pieces a hook can reuse ---------------------------------------------------------------
    def config(self, task: Task) -> ContainerConfig:
        """The task's effective container settings (app env, op, task, @deploy_op)."""
        return self.spec.pipelines.container_config(self.pipeline, task)

    def image(self, task: Task, cfg: ContainerConfig) -> str:
        image, note = self.spec.run_image(cfg.image or self.spec.image_url)
        self._warn(note)
        if not image:
            raise DeclarationError(
                f"app '{self.spec.name}' has no image to run op '{task.name}' on Kubeflow: pass "
                "HmlApp(..., image_url='registry/app:tag') or configure one with with_image()"
            )
        return image

    def command(
        self,
        task: Task,
        op_args: list[tuple[str, Any]],
        output: Any,
        extra: list[Any] | None = None,
    ) -> list[Any]:
        """The console-script argv of one op; values may be KFP placeholders.

        Booleans go through ``--hml-arg NAME VALUE`` because the CLI declares them as
        ``--flag/--no-flag`` switches, which a placeholder cannot choose between.
        """
        argv: list[Any] = [
            self.spec.entrypoint,
            "pipelines",
            self.pipeline.name,
            "run",
            task.name,
        ]
        for name, value in op_args:
            param = task.op.param(name)
            if param is not None and param.type is bool:
                argv += ["--hml-arg", name, value]
            else:
                argv += ["--" + name.replace("_", "-"), value]
        argv += [
            "--hml-run-id",
            self.dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            "--hml-task-id",
            self.dsl.PIPELINE_TASK_ID_PLACEHOLDER,
            "--hml-retries",
            "0",  # Kubeflow retries the pod; the op must not retry inside it
            # Kubeflow's cache key covers the container's args but not the image's contents:
            # the op's code digest makes changed code a cache miss, as it is locally, and lets
            # the pod say when its image runs other code than the pipeline was compiled from
            "--hml-code",
            task.op.code_fingerprint[:CODE_DIGITS],
            "--hml-output-file",
            output,
        ]
        return argv + list(extra or [])

    def component(
        self,
        task: Task,
        inputs: dict[str, type],
        output_type: type | None = None,
        name: str | None = None,
        extra_args: list[str] | None = None,
    ) -> Any:
        """A container component for ``task`` with typed ``inputs`` and one typed output."""
        dsl = self.dsl
        if OUTPUT in inputs:
            raise DeclarationError(
                f"op '{task.op.name}': an argument may not be named '{OUTPUT}' on Kubeflow"
            )
        cfg = self.config(task)
        image = self.image(task, cfg)
        names = list(inputs)

        def body(*values: Any) -> Any:
            argv = self.command(
                task, list(zip(names, values[:-1], strict=True)), values[-1], extra_args
            )
            return dsl.ContainerSpec(image=image, command=argv[:1], args=argv[1:])

        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        params = [inspect.Parameter(n, kind, annotation=t) for n, t in inputs.items()]
        params.append(
            inspect.Parameter(OUTPUT, kind, annotation=dsl.OutputPath(_kfp_type(output_type)))
        )
        body.__name__ = name or task.name
        body.__qualname__ = body.__name__
        body.__doc__ = task.op.description or f"hypermodel op {task.op.name}"
        setattr(body, "__signature__", inspect.Signature(params))  # noqa: B010 - kfp reads it
        return dsl.container_component(body)

    def configure(self, kfp_task: Any, task: Task) -> Any:
        """Apply retries, caching and every container setting of ``task`` to ``kfp_task``."""
        cfg = self.config(task)
        if task.retries:
            kfp_task.set_retry(num_retries=task.retries, **self._backoff(task))
        kfp_task.set_caching_options(bool(task.cache))
        env = dict(cfg.env)
        env.setdefault("HML_WORKDIR", WORKDIR)
        if not self.spec.settings.is_local:
            env["HML_ROOT"] = self.spec.settings.root
        for key in sorted(env):
            kfp_task.set_env_variable(key, env[key])
        _resources(kfp_task, cfg)
        self._platform(kfp_task, cfg)
        if cfg.service_account:
            self.service_accounts.add(cfg.service_account)
        ignored = cfg.not_rendered(KFP)
        if ignored:
            self._warn(
                f"op '{task.name}' sets {', '.join(ignored)}, which Kubeflow does not apply "
                "(every pod runs the app's console script in its image); it is ignored there"
            )
        return kfp_task

    def _warn(self, note: str | None) -> None:
        if note and note not in self.warnings:
            self.warnings.append(note)

    def _backoff(self, task: Task) -> dict[str, Any]:
        """The op's backoff as KFP's retry policy: the first wait (whole seconds) and the factor.

        KFP's ``backoff_max_duration`` is not a cap on each wait: Argo bounds the whole retry
        window with it (and cuts the pod's deadline to it), so ``max_backoff_s`` is not compiled
        into it; KFP's one-hour window stays. Where the cap would matter, a warning says so."""
        op = task.op
        if op.backoff == "none" or op.backoff_s <= 0:
            return {"backoff_duration": "0s", "backoff_factor": 1.0}
        first = math.ceil(op.backoff_s)
        if first != op.backoff_s:
            self.warnings.append(
                f"op '{task.name}': Kubeflow waits whole seconds between attempts: "
                f"backoff_s={op.backoff_s:g} becomes {first}s there"
            )
        factor = 2.0 if op.backoff == "exponential" else 1.0
        longest = first * factor ** min(task.retries - 1, 60)
        if op.backoff == "exponential" and longest > op.max_backoff_s:
            self.warnings.append(
                f"op '{task.name}': Kubeflow cannot cap each wait at max_backoff_s="
                f"{op.max_backoff_s:g} (its backoff_max_duration bounds the whole retry window): "
                f"its last wait there is {longest:g}s; lower retries or backoff_s, or use "
                'backoff="fixed"'
            )
        return {"backoff_duration": f"{first}s", "backoff_factor": factor}

    def _platform(self, kfp_task: Any, cfg: ContainerConfig) -> None:
        k8s = self.kubernetes
        by_secret: dict[str, dict[str, str]] = {}
        for s in cfg.secret_env:  # one entry per secret; only names and keys, never values
            by_secret.setdefault(s.secret, {})[s.key] = s.env
        for secret, keys in by_secret.items():
            k8s.use_secret_as_env(kfp_task, secret_name=secret, secret_key_to_env=keys)
        for sv in cfg.secret_volumes:
            k8s.use_secret_as_volume(kfp_task, secret_name=sv.secret, mount_path=sv.mount_path)
        k8s.empty_dir_mount(kfp_task, volume_name="hml-work", mount_path=WORKDIR)
        for v in cfg.volumes:
            if v.kind == "pvc":
                k8s.mount_pvc(kfp_task, pvc_name=v.name, mount_path=v.mount_path)
            else:
                k8s.empty_dir_mount(
                    kfp_task,
                    volume_name=v.name,
                    mount_path=v.mount_path,
                    medium=v.medium or None,
                    size_limit=v.size_limit or None,
                )
        for key, value in cfg.node_selector.items():
            k8s.add_node_selector(kfp_task, label_key=key, label_value=value)
        for t in cfg.tolerations:
            k8s.add_toleration(
                kfp_task,
                key=t.get("key"),
                operator=t.get("operator", "Equal"),
                value=t.get("value") or None,
                effect=t.get("effect") or None,
            )
        if cfg.image_pull_secrets:
            k8s.set_image_pull_secrets(kfp_task, list(cfg.image_pull_secrets))
        for key, value in cfg.annotations.items():
            k8s.add_pod_annotation(kfp_task, key, value)
        for key, value in cfg.labels.items():
            k8s.add_pod_label(kfp_task, key, value)

    def add(self, task: Task, arguments: dict[str, Any]) -> Any:
        """The default compiled form: one pod running the op once."""
        inputs = {name: self._input_type(task, name) for name in arguments}
        component = self.component(task, inputs, task.op.return_type)
        return self.configure(component(**arguments), task)

    # -- wiring ----------------------------------------------------------------------------------
    def _input_type(self, task: Task, name: str) -> type:
        """Declared type of an input: the source's type when known, so KFP's type check passes
        (an int output may feed a float argument: the CLI parses ``3`` as ``3.0``)."""
        value = task.arguments[name]
        param = task.op.param(name)
        declared = param.type if param is not None else None
        if isinstance(value, Task):
            source = value.op.return_type
        elif isinstance(value, PipelineParam):
            source = value.type
        else:
            source = type(value) if type(value) in SUPPORTED else None
        return _kfp_type(source or declared)

    def arguments(self, task: Task, params: dict[str, Any]) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for name, value in task.arguments.items():
            if isinstance(value, Task):
                args[name] = self.kfp_tasks[value.name].outputs[OUTPUT]
            elif isinstance(value, PipelineParam):
                args[name] = params[value.name]
            elif value is not None:  # None means "use the op's default": leave the option out
                args[name] = value
        return args

    def build(self) -> Any:
        """The KFP pipeline (a graph component) for this hypermodel pipeline."""
        pipeline = self.pipeline
        names = [p.name for p in pipeline.params]

        def body(*values: Any) -> None:
            params = dict(zip(names, values, strict=True))
            for task in pipeline:
                args = self.arguments(task, params)
                hook = getattr(task.op, "compile_kfp", None)
                kfp_task = hook(self, task, args) if callable(hook) else self.add(task, args)
                upstream = [self.kfp_tasks[n] for n in task.upstream_after]
                if upstream:
                    kfp_task.after(*upstream)
                self.kfp_tasks[task.name] = kfp_task

        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        body.__name__ = pipeline.name
        signature = inspect.Signature(
            [
                inspect.Parameter(
                    p.name,
                    kind,
                    annotation=_kfp_type(p.type),
                    default=inspect.Parameter.empty if p.default is NO_DEFAULT else p.default,
                )
                for p in pipeline.params
            ]
        )
        setattr(body, "__signature__", signature)  # noqa: B010 - kfp reads it
        description = (
            pipeline.description or f"hypermodel pipeline {pipeline.name} of app {self.spec.name}"
        )
        graph = self.dsl.pipeline(name=pipeline.name, description=description)(body)
        self.warnings += self._notes()
        return graph

    def _notes(self) -> list[str]:
        notes = []
        if self.spec.settings.is_local:
            notes.append(
                f"the app's root '{self.spec.settings.root}' is a local directory: pods will not share it "
                "(outputs, datasets and runs stay inside each pod); compile with a gs:// or s3:// root "
                "(--root or $HML_ROOT) so that ops read each other's data"
            )
        if len(self.service_accounts) > 1:
            notes.append(
                "ops ask for different service accounts ("
                + ", ".join(sorted(self.service_accounts))
                + "); Kubeflow sets one per run: deploy uses --service-account"
            )
        return notes

    def compile(self, path: Path) -> None:
        self._compiler.Compiler().compile(pipeline_func=self.build(), package_path=str(path))


def _resources(kfp_task: Any, cfg: ContainerConfig) -> None:
    if cfg.cpu_request:
        kfp_task.set_cpu_request(cfg.cpu_request)
    if cfg.cpu_limit:
        kfp_task.set_cpu_limit(cfg.cpu_limit)
    if cfg.memory_request:
        kfp_task.set_memory_request(cfg.memory_request)
    if cfg.memory_limit:
        kfp_task.set_memory_limit(cfg.memory_limit)
    if cfg.gpu_limit:
        kfp_task.set_accelerator_type(cfg.gpu_vendor)
        kfp_task.set_accelerator_limit(cfg.gpu_limit)


def service_account(app: HmlApp, pipeline: Pipeline) -> str | None:
    """The one service account the ops ask for (Kubeflow sets it per run), if any."""
    found = {app.pipelines.container_config(pipeline, t).service_account for t in pipeline}
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def compile_pipeline(app: HmlApp, name: str, path: str | Path | None = None) -> CompileResult:
    """Compile pipeline ``name`` of ``app`` to KFP v2 IR YAML, written to ``path`` if given."""
    import tempfile

    spec = AppSpec.of(app)
    pipeline = spec.pipelines.get(name)
    start = time.perf_counter()
    builder = KfpBuilder(spec, pipeline)
    with tempfile.TemporaryDirectory(prefix="hml-kfp-") as tmp:
        target = Path(tmp) / f"{pipeline.name}.yaml"
        builder.compile(target)
        text = target.read_text()
    out = Path(path) if path is not None else None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return CompileResult(pipeline.name, text, out, builder.warnings, time.perf_counter() - start)
