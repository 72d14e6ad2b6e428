"""The lineage of a model version as a tree: the model, the datasets it was trained on, the
datasets those were made from (their sources), each with its commit, and the tracking runs.

Datasets are read through the dataset catalog (their ``.def``: type, creation time, repository
state, the ``.def`` of every dependency); runs through the run store. A piece that is gone (a
dataset removed, a run never tracked here) is a node whose ``status`` is ``missing`` with the
reason, never an error: lineage is for finding out what is left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import HypermodelError

if TYPE_CHECKING:
    from ..storage import Storage
    from .reference import ModelReference

MAX_DEPTH = 32  # dependencies embed copies of their own .def; this bounds a hand-made loop

__all__ = ["model_lineage", "render"]


def model_lineage(storage: Storage, reference: ModelReference) -> dict[str, Any]:
    """``{"kind": "model", ..., "run": {...}, "datasets": [{..., "sources": [...]}]}``."""
    walk = _Walk(storage)
    return {
        "kind": "model",
        "name": reference.name,
        "version": reference.version,
        "long_name": reference.long_name,
        "model_kind": reference.kind,
        "created": reference.created,
        "commit": reference.commit,
        "dirty": reference.dirty,
        "status": "present",
        "run": walk.run(reference.run_id),
        "datasets": [walk.dataset(checksum) for checksum in reference.datasets],
    }


class _Walk:
    """One lineage walk: the catalog and the runs are read once, whatever the tree's size."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._groups: list[Any] | None = None
        self._catalog_error: str | None = None
        self._runs: Any = None

    def _catalog(self) -> list[Any]:
        if self._groups is None:
            from ..data.catalog import catalog

            try:
                self._groups = catalog(self.storage)
            except HypermodelError as exc:
                self._groups, self._catalog_error = [], str(exc)
        return self._groups

    def _find(self, checksum: str) -> tuple[Any, Any]:
        from ..data.catalog import resolve

        return resolve(self._catalog(), checksum, self.storage.url)  # type: ignore[no-any-return]

    def _why(self, exc: HypermodelError) -> str:
        from ..data.errors import DatasetNotFoundError

        if self._catalog_error:
            return f"the datasets of {self.storage.url} cannot be listed: {self._catalog_error}"
        if isinstance(exc, DatasetNotFoundError):
            return f"no dataset with this checksum in {self.storage.url} (removed, or never here)"
        return str(exc)

    def dataset(self, checksum: str) -> dict[str, Any]:
        """A training dataset by its checksum, with its sources and run."""
        node: dict[str, Any] = {"kind": "dataset", "checksum": checksum}
        try:
            named, info = self._find(checksum)
        except HypermodelError as exc:
            return {**node, "status": "missing", "reason": self._why(exc)}
        entry = named.entry(info) or {}
        node.update(
            status="present",
            ref=info.ref,
            type=info.dataType,
            created=info.creationTime,
            **_repo(info.definition),
            run=self.run(entry.get("run_id")),
            sources=self.sources(info.definition, 1),
        )
        return node

    def sources(self, definition: dict[str, Any], depth: int) -> list[dict[str, Any]]:
        """The datasets a .def records as its dependencies (each a copy of their .def)."""
        found = []
        deps = definition.get("dependencies")
        for dep in deps if isinstance(deps, list) else []:
            if not isinstance(dep, dict):
                continue
            checksum = str(dep.get("chkFileChecksum", ""))
            node: dict[str, Any] = {
                "kind": "dataset",
                "checksum": checksum,
                "ref": f"{dep.get('project')}/{dep.get('branch')}/{dep.get('name')}",
                "type": dep.get("dataType"),
                "created": dep.get("creationTime"),
                **_repo(dep),
            }
            try:
                self._find(checksum)
                node["status"] = "present"
            except HypermodelError as exc:
                node.update(status="missing", reason=self._why(exc))
            node["sources"] = self.sources(dep, depth + 1) if depth < MAX_DEPTH else []
            found.append(node)
        return found

    def run(self, run_id: Any) -> dict[str, Any] | None:
        """The tracking run; ``hml runs show <id>`` walks on from it."""
        if not isinstance(run_id, str) or not run_id:
            return None
        node: dict[str, Any] = {"kind": "run", "id": run_id, "show": f"hml runs show {run_id}"}
        try:
            if self._runs is None:
                from ..tracking.store import RunStore

                self._runs = RunStore(self.storage)
            meta = self._runs.meta(run_id)
        except HypermodelError as exc:
            return {**node, "status": "missing", "reason": str(exc)}
        except ValueError as exc:  # a run.json that is not JSON
            return {**node, "status": "missing", "reason": f"its run.json is unreadable ({exc})"}
        meta = meta if isinstance(meta, dict) else {}
        node["status"] = "present"
        for key in ("project", "pipeline", "task", "author"):
            if meta.get(key):
                node[key] = meta[key]
        return node


def _repo(definition: dict[str, Any]) -> dict[str, Any]:
    repo = definition.get("repo")
    repo = repo if isinstance(repo, dict) else {}
    return {"commit": repo.get("commitHash"), "branch": repo.get("branchName")}


def render(tree: dict[str, Any]) -> list[str]:
    """The tree as text lines, one node a line (what ``hml models show`` prints)."""
    lines = [_label(tree)]
    _children(tree, "", lines)
    return lines


def _children(node: dict[str, Any], indent: str, lines: list[str]) -> None:
    kids: list[dict[str, Any]] = []
    if node.get("run"):
        kids.append(node["run"])
    kids.extend(node.get("datasets") or [])
    kids.extend(node.get("sources") or [])
    for n, kid in enumerate(kids):
        last = n == len(kids) - 1
        lines.append(f"{indent}{'└── ' if last else '├── '}{_label(kid)}")
        _children(kid, indent + ("    " if last else "│   "), lines)


def _label(node: dict[str, Any]) -> str:
    kind = node.get("kind")
    missing = node.get("status") == "missing"
    if kind == "model":
        text = f"model {node['name']} {node['version']} ({node['long_name']})"
        text += f" commit {str(node.get('commit'))[:12]}" + (" dirty" if node.get("dirty") else "")
        return text
    if kind == "run":
        text = f"run {node['id']}"
        if missing:
            return f"{text}: missing ({node.get('reason')})"
        extra = "/".join(str(node[k]) for k in ("pipeline", "task") if node.get(k))
        return text + (f" {extra}" if extra else "") + f"  ({node['show']})"
    checksum = str(node.get("checksum", ""))[:12]
    if missing and not node.get("ref"):
        return f"dataset {checksum}: missing ({node.get('reason')})"
    text = f"dataset {node.get('ref')} {checksum}"
    if node.get("type"):
        text += f" {node['type']}"
    if node.get("commit"):
        text += f" commit {str(node['commit'])[:12]}"
    return text + (": missing" if missing else "")
