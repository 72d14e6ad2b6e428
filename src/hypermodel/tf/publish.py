"""Publish an exported TensorFlow model to the app's bucket, and fetch it back verified.

Layout, beside the other models of the app::

    models/<name>/<version>/saved_model.tar     the export, as a deterministic tar
    models/<name>/<version>/reference.json      lineage + SHA256 of the tar and of the files
    models/<name>/latest.json                   pointer, written last

A version is never overwritten (the tar is created only if absent), and ``latest.json`` is
written after everything else, so a reader following it only finds complete versions. No
TensorFlow is needed here: the files are moved as bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import secrets
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from ..errors import AlreadyExistsError, NotFoundError, StorageError
from ..names import check_name, is_safe_name
from ..serving.errors import ModelIntegrityError
from ..serving.model import latest_reference_key, unreadable_error, version_reference_key

ARCHIVE_FILE = "saved_model.tar"
REFERENCE_FILE = "reference.json"
LATEST_FILE = "latest.json"
KIND = "tensorflow-saved-model"


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
    storage: Any, name: str, export: str | os.PathLike[str], version: str | None = None
) -> dict[str, Any]:
    """Upload an export made by ``export_model``; returns its reference (also stored)."""
    from .export import directory_digest

    check_name(name, "model")
    directory = Path(export)
    lineage_file = directory / "saved_model.pb"
    if not lineage_file.is_file():
        raise NotFoundError(f"{directory} is not an exported model (no saved_model.pb)")
    now = dt.datetime.now(dt.timezone.utc)
    version = (
        check_name(version, "model version")
        if version
        else (f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}")
    )
    archive = _tar(directory)
    base = f"models/{name}/{version}"
    reference = {
        "kind": KIND,
        "name": name,
        "version": version,
        "created": now.isoformat(timespec="seconds"),
        "archive_file": ARCHIVE_FILE,
        "archive_sha256": hashlib.sha256(archive).hexdigest(),
        "digest": directory_digest(directory),
        "lineage": _read_lineage(directory),
    }
    if not storage.put_if_absent(f"{base}/{ARCHIVE_FILE}", archive):
        raise AlreadyExistsError(
            f"model '{name}' version '{version}' is already published at {storage.url}/{base}; "
            "publish under another version"
        )
    storage.write_bytes(f"{base}/{REFERENCE_FILE}", _json(reference))
    pointer = {"name": name, "version": version, "reference": f"{base}/{REFERENCE_FILE}"}
    storage.write_bytes(f"models/{name}/{LATEST_FILE}", _json(pointer))
    return reference


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def _read_lineage(directory: Path) -> dict[str, Any]:
    """The lineage embedded in the export, read without TensorFlow from its own file copy."""
    path = directory / "assets.extra" / "hml_lineage.json"
    return json.loads(path.read_text("utf-8")) if path.is_file() else {}


def fetch_export(storage: Any, name: str, ref: str = "latest") -> tuple[Path, dict[str, Any]]:
    """Download version ``ref`` (``latest`` or a version) into a new local directory,
    verifying the archive's SHA256 before unpacking and the files' digest after."""
    from .export import directory_digest

    check_name(name, "model")
    key = _reference_key(storage, name, ref)
    where = f"{storage.url}/{key}"
    try:
        raw = storage.read_bytes(key)
    except NotFoundError:
        raise NotFoundError(f"model '{name}': no reference at {where}") from None
    except (OSError, StorageError) as exc:
        raise unreadable_error(where, exc) from None
    reference = _check_reference(raw, where, name, key)
    base = key.rsplit("/", 1)[0]
    archive_key = f"{base}/{reference['archive_file']}"
    try:
        archive = storage.read_bytes(archive_key)
    except NotFoundError:
        raise ModelIntegrityError(
            f"{storage.url}/{archive_key} named by the model reference is missing; re-publish "
            "the model or fetch another version"
        ) from None
    except (OSError, StorageError) as exc:
        raise unreadable_error(f"{storage.url}/{archive_key}", exc) from None
    if hashlib.sha256(archive).hexdigest() != reference["archive_sha256"]:
        raise ModelIntegrityError(
            f"{storage.url}/{base}/{reference['archive_file']} does not match the SHA256 in its "
            "reference: the model was changed or corrupted after publishing; re-publish it"
        )
    target = Path(tempfile.mkdtemp(prefix=f"hml-{name}-"))
    _extract(archive, target)
    if directory_digest(target) != reference["digest"]:
        raise ModelIntegrityError(
            f"files of model '{name}' {reference['version']} differ from its digest"
        )
    return target, reference


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


def _reference_key(storage: Any, name: str, ref: str) -> str:
    if ref != "latest":
        return f"models/{name}/{check_name(ref, 'model version')}/{REFERENCE_FILE}"
    return latest_reference_key(storage, name)  # only ever one of the model's own versions


def _check_reference(raw: bytes, where: str, name: str, key: str) -> dict[str, Any]:
    """The reference as a dict whose fields have the types fetch_export relies on, recording
    the model and version of its own directory; else one line naming the file and the fix."""
    fix = "re-publish the model or fetch another version"
    try:
        reference = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError included
        raise ModelIntegrityError(f"{where} is not valid JSON ({exc}); {fix}") from None
    if not isinstance(reference, dict):
        raise ModelIntegrityError(f"{where} is not a JSON object; {fix}")
    if reference.get("kind") != KIND:
        raise ModelIntegrityError(
            f"{where} is not a TensorFlow model reference; load it with ModelContainer"
        )
    for field in ("name", "version", "archive_file", "archive_sha256", "digest"):
        if not isinstance(reference.get(field), str):
            raise ModelIntegrityError(f"{where} lacks a string '{field}'; {fix}")
    if not is_safe_name(reference["archive_file"]):
        raise ModelIntegrityError(
            f"{where}: archive_file {reference['archive_file']!r} is not allowed (a plain file "
            f"name in the version's directory); {fix}"
        )
    if version_reference_key(key, name) != (reference["name"], reference["version"]):
        raise ModelIntegrityError(
            f"{where} records model {reference['name']!r} version {reference['version']!r}, "
            f"not its directory's: it was copied or changed after publishing; {fix}"
        )
    return reference
