"""The error hierarchy. Every error says what went wrong, names the thing, and says how to fix it.

The root and the errors every layer shares live here; each package keeps its own errors beside
the code that raises them. The whole tree (module in brackets; a second parent after ``+``)::

    HypermodelError                      the root: the CLI maps it to one line and exit_code
    ├── DeclarationError                 an app, op, pipeline or model declared wrongly
    │   └── DataModelError               [data.errors] a BaseData class declared wrongly (+DatasetError)
    ├── UsageError                       a bad argument, option or value (exit code 2)
    │   ├── UnsafeNameError              a name that would escape its root directory
    │   ├── DatasetUsageError            [data.errors] a Dataset used wrongly (+DatasetError)
    │   │   └── StreamLengthError        [data.io.stream] len() of a stream that cannot know it
    │   ├── DirtyRepoError               [data.errors] uncommitted code behind a dataset (+DatasetError)
    │   ├── DirtyTreeError               [images] an image built from uncommitted code
    │   ├── ReadOnlyRunError             [tracking.run] a write to a run attached read-only
    │   └── ScaffoldError                [scaffold.fields] a generator given a bad name or field
    ├── OpFailedError                    an op raised on its last attempt
    ├── StorageError                     a bucket or file operation failed
    │   ├── AlreadyExistsError           a create-if-absent write found the object there
    │   ├── NotFoundError                the object, output or dataset does not exist
    │   │   └── DatasetNotFoundError     [data.errors] (+DatasetError)
    │   ├── OutputNotStoredError         [local.store] an op's output kept in its workdir instead
    │   └── RetriesExhausted             [local.store] the bucket kept failing
    ├── MissingExtraError                an optional dependency is missing: names the extra
    ├── DatasetError                     [data.errors] the root of dataset errors
    │   ├── DatasetCorruptError          a file does not match its checksum or format
    │   ├── DatasetExistsError           datasets are immutable
    │   │   └── DatasetBusyError         another writer holds the publish claim
    │   ├── DatasetNotClosedError        a writer died before the .chk
    │   ├── DatasetInUseError            [data.gc] a version something still references
    │   ├── NoIdError                    a data model without an id
    │   ├── CacheableTimeoutError        [data.cacheable] another process's build did not finish
    │   └── TaskFailedError              [data.jobs] a task's chunk job or step failed
    ├── RunCancelled                     [local.results] Ctrl-C during a local run
    ├── ImageError                       [images] docker build or push failed
    ├── KubeflowError                    [kubeflow.deploy] the Kubeflow Pipelines API refused
    ├── KubernetesError                  [k8s.errors] the Kubernetes API refused
    │   ├── ClusterUnreachableError      [k8s.errors] no cluster at the configured address
    │   ├── RejectedError                [k8s.errors] a manifest the API server rejected
    │   └── RolloutError                 [k8s.rollout] a rollout that cannot finish
    │       └── RolloutTimeoutError      [k8s.rollout] it did not finish in time
    ├── AliasConflictError               [models.aliases] a model alias taken by another version
    ├── ModelIntegrityError              [serving.errors] a model file that is not what was recorded
    ├── ModelNotLoadedError              [serving.errors] a route called before its model loaded
    └── RequestError                     [serving.errors] a bad request: JSON 4xx, never a trace

A test (tests/unit/spine/test_errors_doc.py) checks that every subclass of HypermodelError in
the package is named in this tree.
"""

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
