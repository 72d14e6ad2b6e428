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

from ..storage import Storage, open_storage
from . import format as fmt
from .dataset import Dataset
from .errors import DatasetNotFoundError, DatasetUsageError

if TYPE_CHECKING:
    from .model import BaseData


@dataclass(frozen=True)
class DatasetInfo:
    """A published dataset found in a storage (from its .def and .chk)."""

    project: str
    branch: str
    name: str
    dataType: str
    chunkCount: int
    checksum: str
    creationTime: str
    directory: str
    definition: dict[str, Any]

    @property
    def path(self) -> str:
        return f"{self.project}/{self.branch}/{self.name}"


def find_datasets(storage: Storage, pattern: str | None = None) -> Iterator[DatasetInfo]:
    """Every published dataset under the storage root (``<project>/<branch>/<name>/<name>.chk``),
    optionally those whose ``project/branch/name`` matches the regular expression ``pattern``."""
    regex = re.compile(pattern) if pattern else None
    for key in storage.list():
        parts = key.split("/")
        if len(parts) != 4 or parts[3] != fmt.chk_file_name(parts[2]):
            continue
        project, branch, name = parts[:3]
        if regex and not regex.search(f"{project}/{branch}/{name}"):
            continue
        info = _info(storage, project, branch, name)
        if info is not None:
            yield info


def _info(storage: Storage, project: str, branch: str, name: str) -> DatasetInfo | None:
    base = f"{project}/{branch}/{name}/"
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
    )


def find_dataset(storage: Storage, name_or_checksum: str) -> DatasetInfo:
    """One dataset by ``name``, ``project/branch/name`` or (a unique prefix of) its checksum."""
    found = list(find_datasets(storage))
    wanted = name_or_checksum.strip()
    matches = [d for d in found if wanted in (d.name, d.path)]
    if not matches and re.fullmatch(r"[0-9a-f]{6,40}", wanted):
        matches = [d for d in found if d.checksum.startswith(wanted)]
    if not matches:
        raise DatasetNotFoundError(
            f"no dataset named or with checksum {wanted!r} in {storage.url}; "
            "see `hml datasets list`"
        )
    if len(matches) > 1:
        paths = ", ".join(d.path for d in matches)
        raise DatasetUsageError(
            f"{wanted!r} matches several datasets ({paths}); give project/branch/name"
        )
    return matches[0]


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
        location = storage if storage is not None else root
        if location is None:
            location = os.environ.get("HML_ROOT", ".hml")
        self.storage = (
            location if isinstance(location, Storage) else open_storage(os.fspath(location))
        )
        self.project = fmt.check_dataset_name(project, "project")
        self.branch = fmt.check_dataset_name(branch, "branch")
        self.chunkCount = fmt.check_chunk_count(chunkCount)
        self.datasets = DatasetFactory(self)

    def __repr__(self) -> str:
        return f"Project({self.storage.url!r}, project={self.project!r}, branch={self.branch!r})"
