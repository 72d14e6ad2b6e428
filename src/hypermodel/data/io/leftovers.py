"""What interrupted writers leave in a *published* dataset's directory, and removing it safely.

A writer killed after its ``.chk`` was written (the dataset is published) but before it cleaned
up leaves files no reader looks at, forever unless something removes them:

- its publish claim ``.hml-publish/<n>.json`` with ``<n>.beat`` (and ``<n>.failed`` markers of
  earlier writers that gave up);
- on a bucket, chunks staged under ``.hml-stage/`` by chunk jobs;
- on local disk, hidden temporary files: a staged chunk or its layout
  (``.<chunk file>.<token>.tmp``, ``.layout.tmp``) and the storage's atomic-write temporaries
  (``.<file>.<random>.tmp``, e.g. beside the ``.chk`` when the kill came between its hard link
  and the removal of its temporary name).

The next write of the dataset (which finds it published) and ``hml gc`` remove them, and only
while the ``.chk`` is in place: once a dataset is published no writer can publish it again, so a
claim on it protects nothing. Even so, nothing that may belong to a live writer is touched: a
claim whose holder is a live process on this host stays (it removes its claim itself), a claim
whose record changed since it was looked at stays, and a local temporary file stays until it
has not been modified for ``GRACE`` seconds (an atomic write lives for milliseconds).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import NotFoundError
from .claims import pid_alive
from .publish import CLAIM_DIR
from .staging import STAGE_DIR

if TYPE_CHECKING:
    from .address import DatasetAddress

log = logging.getLogger(__name__)

GRACE = 60.0  # seconds a local temporary file must have been left alone to be a leftover


@dataclass(frozen=True)
class Leftover:
    """One file to remove: ``name`` relative to the dataset directory; ``key`` its storage key
    or ``path`` its local path (hidden temporary files, which a storage does not list);
    ``record`` the claim record seen (a claim is removed only if it is still that one)."""

    name: str
    size: int
    key: str | None = None
    path: str | None = None
    record: str | None = None


def find(ds: DatasetAddress, now: float | None = None) -> list[Leftover]:
    """The leftovers in ``ds``'s directory (none unless it is published)."""
    if not ds.exists():
        return []
    found = _claims(ds) + _staged(ds)
    local = ds.local_dir()
    if local is not None:
        now = time.time() if now is None else now
        found += _temporaries(local, "", now)
        found += _temporaries(os.path.join(local, CLAIM_DIR), CLAIM_DIR + "/", now)
    return sorted(found, key=lambda f: f.name)


def remove(ds: DatasetAddress, found: list[Leftover]) -> list[Leftover]:
    """Remove what ``find`` found, if the dataset is still published; what was removed."""
    if not found or not ds.exists():
        return []
    storage = ds.storage
    done = []
    for leftover in found:
        try:
            if leftover.path is not None:
                os.unlink(leftover.path)
            elif leftover.key is not None:
                if leftover.record is not None and _read(ds, leftover.key) != leftover.record:
                    continue  # another claim under that name since: not ours to judge
                storage.delete(leftover.key)
        except FileNotFoundError:
            continue
        done.append(leftover)
    for sub in (CLAIM_DIR, STAGE_DIR):
        path = storage.local_path(ds.key(sub))
        if path:
            try:
                os.rmdir(path)  # only when empty
            except OSError:
                pass
    return done


def tidy(ds: DatasetAddress) -> None:
    """Find and remove the leftovers of a published dataset; never raises (a writer calls it
    on its way to DatasetExistsError, which must stay the error it reports)."""
    try:
        removed = remove(ds, find(ds))
    except Exception as exc:  # pragma: no cover - a best effort on an error path
        log.debug("%s: leftovers not removed: %s", ds, exc)
        return
    if removed:
        log.info(
            "%s: removed %d leftover file(s) of interrupted writers: %s",
            ds, len(removed), ", ".join(f.name for f in removed),
        )  # fmt: skip


def _read(ds: DatasetAddress, key: str) -> str | None:
    try:
        return ds.storage.read_text(key)
    except (NotFoundError, UnicodeDecodeError):
        return None


def _size(ds: DatasetAddress, key: str) -> int:
    try:
        return ds.storage.size(key)
    except (NotFoundError, OSError):
        return 0


def _claims(ds: DatasetAddress) -> list[Leftover]:
    """Every file of the publish claims, except those of a claim held by a live process on
    this host."""
    prefix = ds.key(CLAIM_DIR)
    keys = list(ds.storage.list(prefix))
    live: set[str] = set()
    records: dict[str, str | None] = {}
    for key in keys:
        leaf = key.rsplit("/", 1)[-1]
        number, _, kind = leaf.partition(".")
        if kind != "json":
            continue
        record = _read(ds, key)
        records[key] = record
        try:
            owner = json.loads(record or "")
        except ValueError:
            owner = None
        if (
            isinstance(owner, dict)
            and owner.get("host") == socket.gethostname()
            and isinstance(owner.get("pid"), int)
            and pid_alive(owner["pid"])
        ):
            live.add(number)
    found = []
    for key in keys:
        leaf = key.rsplit("/", 1)[-1]
        if leaf.partition(".")[0] in live:
            continue
        found.append(
            Leftover(f"{CLAIM_DIR}/{leaf}", _size(ds, key), key=key, record=records.get(key))
        )
    return found


def _staged(ds: DatasetAddress) -> list[Leftover]:
    """Chunks staged in a bucket (``.hml-stage/``) for a publish that is done."""
    if ds.local_dir() is not None:
        return []
    prefix = ds.key(STAGE_DIR)
    return [
        Leftover(key[len(ds.directory) + 1 :], _size(ds, key), key=key)
        for key in ds.storage.list(prefix)
    ]


def _temporaries(directory: str, label: str, now: float) -> list[Leftover]:
    """Hidden temporary files in a local directory left alone for ``GRACE`` seconds."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = []
    for name in names:
        if not (name.startswith(".") and (name.endswith(".tmp") or name.endswith(".tmp.part"))):
            continue
        path = os.path.join(directory, name)
        try:
            stat = os.stat(path)
        except OSError:
            continue
        if os.path.isfile(path) and now - stat.st_mtime >= GRACE:
            found.append(Leftover(label + name, stat.st_size, path=path))
    return found
