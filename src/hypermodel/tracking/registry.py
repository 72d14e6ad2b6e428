"""Project-level things shared by runs: shared artifacts, and models/datasets by name + version.

A model or dataset version is a small immutable JSON record. It points at what already exists
(a dataset's checksum, a published model reference) or, for plain files, at content-addressed
blobs (``tracking/blobs/<sha256>``), so re-publishing unchanged files stores nothing new.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import orjson

from ..errors import AlreadyExistsError, NotFoundError, StorageError, UsageError
from ..names import check_name
from ..storage import Storage

BLOBS = "tracking/blobs"
KINDS = ("models", "datasets")


def project_prefix(project: str) -> str:
    return f"tracking/projects/{check_name(project, 'project')}"


def zip_directory(path: Path) -> bytes:
    """A directory as zip bytes, entries sorted so equal trees give equal archives."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(
                file.relative_to(path).as_posix(), date_time=(1980, 1, 1, 0, 0, 0)
            )
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, file.read_bytes())
    return buf.getvalue()


def read_artifact(path: str | os.PathLike[str]) -> tuple[str, bytes, str]:
    """(name, bytes, kind) for a file, or ``<dir>.zip`` for a directory."""
    p = Path(path)
    if p.is_dir():
        return f"{p.name}.zip", zip_directory(p), "zip"
    if not p.is_file():
        raise NotFoundError(f"artifact path {str(p)!r} is neither a file nor a directory")
    return p.name, p.read_bytes(), "file"


# -- shared artifacts --------------------------------------------------------------------------
def push_shared(
    storage: Storage, project: str, path: str | os.PathLike[str], name: str | None = None
) -> str:
    default, data, _ = read_artifact(path)
    name = check_name(name or default, "artifact")
    storage.write_bytes(f"{project_prefix(project)}/artifacts/{name}", data)
    return name


def pull_shared(
    storage: Storage, project: str, name: str, dest: str | os.PathLike[str] | None = None
) -> Path:
    check_name(name, "artifact")
    try:
        data = storage.read_bytes(f"{project_prefix(project)}/artifacts/{name}")
    except NotFoundError:
        known = ", ".join(n for n, _ in list_shared(storage, project)) or "none"
        raise NotFoundError(
            f"project '{project}' has no shared artifact '{name}' (shared artifacts: {known})"
        ) from None
    target = Path(dest) if dest is not None else Path(name)
    if target.is_dir():
        target = target / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def list_shared(storage: Storage, project: str) -> list[tuple[str, int]]:
    prefix = f"{project_prefix(project)}/artifacts/"
    return [(key[len(prefix) :], storage.size(key)) for key in storage.list(prefix.rstrip("/"))]


# -- models and datasets by name + version ------------------------------------------------------
def _version_key(project: str, kind: str, name: str, version: str) -> str:
    check_name(name, kind[:-1])
    check_name(version, "version")
    return f"{project_prefix(project)}/{kind}/{name}/{version}.json"


def describe_source(source: Any) -> dict[str, Any]:
    """What a version points at: a checksum-bearing object (a Dataset), a model reference (a
    dict, or an object with ``summary()``/``reference``), or local files (a path)."""
    if isinstance(source, (str, os.PathLike)):
        return {"path": str(source)}
    if isinstance(source, dict):
        return {"reference": dict(source)}
    checksum = getattr(source, "checksum", None)
    if checksum is not None:
        ref: dict[str, Any] = {"checksum": str(checksum() if callable(checksum) else checksum)}
        for attr in ("name", "project", "branch", "location", "url", "key", "directory"):
            value = getattr(source, attr, None)
            if isinstance(value, (str, int, float)):
                ref[attr] = value
        return {"reference": ref}
    summary = getattr(source, "summary", None)
    if callable(summary):
        data = summary()
        if isinstance(data, dict):
            data = dict(data)
            if "checksum" not in data and data.get("model_sha256"):
                data["checksum"] = data["model_sha256"]
            return {"reference": data}
    for attr in ("reference", "to_reference"):
        value = getattr(source, attr, None)
        value = value() if callable(value) else value
        if value is not None and value is not source:
            return describe_source(value)
    raise UsageError(
        f"cannot record {type(source).__name__!r} as a version: pass a path, a reference dict, "
        "a model reference or an object with a .checksum"
    )


def _files_of(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    if path.is_file():
        return [path]
    raise NotFoundError(f"{str(path)!r} does not exist")


def _upload_files(storage: Storage, path: Path) -> list[dict[str, Any]]:
    entries = []
    base = path if path.is_dir() else path.parent
    for file in _files_of(path):
        data = file.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        storage.put_if_absent(
            f"{BLOBS}/{digest[:2]}/{digest}", data
        )  # identical files are stored once
        entries.append(
            {"path": file.relative_to(base).as_posix(), "sha256": digest, "size": len(data)}
        )
    return entries


def publish_version(
    storage: Storage,
    project: str,
    kind: str,
    source: Any,
    name: str,
    version: str,
    *,
    description: str | None,
    run_id: str | None,
    author: str,
) -> dict[str, Any]:
    """Create an immutable version record; re-publishing identical content is a no-op."""
    key = _version_key(project, kind, name, version)
    described = describe_source(source)
    record: dict[str, Any] = {
        "name": name,
        "version": version,
        "kind": kind[:-1],
        "description": description,
        "run": run_id,
        "author": author,
        "created": time.time(),
    }
    if "path" in described:
        record["files"] = _upload_files(storage, Path(described["path"]))
    else:
        record["reference"] = described["reference"]
    data = orjson.dumps(record, default=str)
    if not storage.put_if_absent(key, data):
        existing = orjson.loads(storage.read_bytes(key))
        same = all(existing.get(k) == record.get(k) for k in ("files", "reference"))
        if not same:
            raise AlreadyExistsError(
                f"{kind[:-1]} '{name}' version '{version}' already exists in project '{project}' with "
                "different content; versions are immutable, publish a new version"
            )
        return dict(existing)
    return record


def get_version(
    storage: Storage, project: str, kind: str, name: str, version: str
) -> dict[str, Any]:
    key = _version_key(project, kind, name, version)
    try:
        record: dict[str, Any] = orjson.loads(storage.read_bytes(key))
    except NotFoundError:
        known = ", ".join(list_versions(storage, project, kind, name)) or "none"
        raise NotFoundError(
            f"{kind[:-1]} '{name}' has no version '{version}' in project '{project}' "
            f"(versions: {known})"
        ) from None
    return record


def list_versions(storage: Storage, project: str, kind: str, name: str) -> list[str]:
    prefix = f"{project_prefix(project)}/{kind}/{check_name(name, kind[:-1])}"
    return [k.rsplit("/", 1)[-1].removesuffix(".json") for k in storage.list(prefix)]


def download_version(
    storage: Storage, record: dict[str, Any], save_path: str | os.PathLike[str]
) -> Path | dict[str, Any]:
    """Files (checked against their sha256) under ``save_path/<name>-<version>``, or the reference."""
    if "files" not in record:
        return dict(record.get("reference") or {})
    target = Path(save_path) / f"{record['name']}-{record['version']}"
    for entry in record["files"]:
        rel = Path(entry["path"])
        if rel.is_absolute() or ".." in rel.parts:
            raise UsageError(f"refusing to write {entry['path']!r} outside {target}")
        digest = entry["sha256"]
        data = storage.read_bytes(f"{BLOBS}/{digest[:2]}/{digest}")
        if hashlib.sha256(data).hexdigest() != digest:
            raise StorageError(
                f"blob {digest} of {record['name']}:{record['version']} is corrupt in {storage.url}"
            )
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return target
