"""Datasets from code without knowing paths: a project-level factory and listing.

project = Project(".hml", project="wines", branch="main")
wines = project.datasets.get(dataType=Wine, name="wines")
for info in project.datasets.list():
    print(info.name, info.checksum)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..storage import Storage, resolve_storage
from . import format as fmt
from .dataset import Dataset
from .errors import DatasetNotFoundError

if TYPE_CHECKING:
    from .model import BaseData


@dataclass(frozen=True)
class DatasetInfo:
    """A published dataset found in a storage (from its .def and .chk): the plain dataset
    (``version`` None) or one version of it (files under ``<project>/<branch>@<version>/``)."""

    project: str
    branch: str
    name: str
    dataType: str
    chunkCount: int
    checksum: str
    creationTime: str
    directory: str
    definition: dict[str, Any]
    version: str | None = None

    @property
    def path(self) -> str:
        """``project/branch/name``: the stable name, the same for every version."""
        return f"{self.project}/{self.branch}/{self.name}"

    @property
    def ref(self) -> str:
        """``project/branch/name@version`` (the path alone for the plain dataset)."""
        return f"{self.path}@{self.version}" if self.version else self.path


def split_branch(directory: str) -> tuple[str, str | None]:
    """A branch directory: ``main@<version>`` -> ``("main", "<version>")``, ``main`` ->
    ``("main", None)``. A directory with an empty side of the ``@`` is a branch of its own."""
    from .versions import split_ref

    branch, version = split_ref(directory)
    if not branch or not version:
        return directory, None
    return branch, version


def find_datasets(storage: Storage, pattern: str | None = None) -> Iterator[DatasetInfo]:
    """Every published dataset and dataset version under the storage root
    (``<project>/<branch>[@<version>]/<name>/<name>.chk``), optionally those whose
    ``project/branch/name`` or ``project/branch/name@version`` matches the regular expression
    ``pattern``."""
    regex = re.compile(pattern) if pattern else None
    for key in storage.list():
        parts = key.split("/")
        if len(parts) != 4 or parts[3] != fmt.chk_file_name(parts[2]):
            continue
        project, directory, name = parts[:3]
        branch, version = split_branch(directory)
        if regex:
            path = f"{project}/{branch}/{name}"
            if not (regex.search(path) or (version and regex.search(f"{path}@{version}"))):
                continue
        info = _info(storage, project, branch, name, version)
        if info is not None:
            yield info


def _info(
    storage: Storage, project: str, branch: str, name: str, version: str | None = None
) -> DatasetInfo | None:
    base = f"{project}/{branch}@{version}/{name}/" if version else f"{project}/{branch}/{name}/"
    try:
        chk_text = storage.read_text(base + fmt.chk_file_name(name))
        definition = json.loads(storage.read_text(base + fmt.def_file_name(name)))
    except (OSError, ValueError, DatasetNotFoundError):
        return None
    except Exception:  # a half-deleted dataset must not break a listing
        return None
    return DatasetInfo(
        project=project,
        branch=branch,
        name=name,
        dataType=str(definition.get("dataType", "?")),
        chunkCount=int(definition.get("chunkCount", 0)),
        checksum=fmt.sha1_text(chk_text),
        creationTime=str(definition.get("creationTime", "")),
        directory=base.rstrip("/"),
        definition=definition,
        version=version,
    )


def find_dataset(storage: Storage, name_or_checksum: str) -> DatasetInfo:
    """One dataset by ``name``, ``project/branch/name`` (either with ``@VERSION``) or (a unique
    prefix of) its checksum. By name alone: the version a read by name sees (the newest
    published version, else the plain dataset); see ``catalog``."""
    from .catalog import catalog, resolve

    return resolve(catalog(storage), name_or_checksum, storage.url)[1]


class DatasetFactory:
    """Makes the project's datasets from a type and a name."""

    def __init__(self, project: Project) -> None:
        self._project = project

    def get(
        self,
        dataType: type[BaseData],
        name: str,
        branch: str | None = None,
        chunkCount: int | None = None,
        **options: Any,
    ) -> Dataset:
        p = self._project
        return Dataset(
            dataType=dataType,
            storage=p.storage,
            project=p.project,
            branch=branch or p.branch,
            name=name,
            chunkCount=chunkCount or p.chunkCount,
            **options,
        )

    def list(self, pattern: str | None = None, all_branches: bool = False) -> list[DatasetInfo]:
        p = self._project
        return [
            d
            for d in find_datasets(p.storage, pattern)
            if d.project == p.project and (all_branches or d.branch == p.branch)
        ]


class Project:
    """A data project: ``<root>/<project>/<branch>/`` in a storage."""

    def __init__(
        self,
        root: str | os.PathLike[str] | Storage | None = None,
        project: str = "default",
        branch: str = "main",
        chunkCount: int = 16,
        *,
        storage: Storage | None = None,
    ) -> None:
        self.storage = resolve_storage(storage if storage is not None else root)
        self.project = fmt.check_dataset_name(project, "project")
        self.branch = fmt.check_dataset_name(branch, "branch")
        self.chunkCount = fmt.check_chunk_count(chunkCount)
        self.datasets = DatasetFactory(self)

    def __repr__(self) -> str:
        return f"Project({self.storage.url!r}, project={self.project!r}, branch={self.branch!r})"
