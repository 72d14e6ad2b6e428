"""Aliases of a model (``production``, ``staging``...): append-only logs, so no update is lost.

Each alias is a directory of numbered entries::

    models/<name>/aliases/<alias>/0000000001.json   {"version": "v1", "previous": null, ...}
    models/<name>/aliases/<alias>/0000000002.json   {"version": "v2", "previous": "v1", ...}
    models/<name>/aliases/<alias>/0000000003.json   {"version": null, "previous": "v2", ...}

The alias's value is its highest entry (``null``: deleted). A change reads the highest entry
``N`` and creates ``N+1`` with the storage's create-if-absent write, which exactly one writer
wins on every backend (local disk, GCS, S3). Two promoters who both read ``N`` race for the
same ``N+1``: one is recorded, the other gets ``AliasConflictError`` naming the alias, the value
that won and the fix. Nothing is ever overwritten, so the log is the alias's history.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
import socket
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..errors import HypermodelError, NotFoundError, StorageError, UsageError
from ..names import is_safe_name
from ..serving.errors import ModelIntegrityError
from .reference import ALIASES_DIR, RESERVED, short_error, unreadable_error

if TYPE_CHECKING:
    from ..storage import Storage

SEQUENCE_WIDTH = 10
_ENTRY = re.compile(rf"(\d{{{SEQUENCE_WIDTH}}})\.json")
_ALIAS = re.compile(r"[a-z][a-z0-9_-]{0,62}")
# what a version looks like: publish's <YYYYMMDD-HHMMSS>-<hex>, and v3, v1.2, 7...
_VERSION_LIKE = re.compile(r"v?\d[A-Za-z0-9_.\-]*")

__all__ = ["AliasConflictError", "AliasEntry", "check_alias", "is_alias_name"]


class AliasConflictError(HypermodelError):
    """An alias was not where the change expected it: someone moved it first, or ``expected=``
    names another version. Nothing was written."""


def is_alias_name(value: object) -> bool:
    """Whether ``value`` may name an alias: a lower-case letter, then lower-case letters,
    digits, '-' or '_' (at most 63), never ``latest`` and never shaped like a version."""
    return (
        isinstance(value, str)
        and _ALIAS.fullmatch(value) is not None
        and value not in RESERVED
        and _VERSION_LIKE.fullmatch(value) is None
    )


def check_alias(value: str) -> str:
    if not is_alias_name(value):
        raise UsageError(
            f"alias name {value!r} is not allowed: start with a lower-case letter, then lower-case "
            "letters, digits, '-' or '_' (at most 63 characters); not 'latest' and not shaped like "
            "a version (v3, 1.2, 20261122-...), so that a name never means both (e.g. production, "
            "staging, canary)"
        )
    return value


def by_whom() -> str:
    """Who makes a change: ``$HML_AUTHOR``, else ``user@host`` (never a credential)."""
    given = os.environ.get("HML_AUTHOR", "").strip()
    if given:
        return given[:200]
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class AliasEntry:
    """One change of an alias: what it points at from now on (None: deleted), and before."""

    model: str
    alias: str
    sequence: int
    version: str | None
    previous: str | None
    at: str
    by: str
    reason: str = ""
    key: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        data = self.to_dict()
        data.pop("key")
        return json.dumps(data, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def alias_prefix(name: str, alias: str) -> str:
    return f"models/{name}/{ALIASES_DIR}/{alias}"


def entry_key(name: str, alias: str, sequence: int) -> str:
    return f"{alias_prefix(name, alias)}/{sequence:0{SEQUENCE_WIDTH}d}.json"


def sequences(storage: Storage, name: str, alias: str) -> list[int]:
    """The alias's entry numbers, lowest first (keys of other shapes are not entries)."""
    prefix = alias_prefix(name, alias)
    found = []
    for key in storage.list(prefix):
        match = _ENTRY.fullmatch(key[len(prefix) + 1 :])
        if match:
            found.append(int(match.group(1)))
    return sorted(found)


def alias_names(storage: Storage, name: str) -> list[str]:
    """Every alias with at least one entry (deleted ones included), sorted."""
    prefix = f"models/{name}/{ALIASES_DIR}"
    found = set()
    for key in storage.list(prefix):
        parts = key[len(prefix) + 1 :].split("/")
        if len(parts) == 2 and is_alias_name(parts[0]) and _ENTRY.fullmatch(parts[1]):
            found.add(parts[0])
    return sorted(found)


def read_entry(storage: Storage, name: str, alias: str, sequence: int) -> AliasEntry:
    """One entry, checked: a JSON object of the right types, recording its own model, alias
    and number, naming a version by a safe name. ModelIntegrityError otherwise."""
    key = entry_key(name, alias, sequence)
    where = f"{storage.url}/{key}"
    fix = (
        f"set the alias again (`hml models alias {name} {alias} VERSION`) to supersede it with a "
        "newer entry"
    )
    try:
        raw = storage.read_bytes(key)
    except NotFoundError:
        raise NotFoundError(f"alias entry {where} does not exist") from None
    except (OSError, StorageError) as exc:
        raise unreadable_error(where, exc) from None
    try:
        data = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError included
        raise ModelIntegrityError(
            f"alias entry {where} is not valid JSON ({short_error(exc)}); {fix}"
        ) from None
    if not isinstance(data, dict):
        raise ModelIntegrityError(f"alias entry {where} is not a JSON object; {fix}")
    for field in ("version", "previous"):
        value = data.get(field)
        if value is not None and not (is_safe_name(value) and value not in RESERVED):
            raise ModelIntegrityError(
                f"alias entry {where}: '{field}' {value!r} is not a version name; {fix}"
            )
    for field in ("at", "by", "reason"):
        if not isinstance(data.get(field, ""), str):
            raise ModelIntegrityError(f"alias entry {where}: '{field}' is not a string; {fix}")
    recorded = (data.get("model"), data.get("alias"), data.get("sequence"))
    if recorded != (name, alias, sequence):
        raise ModelIntegrityError(
            f"alias entry {where} records model {recorded[0]!r} alias {recorded[1]!r} entry "
            f"{recorded[2]!r}, not its own place: it was copied or changed; {fix}"
        )
    return AliasEntry(
        model=name,
        alias=alias,
        sequence=sequence,
        version=data.get("version"),
        previous=data.get("previous"),
        at=str(data.get("at", "")),
        by=str(data.get("by", "")),
        reason=str(data.get("reason", "")),
        key=key,
    )


def head(storage: Storage, name: str, alias: str) -> AliasEntry | None:
    """The alias's highest entry (its current value), or None when it has none."""
    found = sequences(storage, name, alias)
    return read_entry(storage, name, alias, found[-1]) if found else None


def history(storage: Storage, name: str, alias: str) -> list[AliasEntry]:
    return [read_entry(storage, name, alias, n) for n in sequences(storage, name, alias)]


def append(
    storage: Storage,
    name: str,
    alias: str,
    version: str | None,
    *,
    expected: str | None = None,
    after: int | None = None,
    reason: str = "",
) -> AliasEntry:
    """Record ``alias -> version`` (None: delete) as the entry after the highest one.

    ``expected`` (a version) makes it a compare-and-set: refused unless the alias is at that
    version now; ``after`` (an entry number) refuses unless that entry is still the latest, so
    a change decided on one entry never lands on top of a later one. Losing the race for the
    next entry is an AliasConflictError, never a silent overwrite."""
    numbers = sequences(storage, name, alias)
    latest = numbers[-1] if numbers else 0
    if after is not None and latest != after:
        raise AliasConflictError(
            f"alias '{alias}' of model '{name}' changed while this was decided (entry {latest} "
            f"is newer than entry {after}); nothing changed: check `hml models history {name} "
            f"{alias}` and run the command again if it still stands"
        )
    current: AliasEntry | None = None
    if numbers:
        try:
            current = read_entry(storage, name, alias, numbers[-1])
        except ModelIntegrityError:
            if expected is not None:  # cannot compare with an unreadable value
                raise
    now_at = current.version if current is not None else None
    if expected is not None and now_at != expected:
        raise AliasConflictError(
            f"alias '{alias}' of model '{name}' is at {_shown(now_at)}, not {expected} as "
            f"expected; nothing changed: check `hml models show {name}` and run again with "
            f"--expect {now_at or '<version>'} (expected={now_at!r}) if the change still stands"
        )
    sequence = (numbers[-1] if numbers else 0) + 1
    entry = AliasEntry(
        model=name,
        alias=alias,
        sequence=sequence,
        version=version,
        previous=now_at,
        at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"),
        by=by_whom(),
        reason=reason,
        key=entry_key(name, alias, sequence),
    )
    if not storage.put_if_absent(entry.key, entry.to_json()):
        winner = _winner(storage, name, alias, sequence)
        raise AliasConflictError(
            f"alias '{alias}' of model '{name}' was changed by someone else at the same time: it "
            f"is now at {_shown(winner)} (entry {sequence}); yours ({_shown(version)}) was not "
            "recorded: run the command again to apply it on top, or pass "
            f"--expect {winner or '<version>'} (expected={winner!r}) to apply it only while the "
            "alias stays there"
        )
    return entry


def _winner(storage: Storage, name: str, alias: str, sequence: int) -> str | None:
    try:
        return read_entry(storage, name, alias, sequence).version
    except HypermodelError:
        return None


def _shown(version: str | None) -> str:
    return version if version is not None else "nothing (unset)"
