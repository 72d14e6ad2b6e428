"""Publish an exported TensorFlow model to the app's bucket, and fetch it back verified.

Layout, beside the other models of the app (the reference is the one schema of every model,
``hypermodel.models.reference``, with ``kind: tensorflow``)::

    models/<name>/<version>/saved_model.tar     the export, as a deterministic tar
    models/<name>/<version>/reference.json      lineage + SHA256 of the tar (model_sha256)
                                                and of the files (tree_digest)
    models/<name>/latest.json                   pointer, written last

A version is never overwritten (the tar is created only if absent), and ``latest.json`` is
written after everything else, so a reader following it only finds complete versions. No
TensorFlow is needed here: the files are moved as bytes. ``fetch_export`` takes ``latest``, a
version or an alias (``production``), like every model of the store.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import secrets
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from ..errors import AlreadyExistsError, NotFoundError, StorageError
from ..models.reference import (
    ARCHIVE_FILE,
    LATEST_FILE,
    REFERENCE_FILE,
    ModelReference,
    sha256_hex,
    tensorflow_fields,
    unreadable_error,
)
from ..names import check_name
from ..serving.errors import ModelIntegrityError

KIND = "tensorflow"


def _tar(directory: Path) -> bytes:
    """The export's files in name order with fixed metadata: same files, same bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(path.relative_to(directory).as_posix())
            info.size = path.stat().st_size
            info.mode = 0o644
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
    return buffer.getvalue()


def publish_export(
    storage: Any,
    name: str,
    export: str | os.PathLike[str],
    version: str | None = None,
    *,
    metrics: dict[str, float] | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Upload an export made by ``export_model``; returns its reference as the dict a
    ``TensorflowReference`` wraps (``ModelReference.tensorflow_view``; also stored)."""
    from ..serving.model import check_metrics, check_params, check_version, git_state, run_lineage
    from .export import directory_digest

    check_name(name, "model")
    directory = Path(export)
    if not (directory / "saved_model.pb").is_file():
        raise NotFoundError(f"{directory} is not an exported model (no saved_model.pb)")
    now = dt.datetime.now(dt.timezone.utc)
    version = (
        check_version(storage, name, version)
        if version
        else (f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}")
    )
    archive = _tar(directory)
    base = f"models/{name}/{version}"
    lineage = _read_lineage(directory)
    found = tensorflow_fields(lineage)
    commit = found["commit"] if found["commit"] != "unknown" else git_state()[0]
    reference = ModelReference(
        kind=KIND,
        name=name,
        version=version,
        long_name=found["long_name"] or f"{name}_{now:%Y%m%d-%H%M%S}_{commit[:8]}",
        created=now.isoformat(timespec="seconds"),
        model_file=ARCHIVE_FILE,
        model_sha256=sha256_hex(archive),
        model_size=len(archive),
        distributions_file="",
        tree_digest=directory_digest(directory),
        datasets=found["datasets"],
        commit=commit,
        metrics=check_metrics({**_embedded_metrics(lineage), **(metrics or {})}, name),
        params=check_params(dict(params or {}), name),
        lineage=lineage,
        key=f"{base}/{REFERENCE_FILE}",
        **run_lineage(),
    )
    if not storage.put_if_absent(f"{base}/{ARCHIVE_FILE}", archive):
        raise AlreadyExistsError(
            f"model '{name}' version '{version}' is already published at {storage.url}/{base}; "
            "publish under another version"
        )
    storage.write_bytes(f"{base}/{REFERENCE_FILE}", reference.to_json())
    pointer = {"name": name, "version": version, "reference": f"{base}/{REFERENCE_FILE}"}
    storage.write_bytes(f"models/{name}/{LATEST_FILE}", _json(pointer))
    return reference.tensorflow_view()


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def _embedded_metrics(lineage: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of the export's ``metrics`` (the manager's last losses)."""
    found = lineage.get("metrics")
    if not isinstance(found, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in found.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def _read_lineage(directory: Path) -> dict[str, Any]:
    """The lineage embedded in the export, read without TensorFlow from its own file copy."""
    path = directory / "assets.extra" / "hml_lineage.json"
    return json.loads(path.read_text("utf-8")) if path.is_file() else {}


def fetch_export(storage: Any, name: str, ref: str = "latest") -> tuple[Path, dict[str, Any]]:
    """Download ``ref`` (``latest``, a version or an alias) into a new local directory,
    verifying the archive's SHA256 before unpacking and the files' digest after."""
    from ..models.store import ModelStore
    from .export import directory_digest

    check_name(name, "model")
    reference = ModelStore(storage).resolve(name, ref)  # checked as every read checks it
    if reference.kind != KIND:
        raise ModelIntegrityError(
            f"{storage.url}/{reference.key} is not a TensorFlow model reference (kind "
            f"{reference.kind!r}); load it with ModelContainer"
        )
    if reference.tree_digest is None:  # from_json requires it of this kind
        raise ModelIntegrityError(f"{storage.url}/{reference.key} lacks a tree_digest")
    archive_key = f"{reference.directory}/{reference.model_file}"
    try:
        archive = storage.read_bytes(archive_key)
    except NotFoundError:
        raise ModelIntegrityError(
            f"{storage.url}/{archive_key} named by the model reference is missing; re-publish "
            "the model or fetch another version"
        ) from None
    except (OSError, StorageError) as exc:
        raise unreadable_error(f"{storage.url}/{archive_key}", exc) from None
    if sha256_hex(archive) != reference.model_sha256:
        raise ModelIntegrityError(
            f"{storage.url}/{archive_key} does not match the SHA256 in its reference: the model "
            "was changed or corrupted after publishing; re-publish it"
        )
    target = Path(tempfile.mkdtemp(prefix=f"hml-{name}-"))
    try:
        _extract(archive, target)
        if directory_digest(target) != reference.tree_digest:
            raise ModelIntegrityError(
                f"files of model '{name}' {reference.version} differ from its digest; re-publish it"
            )
    except BaseException:  # a refused version leaves nothing behind (a reload retries it)
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target, reference.tensorflow_view()


def _extract(archive: bytes, target: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
        members = tar.getmembers()
        for member in members:  # plain files inside the target only, whatever the Python
            parts = Path(member.name).parts
            if not member.isfile() or member.name.startswith("/") or ".." in parts:
                raise ModelIntegrityError(f"model archive holds an unsafe entry {member.name!r}")
        for member in members:
            path = target / member.name
            path.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None  # a regular file, checked above
            with source, open(path, "wb") as out:
                out.write(source.read())
