"""Hypergol's names, for porting a Hypergol project by changing its imports only.

``from hypergol import Task, SimpleTask, Source, BaseData, Dataset`` becomes
``from hypermodel.hypergol import Task, SimpleTask, Source, BaseData, Dataset``:

=========================  ==================================================================
Hypergol                   here
=========================  ==================================================================
``BaseData``               ``hml.BaseData`` (the same class)
``Dataset``                ``hml.Dataset`` (same arguments, same files on disk)
``DatasetFactory``         ``hypermodel.data.project.DatasetFactory``
``HypergolProject``        a ``hml.Project`` made from Hypergol's arguments (below)
``RepoData``               the ``repo`` record of a ``.def`` (``repoData=`` of a Dataset)
``Source``                 ``hml.Source``
``SimpleTask``             ``hml.OneToOne`` (one output per id; also ``hml.SimpleTask``)
``Task``                   ``hml.OneToMany`` (any number of outputs; NOT ``hml.Task``, which is
                           the pipeline DSL's task)
``Delayed``                ``hml.Delayed``
``Pipeline``               runs tasks in order (``Pipeline(tasks=[...]).run(threads=4)``)
``BaseTensorflowModel``,   ``hypermodel.tf`` (need TensorFlow: ``hypermodel[tf]``)
``BaseTensorflowModelBlock``, ``BaseBatchProcessor``, ``TensorflowModelManager``
the generated FastAPI      ``output_route(inference_app, ...)`` in an ``@hml.inference``
server's ``POST /output``  initialiser: a JSON list of records in, the list of outputs out,
                           header ``x-model-long-name`` (also ``hml.output_route``)
=========================  ==================================================================

Names resolve on first use: importing this module imports neither the dataset machinery nor
TensorFlow.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .data.dataset import Dataset
    from .data.model import BaseData
    from .data.project import DatasetFactory
    from .data.project import Project as HypergolProject
    from .data.tasks import Delayed, OneToMany, OneToOne, Source
    from .serving.hypergol_contract import output_route
    from .tf.batch import BaseBatchProcessor
    from .tf.manager import TensorflowModelManager
    from .tf.model import BaseTensorflowModel, BaseTensorflowModelBlock

    SimpleTask = OneToOne
    Task = OneToMany

# Hypergol name -> (module, name there)
_NAMES: dict[str, tuple[str, str]] = {
    "BaseData": ("hypermodel.data.model", "BaseData"),
    "Dataset": ("hypermodel.data.dataset", "Dataset"),
    "DatasetFactory": ("hypermodel.data.project", "DatasetFactory"),
    "Source": ("hypermodel.data.tasks", "Source"),
    "SimpleTask": ("hypermodel.data.tasks", "OneToOne"),
    "Task": ("hypermodel.data.tasks", "OneToMany"),
    "Delayed": ("hypermodel.data.tasks", "Delayed"),
    "BaseTensorflowModel": ("hypermodel.tf", "BaseTensorflowModel"),
    "BaseTensorflowModelBlock": ("hypermodel.tf", "BaseTensorflowModelBlock"),
    "BaseBatchProcessor": ("hypermodel.tf", "BaseBatchProcessor"),
    "TensorflowModelManager": ("hypermodel.tf", "TensorflowModelManager"),
    "output_route": ("hypermodel.serving.hypergol_contract", "output_route"),
}


def __getattr__(name: str) -> Any:
    if name == "HypergolProject":
        return _hypergol_project_class()
    where = _NAMES.get(name)
    if where is None:
        raise AttributeError(f"module 'hypermodel.hypergol' has no attribute {name!r}")
    return getattr(importlib.import_module(where[0]), where[1])


@dataclass(frozen=True)
class RepoData:
    """Hypergol's ``RepoData``: the code state recorded in a dataset's ``.def`` (its
    ``comitter`` spelling kept); pass it as ``Dataset(..., repoData=RepoData(...))``."""

    branchName: str
    commitHash: str
    commitMessage: str
    comitterName: str
    comitterEmail: str

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> RepoData:
        return cls(**{k: str(data.get(k, "")) for k in cls.__dataclass_fields__})

    @classmethod
    def get_dummy(cls) -> RepoData:
        return cls("dummy", "0000000000000000000000000000000000000000", "dummy", "dummy", "dummy")

    @classmethod
    def from_repo(cls, path: str | os.PathLike[str] | None = None) -> RepoData:
        """The git state of the repository at ``path`` (default: the working directory)."""
        from .data.lineage import repo_state

        return cls.from_data(repo_state(path))


class Pipeline:
    """Hypergol's ``Pipeline(tasks=[...])``: ``run(threads=N)`` runs the tasks in order, each
    over ``threads`` worker processes (hypermodel tasks are also ops of ``@hml.pipeline``)."""

    def __init__(self, tasks: Iterable[Any], cleanTasks: Iterable[Any] = (), **_: Any) -> None:
        self.tasks = list(tasks)
        self.cleanTasks = list(cleanTasks)

    def run(self, threads: int = 1) -> list[Any]:
        results = []
        for task in [*self.tasks, *self.cleanTasks]:
            if getattr(task, "workers", None) is None:
                task.workers = threads
            results.append(task())
        return results


_PROJECT_CLASS: type | None = None


def _hypergol_project_class() -> type:
    """``HypergolProject`` derives from ``hml.Project``, so it is built on first use."""
    global _PROJECT_CLASS  # a cache of a class, built once
    if _PROJECT_CLASS is not None:
        return _PROJECT_CLASS
    from .data.project import DatasetFactory, Project
    from .names import snake_case

    class HypergolDatasetFactory(DatasetFactory):
        """Datasets of the project that record its repository's state (``repoData``), as
        Hypergol's do, wherever the code that writes them runs from."""

        def __init__(self, project: Any) -> None:
            super().__init__(project)
            self._repoData = project.repoData

        def get(self, dataType: Any, name: str, *args: Any, **options: Any) -> Any:
            options.setdefault("repoData", self._repoData.to_data())
            return super().get(dataType, name, *args, **options)

    class HypergolProject(Project):
        """Hypergol's ``HypergolProject(projectDirectory=..., dataDirectory=...)``: the project
        is named after its directory, the branch is the repository's current branch, and
        ``datasetFactory.get(dataType=..., name=...)`` makes its datasets."""

        def __init__(
            self,
            projectDirectory: str | os.PathLike[str] | None = None,
            dataDirectory: str | os.PathLike[str] = ".",
            chunkCount: int = 16,
            dryrun: bool | None = None,
            force: bool | None = None,
            repoManager: Any = None,
            *,
            branch: str | None = None,
        ) -> None:
            directory = Path(projectDirectory or os.getcwd()).resolve()
            self.projectDirectory = str(directory)
            self.dataDirectory = str(dataDirectory)
            self.dryrun = bool(dryrun)
            self.force = bool(force)
            self.repoData = RepoData.from_repo(directory)
            if branch is None:
                branch = self.repoData.branchName
                if branch in ("", "none", "HEAD"):
                    branch = "main"
                branch = re.sub(r"[^A-Za-z0-9_.-]+", "_", branch).strip(".") or "main"
            super().__init__(
                dataDirectory, snake_case(directory.name), branch, chunkCount=chunkCount
            )
            self.datasets = self.datasetFactory = HypergolDatasetFactory(self)

    _PROJECT_CLASS = HypergolProject
    return HypergolProject


__all__ = [
    "BaseBatchProcessor",
    "BaseData",
    "BaseTensorflowModel",
    "BaseTensorflowModelBlock",
    "Dataset",
    "DatasetFactory",
    "Delayed",
    "HypergolProject",
    "Pipeline",
    "RepoData",
    "SimpleTask",
    "Source",
    "Task",
    "TensorflowModelManager",
    "output_route",
]
