"""Pipelines: a function whose body calls ops, recorded once at declaration as a graph of tasks."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import DeclarationError
from ..names import check_name
from .build import building
from .config import ContainerConfig
from .op import Op
from .types import NO_DEFAULT, Param, check_value, params_of


@dataclass(frozen=True)
class PipelineParam:
    """A pipeline parameter used as an op argument (resolved when the pipeline runs)."""

    name: str
    type: type | None
    default: Any = NO_DEFAULT

    def __repr__(self) -> str:
        return f"<pipeline param {self.name}>"


class Task:
    """One use of an op in a pipeline. Passing it to another op makes a data dependency."""

    def __init__(self, name: str, op: Op, arguments: dict[str, Any]) -> None:
        self.name = name
        self.op = op
        self.arguments = arguments
        self.upstream_after: list[str] = []
        self.config = ContainerConfig()
        self.retries = op.retries
        self.cache = op.cache

    # -- kfp-style fluent configuration -------------------------------------------------------
    def after(self, *tasks: Task) -> Task:
        for t in tasks:
            if not isinstance(t, Task):
                raise DeclarationError(f"task '{self.name}'.after() takes tasks, got {t!r}")
            if t.name not in self.upstream_after:
                self.upstream_after.append(t.name)
        return self

    def set_retry(self, retries: int) -> Task:
        self.retries = int(retries)
        return self

    def set_caching(self, enabled: bool) -> Task:
        self.cache = bool(enabled)
        return self

    def __getattr__(self, attr: str) -> Any:
        # with_env / with_resources / with_secret ... configure this task's container only.
        if attr.startswith("with_"):
            method = getattr(self.config, attr)

            def chain(*args: Any, **kwargs: Any) -> Task:
                method(*args, **kwargs)
                return self

            return chain
        raise AttributeError(attr)

    @property
    def output(self) -> Task:
        return self

    def container_config(self) -> ContainerConfig:
        """The op's own settings overridden by this task's."""
        return self.op.config.merged(self.config)

    def dependencies(self) -> list[str]:
        """Names of upstream tasks: data dependencies first, then explicit ``.after``."""
        deps: list[str] = []
        for v in self.arguments.values():
            if isinstance(v, Task) and v.name not in deps:
                deps.append(v.name)
        deps += [n for n in self.upstream_after if n not in deps]
        return deps

    def __repr__(self) -> str:
        return f"<task {self.name} ({self.op.name})>"


class PipelineBuilder:
    def __init__(self, pipeline_name: str) -> None:
        self.pipeline_name = pipeline_name
        self.tasks: dict[str, Task] = {}

    def add_task(self, op: Op, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Task:
        where = f"pipeline '{self.pipeline_name}', op '{op.name}'"
        if len(args) > len(op.params):
            raise DeclarationError(f"{where}: takes {len(op.params)} arguments, got {len(args)}")
        bound = dict(zip((p.name for p in op.params), args, strict=False))
        for key, value in kwargs.items():
            if op.param(key) is None:
                known = ", ".join(p.name for p in op.params) or "none"
                raise DeclarationError(f"{where}: unknown argument '{key}' (arguments: {known})")
            if key in bound:
                raise DeclarationError(f"{where}: argument '{key}' given twice")
            bound[key] = value
        for p in op.params:
            if p.name in bound:
                bound[p.name] = _check_binding(bound[p.name], p, f"{where} argument '{p.name}'")
        name = op.name
        n = 2
        while name in self.tasks:
            name = f"{op.name}-{n}"
            n += 1
        task = Task(name, op, bound)
        self.tasks[name] = task
        return task


def _check_binding(value: Any, param: Param, where: str) -> Any:
    if isinstance(value, Task):
        produced = value.op.return_type
        if (
            param.type
            and produced
            and produced is not param.type
            and not (param.type is float and produced is int)
        ):
            raise DeclarationError(
                f"{where}: expects {param.type_name} but op '{value.op.name}' returns {produced.__name__}"
            )
        return value
    if isinstance(value, PipelineParam):
        if (
            param.type
            and value.type
            and value.type is not param.type
            and not (param.type is float and value.type is int)
        ):
            raise DeclarationError(
                f"{where}: expects {param.type_name} but pipeline parameter '{value.name}' is {value.type.__name__}"
            )
        return value
    try:
        return check_value(value, param.type, where)
    except Exception as exc:
        raise DeclarationError(str(exc)) from None


class Pipeline:
    """A named graph of tasks with parameters, a schedule and an experiment."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        cron: str | None = None,
        experiment: str | None = None,
        description: str | None = None,
    ) -> None:
        self.fn = fn
        self.name = check_name(name or fn.__name__, "pipeline")
        self.cron = cron
        self.experiment = experiment
        self.description = (description or inspect.getdoc(fn) or "").strip()
        self.params: tuple[Param, ...] = params_of(fn, f"pipeline '{self.name}'")
        self.tasks: dict[str, Task] = self._build()

    def _build(self) -> dict[str, Task]:
        builder = PipelineBuilder(self.name)
        with building(builder):
            placeholders = {p.name: PipelineParam(p.name, p.type, p.default) for p in self.params}
            self.fn(**placeholders)
        if not builder.tasks:
            raise DeclarationError(
                f"pipeline '{self.name}' calls no ops; call @hml.op functions in its body"
            )
        for task in builder.tasks.values():
            for p in task.op.params:
                if p.name not in task.arguments and p.required:
                    raise DeclarationError(
                        f"pipeline '{self.name}', op '{task.op.name}': required argument '{p.name}' "
                        "is not given; pass a literal, a pipeline parameter or another op's output"
                    )
        tasks = builder.tasks
        self._order = topological_order(self.name, tasks)
        return tasks

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def order(self) -> list[str]:
        """Task names in a dependency-respecting order (stable: declaration order breaks ties)."""
        return list(self._order)

    def task(self, name: str) -> Task:
        try:
            return self.tasks[name]
        except KeyError:
            known = ", ".join(self.tasks)
            raise DeclarationError(
                f"pipeline '{self.name}' has no op '{name}' (ops: {known})"
            ) from None

    def downstream(self, name: str) -> set[str]:
        """Every task that depends, directly or not, on ``name``."""
        found: set[str] = set()
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for t in self.tasks.values():
                if current in t.dependencies() and t.name not in found:
                    found.add(t.name)
                    frontier.append(t.name)
        return found

    def __iter__(self) -> Iterator[Task]:
        return (self.tasks[n] for n in self._order)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise DeclarationError(
            f"pipeline '{self.name}' is not called directly; run it with "
            f"`<app> pipelines {self.name} run-all` or app.pipelines.run_all('{self.name}')"
        )

    def __repr__(self) -> str:
        return f"<pipeline {self.name}: {' -> '.join(self._order)}>"


def topological_order(pipeline: str, tasks: dict[str, Task]) -> list[str]:
    """Kahn's algorithm; raises on unknown upstream names and cycles."""
    indegree = {name: 0 for name in tasks}
    for task in tasks.values():
        for dep in task.dependencies():
            if dep not in tasks:
                raise DeclarationError(
                    f"pipeline '{pipeline}': task '{task.name}' runs after unknown task '{dep}'"
                )
            indegree[task.name] += 1
    ready = [n for n in tasks if indegree[n] == 0]
    order: list[str] = []
    while ready:
        current = ready.pop(0)
        order.append(current)
        for task in tasks.values():
            if current in task.dependencies():
                indegree[task.name] -= 1
                if indegree[task.name] == 0:
                    ready.append(task.name)
    if len(order) != len(tasks):
        cyclic = sorted(set(tasks) - set(order))
        raise DeclarationError(
            f"pipeline '{pipeline}' has a dependency cycle among: {', '.join(cyclic)}"
        )
    return order
