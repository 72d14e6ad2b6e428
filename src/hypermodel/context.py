"""What an op knows about the run it is part of: ``hml.context()`` inside an op.

The runner (locally or in a Kubeflow pod) builds one ``OpContext`` per attempt and enters it
with ``op_context``; what runs inside the op (datasets, tasks, tracking, models) reads the
bucket, the run and the app's settings from it rather than from the environment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HypermodelError
from .settings import Settings

if TYPE_CHECKING:
    from .storage import Storage


@dataclass
class OpContext:
    """Set by the runner (locally or in a Kubeflow pod) around each op execution."""

    app: str
    pipeline: str
    task: str
    op: str
    run_id: str
    attempt: int
    root: str
    workdir: Path
    output_key: str
    force: bool = False
    kfp_run_id: str | None = None
    kfp_task_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    input_datasets: list[str] = field(default_factory=list)
    output_datasets: list[str] = field(default_factory=list)
    # checksum -> lineage record (.def + chkFileChecksum) of each dataset read, for writers
    dataset_records: dict[str, Any] = field(default_factory=dict, repr=False)
    # "<storage url>|<project>/<branch>/<name>" -> the version this op published
    dataset_versions: dict[str, str] = field(default_factory=dict, repr=False)
    # False under --no-cache: tasks rebuild their output instead of reusing an equal one
    use_cache: bool = True
    # the op's bound arguments (tracked as params)
    arguments: dict[str, Any] = field(default_factory=dict)
    output: Any = None  # the op's JSON output once it returned (tracked by tracking.auto)
    # the app's settings (``root`` above is the bucket this op uses; ``workers`` sizes tasks)
    settings: Settings = field(default_factory=Settings, repr=False)
    _storage: Storage | None = field(default=None, repr=False)

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            from .storage import open_storage

            self._storage = open_storage(self.root)
        return self._storage

    def to_env(self) -> dict[str, str]:
        return {
            "HML_RUN_ID": self.run_id,
            "HML_PIPELINE": self.pipeline,
            "HML_TASK": self.task,
            "HML_ATTEMPT": str(self.attempt),
        }


# Set only while an op runs: the runner's context manager sets and resets it.
_CURRENT: ContextVar[OpContext | None] = ContextVar("hml_op_context", default=None)


def context() -> OpContext:
    """The running op's context; raises outside an op."""
    ctx = _CURRENT.get()
    if ctx is None:
        raise HypermodelError(
            "hml.context() was called outside a running op; it is available only while the "
            "runner executes an op (`<app> pipelines <p> run <op>` or run-all)"
        )
    return ctx


def maybe_context() -> OpContext | None:
    return _CURRENT.get()


def enter_context(ctx: OpContext) -> None:
    """Make ``ctx`` the running op's context for the rest of this process (a worker process
    started for the op)."""
    _CURRENT.set(ctx)


@contextlib.contextmanager
def op_context(ctx: OpContext | None) -> Iterator[OpContext | None]:
    """``ctx`` is the running op's context inside the block (None: no op is running)."""
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)
