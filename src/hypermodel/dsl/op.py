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

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        retries: int = 0,
        cache: bool = False,
        description: str | None = None,
        config: ContainerConfig | None = None,
    ) -> None:
        self.fn = fn
        self.name = check_name(name or fn.__name__, "op")
        where = f"op '{self.name}'"
        if retries < 0:
            raise DeclarationError(f"{where}: retries must be >= 0, got {retries}")
        self.retries = retries
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

    def execute(self, arguments: dict[str, Any]) -> Any:
        """Run the op's code with resolved arguments (the runner sets up the context first)."""
        return self.fn(**arguments)

    @functools.cached_property
    def code_fingerprint(self) -> str:
        """A digest of the op's source (falls back to bytecode), part of the cache key."""
        import hashlib

        try:
            text = inspect.getsource(self.fn).encode()
        except (OSError, TypeError):
            code = self.fn.__code__
            text = code.co_code + repr(code.co_consts).encode()
        return hashlib.sha256(text).hexdigest()

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by reference so process pools (fork or spawn) get the very same op.
        return (_load_op, (self.fn.__module__, self.fn.__qualname__))

    def __repr__(self) -> str:
        return f"<op {self.name}>"


def op(
    name: str | None = None,
    *,
    retries: int = 0,
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
    """Declare a pipeline op: ``@hml.op(retries=2, cache=True, cpu="1", memory="2Gi")``."""
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
        return Op(fn, name=name, retries=retries, cache=cache, description=description, config=cfg)

    return decorate
