"""``@hml.op()``: a plain function that becomes a pipeline step."""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from ..errors import DeclarationError
from ..names import check_name
from .build import current_builder
from .config import ContainerConfig
from .types import Param, params_of, return_type_of

#: How long to wait between the attempts of a failing op (``@hml.op(backoff=...)``).
BACKOFFS = ("exponential", "fixed", "none")


def check_backoff(
    where: str, backoff: str, backoff_s: float, max_backoff_s: float
) -> tuple[str, float, float]:
    """The validated retry backoff of an op; a DeclarationError naming the op and the fix."""
    example = '@hml.op(retries=3, backoff="exponential", backoff_s=1, max_backoff_s=60)'
    if backoff not in BACKOFFS:
        raise DeclarationError(
            f"{where}: backoff must be one of {', '.join(map(repr, BACKOFFS))}, got {backoff!r} "
            f"(e.g. {example})"
        )
    for name, value in (("backoff_s", backoff_s), ("max_backoff_s", max_backoff_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e9:
            raise DeclarationError(
                f"{where}: {name} must be a number of seconds >= 0, got {value!r} (e.g. {example})"
            )
    if backoff == "exponential" and max_backoff_s < backoff_s:
        raise DeclarationError(
            f"{where}: max_backoff_s ({max_backoff_s}) is below backoff_s ({backoff_s}); "
            "raise max_backoff_s or lower backoff_s"
        )
    return backoff, float(backoff_s), float(max_backoff_s)


def _load_op(module: str, qualname: str) -> Op:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, Op):
        raise TypeError(f"{module}.{qualname} is not an op")
    return obj


class Op:
    """A step: a function with typed arguments, retry/cache policy and container settings.

    Called inside a pipeline function it adds a task to that pipeline and returns the
    :class:`Task`; called anywhere else it simply runs the function.
    """

    #: Ops whose execution fans out over their own process pool run in the parent process.
    runs_in_parent = False
    #: The wait between attempts (class defaults also serve ops that set up their own state).
    backoff = "exponential"
    backoff_s = 1.0
    max_backoff_s = 60.0

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        retries: int = 0,
        cache: bool = False,
        description: str | None = None,
        config: ContainerConfig | None = None,
        backoff: str = "exponential",
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        self.fn = fn
        self.name = check_name(name or fn.__name__, "op")
        where = f"op '{self.name}'"
        if retries < 0:
            raise DeclarationError(f"{where}: retries must be >= 0, got {retries}")
        self.retries = retries
        self.backoff, self.backoff_s, self.max_backoff_s = check_backoff(
            where, backoff, backoff_s, max_backoff_s
        )
        self.cache = cache
        self.description = (description or inspect.getdoc(fn) or "").strip()
        self.params: tuple[Param, ...] = params_of(fn, where)
        self.return_type = return_type_of(fn, where)
        self.config = config or ContainerConfig()
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    # -- declaration ---------------------------------------------------------------------------
    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = current_builder()
        if builder is None:
            return self.fn(*args, **kwargs)
        return builder.add_task(self, args, kwargs)

    def backoff_delay(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt ``failed_attempt`` (1-based) failed, before the next."""
        if self.backoff == "none" or self.backoff_s <= 0:
            return 0.0
        if self.backoff == "fixed":
            return self.backoff_s
        return min(self.backoff_s * 2.0 ** min(failed_attempt - 1, 60), self.max_backoff_s)

    def execute(self, arguments: dict[str, Any]) -> Any:
        """Run the op's code with resolved arguments (the runner sets up the context first)."""
        return self.fn(**arguments)

    @property
    def code_fingerprint(self) -> str:
        """The digest of the code this op can reach (its source, every module of its top-level
        package, the hypermodel version): part of the cache key, and of ``--hml-code`` in the
        compiled pods. See ``hypermodel.provenance.code_digest``."""
        from ..provenance import code_digest

        return code_digest(self.fn)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by reference so process pools (fork or spawn) get the very same op.
        return (_load_op, (self.fn.__module__, self.fn.__qualname__))

    def __repr__(self) -> str:
        return f"<op {self.name}>"


def op(
    name: str | None = None,
    *,
    retries: int = 0,
    backoff: str = "exponential",
    backoff_s: float = 1.0,
    max_backoff_s: float = 60.0,
    cache: bool = False,
    cpu: str | None = None,
    memory: str | None = None,
    gpu: int | None = None,
    cpu_limit: str | None = None,
    memory_limit: str | None = None,
    image: str | None = None,
    env: dict[str, Any] | None = None,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], Op]:
    """Declare a pipeline op: ``@hml.op(retries=2, cache=True, cpu="1", memory="2Gi")``.

    A failing op is retried ``retries`` times; between attempts it waits ``backoff_s`` seconds,
    doubled after each failure up to ``max_backoff_s`` (``backoff="exponential"``, the default),
    always ``backoff_s`` (``"fixed"``) or not at all (``"none"``)."""
    if callable(name):  # used bare: @hml.op
        return op()(name)  # type: ignore[return-value]

    def decorate(fn: Callable[..., Any]) -> Op:
        cfg = ContainerConfig().with_resources(
            cpu=cpu, memory=memory, gpu=gpu, cpu_limit=cpu_limit, memory_limit=memory_limit
        )
        if image:
            cfg.with_image(image)
        for key, value in (env or {}).items():
            cfg.with_env(key, value)
        return Op(
            fn,
            name=name,
            retries=retries,
            cache=cache,
            description=description,
            config=cfg,
            backoff=backoff,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
        )

    return decorate
