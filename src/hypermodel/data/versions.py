"""Dataset versions: one stable name, a new immutable version per pipeline run.

A dataset written inside a pipeline op gets a version by default: its files go to
``<project>/<branch>@<version>/<name>/`` (Hypergol reads it as the branch ``<branch>@<version>``,
byte for byte the same format), and a small entry ``.hml-versions/<project>/<branch>/<name>/
<version>.json`` records when, by which run and task, and with which checksum it was published.
Written outside an op (a script, a notebook), a dataset keeps its plain directory
``<project>/<branch>/<name>/`` and its entry is ``_plain.json``.

Reading a dataset by name alone picks, in order: the version this run wrote (inside an op), the
newest published version, the plain dataset. ``NAME@VERSION`` (or ``version=``) picks one.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING, Any

import orjson

from ..context import maybe_context
from ..errors import NotFoundError

if TYPE_CHECKING:
    from ..storage import Storage
    from .dataset import Dataset

REGISTRY = ".hml-versions"
PLAIN = "_plain"
SEPARATOR = "@"


def new_version() -> str:
    """A fresh version id: UTC time (sorts by age) and a random suffix (unique across hosts)."""
    now = dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{now.microsecond:06d}-{secrets.token_hex(2)}"


def version_for_token(token: str, run_id: str = "") -> str:
    """The version chunk jobs of one write agree on: derived from the writers' token (and the
    run, when a forced rebuild must not meet an earlier run's files)."""
    import hashlib

    return "t" + hashlib.sha1(f"{token}\0{run_id}".encode()).hexdigest()[:20]


def split_ref(text: str) -> tuple[str, str | None]:
    """``"name@version"`` -> ``("name", "version")``; ``"name"`` -> ``("name", None)``."""
    if SEPARATOR in text:
        base, _, version = text.partition(SEPARATOR)
        return base, version
    return text, None


def _entry_key(ds: Dataset, version: str | None) -> str:
    return f"{REGISTRY}/{ds.project}/{ds.branch}/{ds.name}/{version or PLAIN}.json"


def context_key(ds: Dataset) -> str:
    return f"{ds.storage.url}|{ds.project}/{ds.branch}/{ds.name}"


def register(ds: Dataset, checksum: str, meta: dict[str, Any]) -> None:
    """Record a published dataset (versioned or plain) in its storage's version registry."""
    ctx = maybe_context()
    entry: dict[str, Any] = {
        "version": ds.version,
        "checksum": checksum,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(),
        "run_id": ctx.run_id if ctx else None,
        "pipeline": ctx.pipeline if ctx else None,
        "task": ctx.task if ctx else None,
        **meta,
    }
    ds.storage.write_bytes(_entry_key(ds, ds.version), orjson.dumps(entry))
    if ds.version is not None:
        use(ds, ds.version, publish=False)


def _run_key(ds: Dataset, run_id: str) -> str:
    return f"{REGISTRY}/{ds.project}/{ds.branch}/{ds.name}/runs/{run_id}.json"


def use(ds: Dataset, version: str, *, publish: bool = True) -> None:
    """Make ``version`` the one this run reads by name (a write of it, or a task's reuse of an
    equal earlier version), in this process and in every other process of the run."""
    ctx = maybe_context()
    if ctx is None:
        return
    ds.storage.write_bytes(_run_key(ds, ctx.run_id), orjson.dumps({"version": version}))
    if publish:
        ctx.dataset_versions[context_key(ds)] = version


def entries(storage: Storage, project: str, branch: str, name: str) -> list[dict[str, Any]]:
    """Every recorded version of a dataset, oldest first (the plain one excluded)."""
    found = []
    for key in storage.list(f"{REGISTRY}/{project}/{branch}/{name}"):
        leaf = key.rsplit("/", 1)[-1]
        if not leaf.endswith(".json") or leaf == f"{PLAIN}.json" or key.count("/") != 4:
            continue
        try:
            entry = orjson.loads(storage.read_bytes(key))
        except (NotFoundError, orjson.JSONDecodeError):
            continue  # removed meanwhile, or written by hand: not a version
        if isinstance(entry, dict) and entry.get("version") == leaf[: -len(".json")]:
            found.append(entry)
    found.sort(key=lambda e: (str(e.get("created", "")), str(e.get("version", ""))))
    return found


def entry(ds: Dataset, version: str | None) -> dict[str, Any] | None:
    try:
        data = orjson.loads(ds.storage.read_bytes(_entry_key(ds, version)))
    except (NotFoundError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def forget(ds: Dataset, version: str | None) -> None:
    ds.storage.delete(_entry_key(ds, version))


def resolve_read(ds: Dataset) -> str | None:
    """The version a read of ``ds`` by name sees (None: the plain dataset)."""
    ctx = maybe_context()
    found = None
    if ctx is not None:
        found = ctx.dataset_versions.get(context_key(ds))
        if found is not None:
            return found
        try:
            pointer = orjson.loads(ds.storage.read_bytes(_run_key(ds, ctx.run_id)))
            version = str(pointer["version"])
            if ds.with_version(version).exists():
                return version
        except (NotFoundError, orjson.JSONDecodeError, KeyError, TypeError):
            pass
    recorded = entries(ds.storage, ds.project, ds.branch, ds.name)
    for candidate in reversed(recorded):
        version = str(candidate["version"])
        if ds.with_version(version).exists():
            return version
    return None


def find_by_token(ds: Dataset, token: str) -> str | None:
    """The newest published version of ``ds`` whose writer recorded ``token``."""
    for candidate in reversed(entries(ds.storage, ds.project, ds.branch, ds.name)):
        if candidate.get("token") == token:
            version = str(candidate["version"])
            if ds.with_version(version).exists():
                return version
    return None
