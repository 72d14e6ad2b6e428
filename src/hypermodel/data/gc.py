"""Removing dataset versions: one name or version by hand (``hml datasets rm``), or every version
nothing references (``hml gc``).

``plan_gc`` keeps, and never proposes to remove:

- the plain dataset of every name (only versions are collected);
- per stable name, the newest ``keep`` versions (in ``catalog`` order: what reads by name see);
- a version a published model references: its checksum, ``name@version`` or directory anywhere
  in a ``models/<name>/<version>/reference.json`` (a ModelContainer's training ``datasets``, a
  TF export's lineage);
- a version the local runner may hand to an op again: named the same way anywhere in a cache
  entry ``cache/<op>/<key>.json`` or a ``pipelines/<pipeline>/latest/<task>.json`` output;
- a version a project registry record points at (``tracking/projects/*/datasets/``);
- a version read or written by a run whose record (``runs/<run_id>/run.json``) says it has not
  finished (pending, running, retrying), found through the registry's run pointers;
- every dependency of a kept version (or of a plain dataset), transitively: each
  ``chkFileChecksum`` in its .def's ``dependencies``, at any depth.

``plan_gc`` also finds, in every published dataset that stays, the files interrupted writers
left there (claims, staged chunks, temporary files: see ``leftovers``); ``remove_leftovers``
removes them.

Removing a version (``remove``) goes through ``Dataset.delete`` (the .chk first, so a reader
never sees half a dataset; then the files and the registry entry), then drops the registry's run
pointers at it. Directories left empty on local disk are removed.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from ..errors import NotFoundError
from ..storage import Storage
from .catalog import Named, as_dataset, catalog
from .errors import DatasetError
from .io.leftovers import Leftover
from .io.publish import CLAIM_DIR
from .io.staging import STAGE_DIR
from .project import DatasetInfo
from .versions import REGISTRY

UNFINISHED = ("pending", "running", "retrying")  # a local run's status while it may still read


class DatasetInUseError(DatasetError):
    """A dataset version to remove is a published model's training dataset."""


# -- the storage, listed once -----------------------------------------------------------------
class ListedOnce(Storage):
    """A storage whose whole listing is read once and remembered (a catalog, the broken
    datasets and the sizes all come from one listing); everything else goes to the storage."""

    def __init__(self, inner: Storage) -> None:
        self.inner, self.url = inner, inner.url
        self._keys: list[str] | None = None

    def keys(self) -> list[str]:
        if self._keys is None:
            self._keys = sorted(self.inner.list())
        return self._keys

    def list(self, prefix: str = "") -> Iterator[str]:
        if prefix:
            return self.inner.list(prefix)
        return iter(self.keys())

    def read_bytes(self, key: str) -> bytes:
        return self.inner.read_bytes(key)

    def write_bytes(self, key: str, data: bytes) -> None:
        self.inner.write_bytes(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.inner.put_if_absent(key, data)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def open_read(self, key: str) -> IO[bytes]:
        return self.inner.open_read(key)

    def size(self, key: str) -> int:
        return self.inner.size(key)

    def local_path(self, key: str) -> str | None:
        return self.inner.local_path(key)

    def delete_prefix(self, prefix: str) -> None:
        self.inner.delete_prefix(prefix)


def directory_size(storage: ListedOnce, directory: str) -> int:
    """Bytes under ``directory/`` (as listed; a file gone meanwhile counts 0)."""
    keys = storage.keys()
    prefix = directory.rstrip("/") + "/"
    total = 0
    for key in keys[bisect.bisect_left(keys, prefix) :]:
        if not key.startswith(prefix):
            break
        try:
            total += storage.size(key)
        except NotFoundError:
            continue
    return total


# -- what references a version ------------------------------------------------------------------
def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            out.append(str(key))
            _strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _strings(item, out)


def _read_json(storage: Storage, key: str) -> Any:
    try:
        return orjson.loads(storage.read_bytes(key))
    except (NotFoundError, orjson.JSONDecodeError):
        return None


class References:
    """Text of JSON records that may name dataset versions, by who holds it. A version is
    referenced when its checksum, ``name@version`` or directory occurs in a record's strings."""

    def __init__(self) -> None:
        self._sources: dict[str, list[str]] = {}

    def add(self, label: str, value: Any) -> None:
        strings: list[str] = []
        _strings(value, strings)
        if strings:
            self._sources.setdefault(label, []).append("\n".join(strings))

    def who(self, info: DatasetInfo) -> str | None:
        """The label of the first record naming ``info``, or None."""
        needles = [info.checksum, info.directory]
        if info.version:
            needles.append(f"{info.name}@{info.version}")
        for label, texts in self._sources.items():
            for text in texts:
                if any(needle in text for needle in needles):
                    return label
        return None

    def __bool__(self) -> bool:
        return bool(self._sources)


def model_references(storage: Storage) -> References:
    """Every published model reference (``models/<name>/<version>/reference.json``)."""
    refs = References()
    for key in _keys(storage, "models"):
        parts = key.split("/")
        if len(parts) == 4 and parts[3] == "reference.json":
            value = _read_json(storage, key)
            if value is not None:
                refs.add(f"model {parts[1]} version {parts[2]}", value)
    return refs


def runner_references(storage: Storage) -> References:
    """The local runner's cache entries and latest outputs, and the project registry."""
    refs = References()
    for key in _keys(storage, "cache"):
        parts = key.split("/")
        if len(parts) == 3 and key.endswith(".json"):
            refs.add("the runner's cache (cache/)", _read_json(storage, key))
    for key in _keys(storage, "pipelines"):
        parts = key.split("/")
        if len(parts) == 4 and parts[2] == "latest" and key.endswith(".json"):
            refs.add(f"the latest output of {parts[1]}/{parts[3][:-5]}", _read_json(storage, key))
    for key in _keys(storage, "tracking/projects"):
        parts = key.split("/")
        if len(parts) == 6 and parts[3] == "datasets" and key.endswith(".json"):
            refs.add(f"project {parts[2]}'s dataset {parts[4]}", _read_json(storage, key))
    return refs


def _keys(storage: Storage, prefix: str) -> list[str]:
    if isinstance(storage, ListedOnce):
        keys = storage.keys()
        start = bisect.bisect_left(keys, prefix + "/")
        found = []
        for key in keys[start:]:
            if not key.startswith(prefix + "/"):
                break
            found.append(key)
        return found
    return list(storage.list(prefix))


def run_pointers(storage: Storage, group: Named) -> dict[str, str]:
    """run id -> the version the registry points that run at, for one stable name."""
    prefix = f"{REGISTRY}/{group.project}/{group.branch}/{group.name}/runs"
    found = {}
    for key in storage.list(prefix):
        leaf = key.rsplit("/", 1)[-1]
        if key.count("/") != 5 or not leaf.endswith(".json"):
            continue
        value = _read_json(storage, key)
        if isinstance(value, dict) and isinstance(value.get("version"), str):
            found[leaf[: -len(".json")]] = value["version"]
    return found


def _unfinished(storage: Storage, run_id: str, seen: dict[str, bool]) -> bool:
    if run_id not in seen:
        record = _read_json(storage, f"runs/{run_id}/run.json")
        seen[run_id] = isinstance(record, dict) and record.get("status") in UNFINISHED
    return seen[run_id]


def dependency_checksums(definition: dict[str, Any]) -> set[str]:
    """Every ``chkFileChecksum`` in a .def's dependencies, at any depth."""
    found: set[str] = set()
    todo = list(definition.get("dependencies") or [])
    while todo:
        dep = todo.pop()
        if not isinstance(dep, dict):
            continue
        if isinstance(dep.get("chkFileChecksum"), str):
            found.add(dep["chkFileChecksum"])
        todo.extend(dep.get("dependencies") or [])
    return found


# -- the plan ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """One version of a stable name (the plain dataset when ``info.version`` is None)."""

    group: Named
    info: DatasetInfo
    size: int = 0

    @property
    def entry(self) -> dict[str, Any]:
        return self.group.entry(self.info) or {}

    def record(self) -> dict[str, Any]:
        entry = self.entry
        return {
            "id": self.info.ref,
            "project": self.info.project,
            "branch": self.info.branch,
            "name": self.info.name,
            "version": self.info.version,
            "directory": self.info.directory,
            "checksum": self.info.checksum,
            "created": entry.get("created") or self.info.creationTime,
            "run_id": entry.get("run_id"),
            "bytes": self.size,
        }


@dataclass
class Plan:
    remove: list[Candidate] = field(default_factory=list)
    kept: list[tuple[Candidate, str]] = field(default_factory=list)  # versions only
    # files interrupted writers left in a published dataset that stays (see ``leftovers``)
    leftovers: list[tuple[DatasetInfo, list[Leftover]]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(c.size for c in self.remove)

    @property
    def leftover_bytes(self) -> int:
        return sum(f.size for _, found in self.leftovers for f in found)


def plan_gc(storage: ListedOnce, keep: int = 1) -> Plan:
    """Which versions ``hml gc --keep keep`` removes, and why each other version stays."""
    groups = catalog(storage)
    reasons: dict[str, str] = {}  # directory -> why kept
    everything: list[tuple[Named, DatasetInfo]] = []
    for group in groups:
        newest = group.versions[len(group.versions) - keep :] if keep > 0 else []
        for info in newest:
            reasons[info.directory] = f"one of the newest {keep} (--keep {keep})"
        everything += [(group, info) for info in group.versions]
    sources = [model_references(storage), runner_references(storage)]
    runs: dict[str, bool] = {}
    pointers: dict[str, dict[str, str]] = {}
    for group, info in everything:
        if info.directory in reasons:
            continue
        for refs in sources:
            who = refs.who(info)
            if who is not None:
                reasons[info.directory] = f"referenced by {who}"
                break
        else:
            if group.path not in pointers:
                pointers[group.path] = run_pointers(storage, group)
            for run_id, version in sorted(pointers[group.path].items()):
                if version == info.version and _unfinished(storage, run_id, runs):
                    reasons[info.directory] = f"used by run {run_id}, which has not finished"
                    break
    by_checksum: dict[str, list[DatasetInfo]] = {}
    for _, info in everything:
        by_checksum.setdefault(info.checksum, []).append(info)
    todo = [info for _, info in everything if info.directory in reasons]
    todo += [g.plain for g in groups if g.plain is not None]
    while todo:
        kept = todo.pop()
        for checksum in dependency_checksums(kept.definition):
            for dep in by_checksum.get(checksum, []):
                if dep.directory not in reasons:
                    reasons[dep.directory] = f"a dependency of {kept.ref}"
                    todo.append(dep)
    plan = Plan()
    for group, info in everything:
        if info.directory in reasons:
            plan.kept.append((Candidate(group, info), reasons[info.directory]))
        else:
            plan.remove.append(Candidate(group, info, directory_size(storage, info.directory)))
    doomed = {c.info.directory for c in plan.remove}
    staying = [i for g in groups for i in g.every() if i.directory not in doomed]
    plan.leftovers = find_leftovers(storage, staying)
    return plan


def find_leftovers(
    storage: ListedOnce, infos: Iterable[DatasetInfo]
) -> list[tuple[DatasetInfo, list[Leftover]]]:
    """The leftovers of interrupted writers in each of these published datasets. A bucket is
    asked only about directories whose listing shows claims or staged chunks."""
    from .io import leftovers

    inner = storage.inner
    local = inner.local_path(REGISTRY) is not None  # hidden temporaries are not listed
    busy = {
        key.split("/.hml-", 1)[0]
        for key in storage.keys()
        if f"/{CLAIM_DIR}/" in key or f"/{STAGE_DIR}/" in key
    }
    found = []
    for info in sorted(infos, key=lambda i: i.ref):
        if local or info.directory in busy:
            files = leftovers.find(as_dataset(inner, info).address)
            if files:
                found.append((info, files))
    return found


def remove_leftovers(
    storage: Storage, found: Iterable[tuple[DatasetInfo, list[Leftover]]]
) -> list[tuple[DatasetInfo, list[Leftover]]]:
    """Remove the leftovers ``find_leftovers`` found (each dataset still published)."""
    from .io import leftovers

    inner = storage.inner if isinstance(storage, ListedOnce) else storage
    done = []
    for info, files in found:
        removed = leftovers.remove(as_dataset(inner, info).address, files)
        if removed:
            done.append((info, removed))
    return done


# -- removing -----------------------------------------------------------------------------------
def remove(storage: Storage, candidates: Iterable[Candidate]) -> list[Candidate]:
    """Remove each version (or plain dataset): its files (.chk first), its registry entry and
    the run pointers at it. Returns what was removed, in order."""
    inner = storage.inner if isinstance(storage, ListedOnce) else storage
    done = []
    by_group: dict[str, tuple[Named, set[str]]] = {}
    for candidate in candidates:
        as_dataset(inner, candidate.info).delete()
        info = candidate.info
        branch = f"{info.branch}@{info.version}" if info.version else info.branch
        _prune(inner, f"{info.project}/{branch}")
        _, versions = by_group.setdefault(candidate.group.path, (candidate.group, set()))
        if info.version:
            versions.add(info.version)
        done.append(candidate)
    for group, versions in by_group.values():
        base = f"{REGISTRY}/{group.project}/{group.branch}/{group.name}"
        if versions:
            for run_id, version in run_pointers(inner, group).items():
                if version in versions:
                    inner.delete(f"{base}/runs/{run_id}.json")
        for key in (f"{base}/runs", base, f"{REGISTRY}/{group.project}/{group.branch}"):
            _prune(inner, key)
    return done


def _prune(storage: Storage, key: str) -> None:
    """Remove an empty directory on local disk (buckets have none)."""
    path = storage.local_path(key)
    if path is None:
        return
    try:
        os.rmdir(path)
    except OSError:  # not empty, or gone: fine either way
        pass


def model_users(storage: Storage, infos: Iterable[DatasetInfo]) -> dict[str, str]:
    """Directory -> the published model that references it, for those of ``infos`` that are."""
    refs = model_references(storage)
    found = {}
    if refs:
        for info in infos:
            who = refs.who(info)
            if who is not None:
                found[info.directory] = who
    return found
