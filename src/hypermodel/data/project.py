"""Datasets from code without knowing paths: a project-level factory and listing.

project = Project(".hml", project="wines", branch="main")
wines = project.datasets.get(dataType=Wine, name="wines")
for info in project.datasets.list():
    print(info.name, info.checksum)
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from ..storage import Storage, resolve_storage
from . import format as fmt
from .dataset import Dataset
from .errors import DatasetCorruptError

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class BrokenDataset:
    """A dataset whose .chk is in place but that cannot be read as one: its .chk or .def is
    missing, unreadable, not what the format says, or the .def does not match the .chk."""

    project: str
    branch: str
    name: str
    version: str | None
    directory: str
    error: str

    @property
    def path(self) -> str:
        return f"{self.project}/{self.branch}/{self.name}"

    @property
    def ref(self) -> str:
        return f"{self.path}@{self.version}" if self.version else self.path


def scan_datasets(
    storage: Storage, pattern: str | None = None
) -> Iterator[DatasetInfo | BrokenDataset]:
    """Every published dataset and dataset version under the storage root
    (``<project>/<branch>[@<version>]/<name>/<name>.chk``), optionally those whose
    ``project/branch/name`` or ``project/branch/name@version`` matches the regular expression
    ``pattern``: a DatasetInfo for each readable one, a BrokenDataset (with the reason) for each
    other. One bad dataset never stops the scan."""
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
        info = describe(storage, project, branch, name, version)
        if info is not None:
            yield info


def find_datasets(storage: Storage, pattern: str | None = None) -> Iterator[DatasetInfo]:
    """The readable datasets of ``scan_datasets`` (broken ones are left out)."""
    for info in scan_datasets(storage, pattern):
        if isinstance(info, DatasetInfo):
            yield info


def describe(
    storage: Storage, project: str, branch: str, name: str, version: str | None = None
) -> DatasetInfo | BrokenDataset | None:
    """What the .chk and .def of one dataset directory say, checked as a read checks them
    (the .def must also name the directory's dataset); None when its .chk is gone (deleted
    while the root was listed)."""
    base = f"{project}/{branch}@{version}/{name}/" if version else f"{project}/{branch}/{name}/"
    chk_name, def_name = fmt.chk_file_name(name), fmt.def_file_name(name)

    def broken(error: str) -> BrokenDataset:
        return BrokenDataset(project, branch, name, version, base.rstrip("/"), error)

    try:
        chk_text = _read(storage, base + chk_name, chk_name)
        chk = fmt.parse_chk(chk_text, chk_name)
    except NotFoundError:
        return None
    except DatasetCorruptError as exc:
        return broken(str(exc))
    try:
        def_text = _read(storage, base + def_name, def_name)
    except NotFoundError:
        return broken(f"{def_name} is missing (a half-deleted dataset?): {fmt.REWRITE}")
    except DatasetCorruptError as exc:
        return broken(str(exc))
    if chk.get(def_name) != fmt.sha1_text(def_text):
        return broken(str(fmt.def_mismatch(def_text, def_name, chk_name)))
    try:
        definition = fmt.parse_def(def_text, def_name, name)
    except DatasetCorruptError as exc:
        return broken(str(exc))
    return DatasetInfo(
        project=project,
        branch=branch,
        name=name,
        dataType=definition["dataType"],
        chunkCount=definition["chunkCount"],
        checksum=fmt.sha1_text(chk_text),
        creationTime=str(definition.get("creationTime", "")),
        directory=base.rstrip("/"),
        definition=definition,
        version=version,
    )


def _read(storage: Storage, key: str, file_name: str) -> str:
    """A dataset file's text; NotFoundError passes; any other failure is DatasetCorruptError."""
    try:
        return storage.read_text(key)
    except NotFoundError:
        raise
    except IsADirectoryError as exc:
        raise DatasetCorruptError(f"{file_name} is a directory, not a file: {fmt.REWRITE}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetCorruptError(f"{file_name} is not UTF-8 text ({exc}): {fmt.REWRITE}") from exc
    except Exception as exc:  # a damaged dataset must not break a listing
        raise DatasetCorruptError(
            f"{file_name} cannot be read ({type(exc).__name__}: {exc})"
        ) from exc


def find_dataset(storage: Storage, name_or_checksum: str) -> DatasetInfo:
    """One dataset by ``name``, ``project/branch/name`` (either with ``@VERSION``) or (a unique
    prefix of) its checksum. By name alone: the version a read by name sees (the newest
    published version, else the plain dataset); see ``catalog``. A name whose dataset is
    broken or was never published raises an error that says which (``catalog.diagnose``)."""
    from .catalog import catalog, resolve

    return resolve(catalog(storage), name_or_checksum, storage.url, storage)[1]


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
        """The project's readable datasets; a broken one is left out with a warning naming
        its problem."""
        p = self._project
        found = []
        for d in scan_datasets(p.storage, pattern):
            if d.project != p.project or not (all_branches or d.branch == p.branch):
                continue
            if isinstance(d, BrokenDataset):
                log.warning(
                    "dataset %s/%s is broken, left out: %s", p.storage.url, d.directory, d.error
                )
                continue
            found.append(d)
        return found


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
