"""The error hierarchy. Every error says what went wrong, names the thing, and says how to fix it."""

from __future__ import annotations


class HypermodelError(Exception):
    """Root of every error raised on purpose by hypermodel."""

    exit_code = 1


class DeclarationError(HypermodelError):
    """An app, op or pipeline was declared wrongly (duplicate name, bad signature...)."""


class UsageError(HypermodelError):
    """A user passed a bad argument, option or value; maps to exit code 2 on the CLI."""

    exit_code = 2


class OpFailedError(HypermodelError):
    """An op raised on its last attempt."""

    def __init__(self, task: str, attempts: int, traceback_text: str) -> None:
        super().__init__(f"op '{task}' failed after {attempts} attempt(s)")
        self.task = task
        self.attempts = attempts
        self.traceback_text = traceback_text


class StorageError(HypermodelError):
    """A bucket or file operation failed."""


class AlreadyExistsError(StorageError):
    """A create-if-absent write found the object already there."""


class NotFoundError(StorageError):
    """The object, output or dataset asked for does not exist."""


class UnsafeNameError(UsageError):
    """A user-supplied name would escape its root directory."""


class MissingExtraError(HypermodelError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'hypermodel[{extra}]'"
        )
