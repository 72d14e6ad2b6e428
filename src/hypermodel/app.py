"""HmlApp: the one registry. Pipelines, op configurators, inference and env live on the instance."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .dsl.config import ContainerConfig
from .dsl.pipeline import Pipeline, Task
from .errors import DeclarationError
from .names import check_name
from .settings import Settings

if TYPE_CHECKING:
    import click

    from .local.runner import RunResult
    from .local.spec import LocalApp
    from .serving.app import HmlInferenceApp

#: Names of the app's built-in command groups (a command of the user's may not take them).
RESERVED_COMMANDS = ("image", "inference", "pipelines")

OpConfigurator = Callable[[ContainerConfig], "ContainerConfig | None"]


class HmlPipelineApp:
    """The pipelines of one app, and the configurators applied to every op container."""

    def __init__(self, app: HmlApp) -> None:
        self.app = app
        self._pipelines: dict[str, Pipeline] = {}
        self._configurators: list[OpConfigurator] = []

    # -- registration --------------------------------------------------------------------------
    def register(self, pipeline: Pipeline) -> Pipeline:
        if pipeline.name in self._pipelines:
            raise DeclarationError(
                f"app '{self.app.name}' already has a pipeline named '{pipeline.name}'; "
                "give one of them another name with @hml.pipeline(..., name=...)"
            )
        self._pipelines[pipeline.name] = pipeline
        return pipeline

    def pipeline(
        self,
        name: str | None = None,
        *,
        cron: str | None = None,
        experiment: str | None = None,
        description: str | None = None,
    ) -> Callable[[Callable[..., Any]], Pipeline]:
        def decorate(fn: Callable[..., Any]) -> Pipeline:
            return self.register(
                Pipeline(fn, name=name, cron=cron, experiment=experiment, description=description)
            )

        return decorate

    def deploy_op(self, fn: OpConfigurator) -> OpConfigurator:
        """Register a configurator called with every op's container config (``@hml.deploy_op``)."""
        self._configurators.append(fn)
        return fn

    # -- lookup -------------------------------------------------------------------------------
    def get(self, name: str) -> Pipeline:
        try:
            return self._pipelines[name]
        except KeyError:
            known = ", ".join(self._pipelines) or "none declared"
            raise DeclarationError(
                f"app '{self.app.name}' has no pipeline '{name}' (pipelines: {known})"
            ) from None

    def __getitem__(self, name: str) -> Pipeline:
        return self.get(name)

    def __iter__(self) -> Iterator[Pipeline]:
        return iter(self._pipelines.values())

    def __len__(self) -> int:
        return len(self._pipelines)

    def __contains__(self, name: object) -> bool:
        return name in self._pipelines

    def container_config(self, pipeline: Pipeline, task: Task) -> ContainerConfig:
        """Everything that configures ``task``'s container: app env, op, task, configurators."""
        cfg = ContainerConfig(name=task.name, image=self.app.image_url, env=dict(self.app.env))
        cfg = cfg.merged(task.container_config())
        cfg.name = task.name
        for configurator in self._configurators:
            result = configurator(cfg)
            cfg = result if isinstance(result, ContainerConfig) else cfg
        return cfg

    # -- running (Python API; the CLI calls the same functions) --------------------------------
    def run_all(self, name: str, params: dict[str, Any] | None = None, **options: Any) -> RunResult:
        from .local.runner import run_pipeline

        return run_pipeline(self.app, self.get(name), params or {}, **options)

    def run_op(
        self, name: str, task: str, arguments: dict[str, Any] | None = None, **options: Any
    ) -> Any:
        from .local.runner import run_single

        return run_single(self.app, self.get(name), task, arguments or {}, **options)


class HmlApp:
    """One ML application: its pipelines, its inference server, its settings and its CLI."""

    def __init__(
        self,
        name: str,
        platform: str | None = None,
        image_url: str | None = None,
        package_entrypoint: str | None = None,
        inference_port: int = 8000,
        k8s_namespace: str = "default",
        *,
        root: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.name = check_name(name, "app")
        self.platform = platform or "local"
        self.image_url = image_url
        self.package_entrypoint = package_entrypoint or name
        self.inference_port = int(inference_port)
        self.k8s_namespace = k8s_namespace
        self.env: dict[str, str] = {}
        self.models: dict[str, Any] = {}
        self.commands: dict[str, click.Command] = {}
        self.settings = settings or Settings.from_env(root=root)
        self.pipelines = HmlPipelineApp(self)
        self._inference: HmlInferenceApp | None = None

    @property
    def inference(self) -> HmlInferenceApp:
        if self._inference is None:
            from .serving.app import HmlInferenceApp

            self._inference = HmlInferenceApp(self)
        return self._inference

    def with_env(self, name: str, value: Any, *, not_secret: bool = False) -> HmlApp:
        """An env var for every op container and the inference Deployment (and local runs).
        A secret-looking one is refused (see ``ContainerConfig.with_env``): use a Kubernetes
        secret through ``with_secret_env`` in a configurator."""
        ContainerConfig().with_env(name, value, not_secret=not_secret)  # validates it
        self.env[name] = str(value)
        return self

    def register_model(self, name: str, model: Any) -> Any:
        check_name(name, "model")
        if name in self.models:
            raise DeclarationError(f"app '{self.name}' already has a model named '{name}'")
        self.models[name] = model
        return model

    def get_model(self, name: str) -> Any:
        try:
            return self.models[name]
        except KeyError:
            raise DeclarationError(
                f"app '{self.name}' has no model '{name}' (models: {', '.join(self.models) or 'none'})"
            ) from None

    def configure(self, **overrides: Any) -> HmlApp:
        """Replace settings (e.g. ``root=``) — used by the CLI's global options and by tests."""
        from dataclasses import replace

        self.settings = replace(
            self.settings, **{k: v for k, v in overrides.items() if v is not None}
        )
        return self

    def storage(self) -> Any:
        from .storage import open_storage

        return open_storage(self.settings.root)

    def local_app(self) -> LocalApp:
        """The few fields the local runner reads, frozen (with the settings of now)."""
        from .local.spec import LocalApp

        return LocalApp(
            name=self.name,
            package_entrypoint=self.package_entrypoint,
            image_url=self.image_url,
            settings=self.settings,
            container_config=self.pipelines.container_config,
        )

    def command(
        self, name: str | None = None, **attrs: Any
    ) -> Callable[[Callable[..., Any]], click.Command]:
        """Add a command of your own to the app's console script::

        @app.command()
        @hml.option("--rows", type=int, default=10)
        @hml.pass_context
        def seed(ctx, rows):       # `<app> seed --rows 5`; ctx.obj is the app
            ...
        """

        import click

        def decorate(fn: Callable[..., Any]) -> click.Command:
            cmd = click.command(name, **attrs)(fn)
            assert cmd.name is not None
            if cmd.name in self.commands or cmd.name in RESERVED_COMMANDS:
                raise DeclarationError(
                    f"app '{self.name}' already has a command named '{cmd.name}': pick another "
                    "name with @app.command('other-name')"
                )
            self.commands[cmd.name] = cmd
            return cmd

        return decorate

    def cli(self) -> click.Group:
        """A fresh click group for this app (two apps never share commands)."""
        from .cli.app_cli import build_app_cli

        return build_app_cli(self)

    def start(self, argv: list[str] | None = None) -> None:
        """The package's console script: parse ``argv`` (default ``sys.argv``) and run."""
        from .cli.errors import run_cli

        run_cli(self.cli(), argv, prog_name=self.package_entrypoint)

    def __repr__(self) -> str:
        return f"<HmlApp {self.name}: {len(self.pipelines)} pipeline(s)>"


def environ_with(env: dict[str, str]) -> dict[str, str]:
    merged = dict(os.environ)
    merged.update(env)
    return merged
