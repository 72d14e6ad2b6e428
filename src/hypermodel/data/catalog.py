"""Datasets by their stable name, each with its versions (what ``hml datasets`` and ``hml gc``
read).

A stable name ``project/branch/name`` has at most one plain dataset
(``<project>/<branch>/<name>/``) and any number of versions (``<project>/<branch>@<version>/
<name>/``, each recorded in the version registry, see ``versions``). Versions are ordered the
way reads by name see them: by their registry entry's ``created``, then the version id. A
version without an entry (which a read by name never picks) counts as older than every recorded
one; among themselves such versions go by their .def's ``creationTime``.

The *latest* of a name is what a read by name sees outside a run: the newest recorded version,
else the plain dataset, else (only unrecorded versions) the newest of them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import format as fmt
from .errors import (
    DatasetCorruptError,
    DatasetError,
    DatasetNotClosedError,
    DatasetNotFoundError,
    DatasetUsageError,
)

if TYPE_CHECKING:
    from ..storage import Storage
    from .project import BrokenDataset, DatasetInfo


@dataclass
class Named:
    """Every published dataset of one stable name: the plain one and the versions."""

    project: str
    branch: str
    name: str
    plain: DatasetInfo | None = None
    versions: list[DatasetInfo] = field(default_factory=list)  # oldest first
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)  # version -> entry

    @property
    def path(self) -> str:
        return f"{self.project}/{self.branch}/{self.name}"

    def entry(self, info: DatasetInfo) -> dict[str, Any] | None:
        """The version's registry entry (None: the plain dataset, or no entry)."""
        return self.recorded.get(info.version) if info.version else None

    @property
    def latest(self) -> DatasetInfo:
        """What a read by name sees (outside a run)."""
        recorded = [v for v in self.versions if v.version in self.recorded]
        if recorded:
            return recorded[-1]
        if self.plain is not None:
            return self.plain
        return self.versions[-1]

    def every(self) -> list[DatasetInfo]:
        """The versions, newest first, then the plain dataset."""
        found = list(reversed(self.versions))
        return found + ([self.plain] if self.plain is not None else [])

    def find(self, version: str | None) -> DatasetInfo | None:
        if version is None:
            return self.plain
        return next((v for v in self.versions if v.version == version), None)

    def pick(self, version: str | None, url: str) -> DatasetInfo:
        """``version`` (None: the latest), or DatasetNotFoundError naming the versions there are."""
        if version is None:
            return self.latest
        found = self.find(version)
        if found is None:
            known = ", ".join(v.version or "" for v in reversed(self.versions)) or "none"
            raise DatasetNotFoundError(
                f"dataset {self.path} has no version {version!r} in {url} (its versions, newest "
                f"first: {known}); see `hml datasets show {self.path}`"
            )
        return found


def _order(group: Named, info: DatasetInfo) -> tuple[int, str, str]:
    entry = group.entry(info)
    if entry is None:
        return (0, info.creationTime, info.version or "")
    return (1, str(entry.get("created", "")), info.version or "")


def catalog(
    storage: Storage, pattern: str | None = None, broken: list[BrokenDataset] | None = None
) -> list[Named]:
    """Every published dataset under the root grouped by stable name, sorted by that name
    (``pattern`` as in ``find_datasets``). Broken datasets are left out, and appended to
    ``broken`` when it is given (one scan gives both)."""
    from .project import BrokenDataset, scan_datasets
    from .versions import entries

    groups: dict[tuple[str, str, str], Named] = {}
    for info in scan_datasets(storage, pattern):
        if isinstance(info, BrokenDataset):
            if broken is not None:
                broken.append(info)
            continue
        group = groups.setdefault(
            (info.project, info.branch, info.name), Named(info.project, info.branch, info.name)
        )
        if info.version is None:
            group.plain = info
        else:
            group.versions.append(info)
    for group in groups.values():
        if group.versions:
            group.recorded = {
                str(e["version"]): e
                for e in entries(storage, group.project, group.branch, group.name)
            }
            group.versions.sort(key=functools.partial(_order, group))
    return sorted(groups.values(), key=lambda g: g.path)


def as_dataset(storage: Storage, info: DatasetInfo) -> Any:
    """A Dataset pinned to a found one (its version, or the plain dataset), typed by a stand-in
    class of the recorded type name: enough to count, verify and delete, never to need the
    user's class."""
    from .dataset import Dataset
    from .model import BaseData

    stand_in = type(info.dataType, (BaseData,), {})
    return Dataset(
        stand_in,
        storage=storage,
        project=info.project,
        branch=info.branch,
        name=info.name,
        chunkCount=info.chunkCount,
        version=info.version,
        versioned=None if info.version else False,
    )


def parse_ref(text: str) -> tuple[str, str | None]:
    """``NAME``, ``project/branch/name`` (each optionally ``@VERSION``) or a version's directory
    ``project/branch@VERSION/name`` -> (the name or path, the version or None)."""
    from .project import split_branch
    from .versions import split_ref

    wanted = text.strip().strip("/")
    parts = wanted.split("/")
    if len(parts) == 3 and "@" in parts[1] and "@" not in parts[2]:
        branch, version = split_branch(parts[1])
        if version is not None:
            return f"{parts[0]}/{branch}/{parts[2]}", version
    base, version = split_ref(wanted)
    if version == "" or (version is not None and "/" in version):
        raise DatasetUsageError(
            f"{text!r} is not NAME@VERSION: give name, project/branch/name or either with @VERSION"
        )
    return base, version


def resolve(
    groups: list[Named], wanted: str, url: str, storage: Storage | None = None
) -> tuple[Named, DatasetInfo]:
    """One dataset by ``name`` or ``project/branch/name`` (the latest, or ``@VERSION``), or by
    (a unique prefix of, 6 or more hex digits) its checksum: its stable name and the one found.
    With ``storage``, a name that finds nothing because its dataset is broken or was never
    published raises an error saying so (see ``diagnose``)."""
    try:
        return _resolve(groups, wanted, url)
    except DatasetNotFoundError as exc:
        found = diagnose(storage, wanted) if storage is not None else None
        if found is not None:
            raise found from exc
        raise


def _resolve(groups: list[Named], wanted: str, url: str) -> tuple[Named, DatasetInfo]:
    import re

    try:
        group, version = lookup(groups, wanted, url)
    except DatasetNotFoundError:
        text = wanted.strip()
        if not re.fullmatch(r"[0-9a-f]{6,40}", text):
            raise
        matches = [(g, d) for g in groups for d in g.every() if d.checksum.startswith(text)]
        if not matches:
            raise DatasetNotFoundError(
                f"no dataset named or with checksum {text!r} in {url}; see `hml datasets list`"
            ) from None
        if len(matches) > 1:
            refs = ", ".join(d.ref for _, d in matches)
            raise DatasetUsageError(
                f"{text!r} is the start of several checksums ({refs}); give more digits"
            ) from None
        return matches[0]
    return group, group.pick(version, url)


def lookup(
    groups: list[Named], wanted: str, url: str, storage: Storage | None = None
) -> tuple[Named, str | None]:
    """The stable name ``wanted`` means (``name`` or ``project/branch/name``, optionally with
    ``@VERSION``) and the version it asks for (None: none given). With ``storage``, a name
    whose only datasets are broken or unpublished raises an error saying so."""
    base, version = parse_ref(wanted)
    matches = [g for g in groups if base in (g.name, g.path)]
    if not matches:
        found = diagnose(storage, wanted) if storage is not None else None
        if found is not None:
            raise found
        raise DatasetNotFoundError(
            f"no dataset named {wanted.strip()!r} in {url}; see `hml datasets list`"
        )
    if len(matches) > 1:
        paths = ", ".join(g.path for g in matches)
        raise DatasetUsageError(
            f"{wanted.strip()!r} matches several datasets ({paths}); give project/branch/name"
        )
    return matches[0], version


# -- why a name finds no dataset ------------------------------------------------------------------
_WORK_DIRS = (".hml-publish", ".hml-stage", ".hml-task")


def _dataset_file(name: str, rest: str) -> bool:
    """Is ``rest`` (a key under a dataset directory) one a dataset or its writer makes?"""
    if rest in (fmt.def_file_name(name), fmt.chk_file_name(name), f"{name}.idx.json"):
        return True
    if rest.startswith(f"{name}_") and rest.endswith(".jsonl.gz"):
        return True
    return rest.split("/", 1)[0] in _WORK_DIRS


def diagnose(storage: Storage, wanted: str) -> DatasetError | None:
    """Why ``wanted`` (``name`` or ``project/branch/name``, optionally ``@VERSION``) names no
    readable dataset, when its directory is there: the dataset is broken (its .chk is there, but
    it or the .def cannot be read: DatasetCorruptError with the reason) or was never published
    (files but no .chk: DatasetNotClosedError). None when there is no such directory."""
    from .project import BrokenDataset, describe, split_branch

    try:
        base, version = parse_ref(wanted)
    except DatasetUsageError:
        return None
    want = base.split("/")
    if len(want) not in (1, 3):
        return None
    found: dict[str, set[str]] = {}
    for key in storage.list():
        parts = key.split("/")
        if len(parts) < 4:
            continue
        project, directory, name = parts[:3]
        branch, ver = split_branch(directory)
        if want != [name] and want != [project, branch, name]:
            continue
        if version is not None and ver != version:
            continue
        rest = "/".join(parts[3:])
        if _dataset_file(name, rest):
            found.setdefault(f"{project}/{directory}/{name}", set()).add(rest)
    problems: list[DatasetError] = []
    for directory, files in sorted(found.items()):
        project, branch_dir, name = directory.split("/")
        where = f"{storage.url}/{directory}"
        if fmt.chk_file_name(name) in files:
            branch, ver = split_branch(branch_dir)
            info = describe(storage, project, branch, name, ver)
            if isinstance(info, BrokenDataset):
                problems.append(DatasetCorruptError(f"dataset {where} is broken: {info.error}"))
            continue
        problems.append(
            DatasetNotClosedError(
                f"dataset {where} was never published: it has no {fmt.chk_file_name(name)} (its "
                "writer raised, was killed or has not finished, or the .chk was deleted); run "
                "the write again, it replaces the leftovers"
            )
        )
    if not problems:
        return None
    first = problems[0]
    if len(problems) > 1:
        return type(first)(f"{first} (and {len(problems) - 1} more like it)")
    return first
