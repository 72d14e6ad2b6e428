"""ModelStore: every published model of a bucket, its versions, aliases and lineage.

::

    store = ModelStore(app.storage())
    store.models()                                   # ["price-model", "wine-classifier"]
    store.versions("wine-classifier")                # [ModelReference, ...], oldest first
    store.set_alias("wine-classifier", "production", "20261122-040047-9091f5", reason="AUC up")
    store.resolve("wine-classifier", "production")   # the reference production points at
    store.rollback("wine-classifier", "production")  # back to its previous version
    store.lineage("wine-classifier", "production")   # version -> datasets -> sources -> run

Every reference read here is checked as a load checks it (see ``reference``): its fields and
digests are well formed, it lies in its own version's directory, and ``latest.json`` and alias
entries may only point at the model's own versions. The files' digests are checked by
``verify`` and by every load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, StorageError, UsageError
from ..names import check_name, is_safe_name
from ..serving.errors import ModelIntegrityError
from . import aliases as log
from .aliases import AliasEntry, check_alias, is_alias_name
from .reference import (
    REFERENCE_FILE,
    RESERVED,
    ModelReference,
    check_location,
    latest_reference_key,
    sha256_hex,
    unreadable_error,
    version_reference_key,
)

if TYPE_CHECKING:
    from ..storage import Storage

__all__ = ["ModelStore"]


class ModelStore:
    """The models of one bucket (``models/`` under the storage root)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def __repr__(self) -> str:
        return f"ModelStore({self.storage.url!r})"

    # -- models and versions ------------------------------------------------------------------
    def models(self) -> list[str]:
        """Names of the models with at least one published version, sorted."""
        found = set()
        for key in self.storage.list("models"):
            hit = version_reference_key(key)
            if hit is not None:
                found.add(hit[0])
        return sorted(found)

    def version_names(self, name: str) -> list[str]:
        """The model's version directories holding a reference (no reference read), sorted."""
        check_name(name, "model")
        found = set()
        for key in self.storage.list(f"models/{name}"):
            hit = version_reference_key(key, name)
            if hit is not None:
                found.add(hit[1])
        return sorted(found)

    def versions(self, name: str) -> list[ModelReference]:
        """Every published version of ``name``, each reference checked, oldest first (by
        ``created``, then version). NotFoundError listing the models there are when none."""
        names = self.version_names(name)
        if not names:
            raise self._unknown_model(name)
        refs = [self.read_reference(f"models/{name}/{v}/{REFERENCE_FILE}", name) for v in names]
        return sorted(refs, key=lambda r: (r.created, r.version))

    def resolve(self, name: str, ref: str = "latest") -> ModelReference:
        """The reference ``ref`` names: ``latest``, a version, or an alias."""
        return self.read_reference(self.reference_key(name, ref), name)

    def reference_key(self, name: str, ref: str) -> str:
        """The key of the reference ``ref`` (``latest``, a version or an alias) names, following
        ``latest.json`` or the alias's current entry; only ever one of the model's versions."""
        check_name(name, "model")
        if not isinstance(ref, str) or not ref:
            raise UsageError(
                f"model '{name}': a reference is 'latest', a version or an alias, got {ref!r}"
            )
        if ref == "latest":
            try:
                return latest_reference_key(self.storage, name)
            except NotFoundError:
                if not self.version_names(name):
                    raise self._unknown_model(name) from None
                raise
        if is_alias_name(ref):
            entry = log.head(self.storage, name, ref)
            if entry is not None:
                if entry.version is None:
                    raise NotFoundError(
                        f"alias '{ref}' of model '{name}' was deleted (entry {entry.sequence}, "
                        f"{entry.at} by {entry.by}); {self.choices(name)}"
                    )
                return f"models/{name}/{entry.version}/{REFERENCE_FILE}"
        if not is_safe_name(ref) or ref in RESERVED:
            raise UsageError(
                f"model '{name}': {ref!r} is not 'latest', a version or an alias; "
                f"{self.choices(name)}"
            )
        return f"models/{name}/{ref}/{REFERENCE_FILE}"

    def read_reference(self, key: str, name: str | None = None) -> ModelReference:
        """The reference at ``key``, checked (fields, digests, its place in the bucket)."""
        try:
            raw = self.storage.read_bytes(key)
        except NotFoundError:
            found = version_reference_key(key, name)
            model = found[0] if found else name
            if model is not None and not self.version_names(model):
                raise self._unknown_model(model) from None
            wanted = f"version or alias '{found[1]}'" if found else f"reference {key}"
            raise NotFoundError(
                f"model '{model}' has no {wanted} in {self.storage.url}; "
                f"{self.choices(model or '')}"
            ) from None
        except (OSError, StorageError) as exc:
            raise unreadable_error(f"{self.storage.url}/{key}", exc) from None
        reference = ModelReference.from_json(raw, key=key)
        check_location(reference, self.storage)
        if name is not None and reference.name != name:
            raise ModelIntegrityError(
                f"{self.storage.url}/{key} is model {reference.name!r}'s reference, not "
                f"{name!r}'s; load {name!r} by 'latest', a version or an alias"
            )
        return reference

    def verify(self, name: str, ref: str = "latest") -> ModelReference:
        """Resolve ``ref`` and check the SHA-256 of every file its reference names (what a
        load checks before it unpickles or unpacks). ModelIntegrityError naming the file."""
        reference = self.resolve(name, ref)
        files = [(reference.model_file, reference.model_sha256)]
        if reference.kind == "joblib":
            files.append((reference.distributions_file, reference.distributions_sha256))
        for file, expected in files:
            key = f"{reference.directory}/{file}"
            try:
                data = self.storage.read_bytes(key)
            except NotFoundError:
                raise ModelIntegrityError(
                    f"{self.storage.url}/{key} named by the model reference is missing: the "
                    "model directory was changed after publishing; re-publish the model or load "
                    "another version"
                ) from None
            except (OSError, StorageError) as exc:
                raise unreadable_error(f"{self.storage.url}/{key}", exc) from None
            if sha256_hex(data) != expected:
                raise ModelIntegrityError(
                    f"{self.storage.url}/{key} has SHA256 {sha256_hex(data)} but its reference "
                    f"records {expected}: the file was changed after publishing; re-publish the "
                    "model or load another version"
                )
        return reference

    # -- aliases --------------------------------------------------------------------------------
    def aliases(self, name: str) -> dict[str, str]:
        """alias -> version, for the aliases set now (deleted ones left out)."""
        check_name(name, "model")
        found = {}
        for alias in log.alias_names(self.storage, name):
            entry = log.head(self.storage, name, alias)
            if entry is not None and entry.version is not None:
                found[alias] = entry.version
        return found

    def alias_history(self, name: str, alias: str) -> list[AliasEntry]:
        """Every change of ``alias``, oldest first; NotFoundError when it was never set."""
        check_name(name, "model")
        check_alias(alias)
        entries = log.history(self.storage, name, alias)
        if not entries:
            raise self._unknown_alias(name, alias)
        return entries

    def set_alias(
        self,
        name: str,
        alias: str,
        version: str,
        *,
        expected: str | None = None,
        reason: str = "",
    ) -> AliasEntry:
        """Point ``alias`` at ``version`` (a published version, its reference checked).

        ``expected`` makes it a compare-and-set: refused unless the alias is at that version.
        A concurrent change of the same alias is an AliasConflictError, never lost."""
        check_name(name, "model")
        check_alias(alias)
        versions = self.version_names(name)
        if not versions:
            raise self._unknown_model(name)
        if version not in versions:
            raise NotFoundError(
                f"model '{name}' has no version {version!r} in {self.storage.url} to point alias "
                f"'{alias}' at (an alias points at a version, not at another alias); "
                f"{self.choices(name)}"
            )
        if alias in versions:
            raise UsageError(
                f"model '{name}' has a version named '{alias}': an alias of that name would "
                "make the name mean two things; choose another alias name"
            )
        self.read_reference(f"models/{name}/{version}/{REFERENCE_FILE}", name)
        if expected is not None:
            check_name(expected, "expected version")
        return log.append(self.storage, name, alias, version, expected=expected, reason=reason)

    def delete_alias(
        self, name: str, alias: str, *, expected: str | None = None, reason: str = ""
    ) -> AliasEntry:
        """Unset ``alias`` (recorded as an entry whose version is None)."""
        check_name(name, "model")
        check_alias(alias)
        entry = log.head(self.storage, name, alias)
        if entry is None or entry.version is None:
            raise self._unknown_alias(name, alias)
        return log.append(self.storage, name, alias, None, expected=expected, reason=reason)

    def rollback(self, name: str, alias: str, *, reason: str = "") -> AliasEntry:
        """Move ``alias`` back to the value its current entry replaced, as a new entry (so a
        second rollback undoes the first)."""
        check_name(name, "model")
        check_alias(alias)
        entry = log.head(self.storage, name, alias)
        if entry is None:
            raise self._unknown_alias(name, alias)
        if entry.previous is None:
            raise UsageError(
                f"alias '{alias}' of model '{name}' has no previous version to roll back to: its "
                f"entry {entry.sequence} ({entry.at} by {entry.by}) set it first; point it at a "
                f"version instead (`hml models alias {name} {alias} VERSION`)"
            )
        self.resolve(name, entry.previous)  # still published, its reference sound
        why = reason or f"rollback of entry {entry.sequence} ({_shown(entry.version)})"
        # decided on this entry: a change landing meanwhile is a conflict, never undone
        return log.append(
            self.storage, name, alias, entry.previous, after=entry.sequence, reason=why
        )

    # -- lineage -------------------------------------------------------------------------------
    def lineage(self, name: str, ref: str = "latest") -> dict[str, Any]:
        """The tree from a model version to its training datasets, their sources, commits and
        tracking runs (see ``lineage.model_lineage``)."""
        from .lineage import model_lineage

        return model_lineage(self.storage, self.resolve(name, ref))

    # -- errors ---------------------------------------------------------------------------------
    def choices(self, name: str) -> str:
        """What ``name`` offers to load, for error messages: versions, aliases, 'latest'."""
        versions = self.version_names(name) if is_safe_name(name) else []
        try:
            aliases = self.aliases(name) if versions else {}
        except ModelIntegrityError:
            aliases = {}
        shown = ", ".join(versions[-10:]) or "none"
        if len(versions) > 10:
            shown = f"{len(versions) - 10} older, " + shown
        named = ", ".join(f"{a} -> {v}" for a, v in sorted(aliases.items())) or "none"
        return f"published versions: {shown}; aliases: {named}; or 'latest'"

    def _unknown_model(self, name: str) -> NotFoundError:
        models = self.models()
        return NotFoundError(
            f"model '{name}' has never been published to {self.storage.url} (models there: "
            f"{', '.join(models) or 'none'}); run the training pipeline that publishes it, or "
            "pick a listed model (`hml models list`)"
        )

    def _unknown_alias(self, name: str, alias: str) -> NotFoundError:
        if not self.version_names(name):
            return self._unknown_model(name)
        return NotFoundError(
            f"model '{name}' has no alias '{alias}' set in {self.storage.url}; "
            f"{self.choices(name)}; set it with `hml models promote {name} VERSION --to {alias}`"
        )


def _shown(version: str | None) -> str:
    return version if version is not None else "unset"
