"""Publishing a dataset: one writer at a time touches its final names, then the .chk commits it.

Every publish path (``DatasetWriter.close``, ``Dataset.publish`` after ``ChunkWriter`` jobs,
tasks and the Kubeflow publish step) goes through ``Publisher``:

1. ``begin()`` takes the dataset's *publish claim*, a create-if-absent object under
   ``<dataset>/.hml-publish/`` (the protocol of ``claims``, shared with ``cacheable``), before
   anything under a final name is written. A writer that finds a live claim raises
   ``DatasetBusyError`` (a ``DatasetExistsError``) and has touched nothing; one that finds the
   dataset published raises ``DatasetExistsError``. A claim whose writer died (its pid is gone
   on this host, it failed, or its heartbeat stood still for ``STALE_AFTER`` seconds) is taken
   over, so re-running a write after a crash needs no cleanup.
2. ``commit()``, by the holder only: promote the staged chunks onto their final names (rename on
   disk, copy inside the bucket), write the random-access index from the writers' layouts, the
   ``.def``, and last the ``.chk`` (create-if-absent as well); then remove the claim.
3. ``abort()`` marks the claim failed, so the next writer takes over at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

from ...context import OpContext, maybe_context
from .. import format as fmt
from ..errors import DatasetBusyError, DatasetError, DatasetExistsError, DatasetUsageError
from ..lineage import check_clean_for_pipeline, repo_state
from ..versions import context_key, register
from .claims import Claims

if TYPE_CHECKING:
    from ..dataset import Dataset
    from .staging import Staging

log = logging.getLogger(__name__)

CLAIM_DIR = ".hml-publish"
# A claim's heartbeat is refreshed this often while its writer publishes; a claim whose heartbeat
# stands still for STALE_AFTER seconds (on the observer's clock) belongs to a dead writer.
HEARTBEAT = 2.0
STALE_AFTER = 30.0


class Publisher:
    """Writes the lineage record, and commits a dataset under its publish claim."""

    def __init__(
        self,
        dataset: Dataset,
        token: str,
        creation_time: str | None,
        meta: dict[str, Any] | None = None,
        dependencies: list[Dataset] | None = None,
    ) -> None:
        """``dependencies``: the published datasets the write is made from (default: those
        declared on ``dataset`` with ``add_dependency``)."""
        self.dataset = dataset
        self.dependencies = list(dataset.dependencies if dependencies is None else dependencies)
        self.token = token
        self.meta = dict(meta or {})
        self.creation_time = creation_time or dt.datetime.now().isoformat()
        self.ctx = maybe_context()
        self.repo = _repo_record(dataset, self.ctx)  # taken at once, before any data
        if self.meta.get("codeDigest"):
            self.repo["codeDigest"] = self.meta["codeDigest"]
        address = dataset.address
        self.claims = Claims(address.storage, address.key(CLAIM_DIR), STALE_AFTER, HEARTBEAT)
        self.claim: int | None = None
        self._halt: Any = None

    # -- the claim --------------------------------------------------------------------------------
    def begin(self) -> None:
        """Take the publish claim, or raise DatasetExistsError / DatasetBusyError."""
        ds, claims = self.dataset, self.claims
        if ds.exists():
            raise published_error(ds)
        n, seen, waited = 0, None, False
        poll = min(0.2, HEARTBEAT / 4)
        while True:
            if claims.take(n):
                break
            owner = claims.owner(n)
            if owner is None:  # the holder finished and removed its claims: look again
                continue
            if claims.dead(n, owner, seen):
                n, seen = n + 1, None
                continue
            if ds.exists():
                raise published_error(ds)
            seen, moved = claims.watch(n, seen)
            if moved:
                raise self._busy(owner)
            if not waited and time.monotonic() - seen[1] > 2 * HEARTBEAT:
                waited = True
                log.warning(
                    "%r: the publish claim of %s is silent; waiting up to %.0fs for it to go "
                    "stale before taking it over",
                    ds, _who(owner), STALE_AFTER,
                )  # fmt: skip
            time.sleep(poll)
        self.claim = n
        self._halt = claims.beating(n)
        if ds.exists():  # published between our check and our claim
            self._release()
            raise published_error(ds)

    def _busy(self, owner: dict[str, Any]) -> DatasetBusyError:
        ds = self.dataset
        return DatasetBusyError(
            f"dataset {ds.storage.url}/{ds.directory} is being published by another writer "
            f"({_who(owner)}); nothing of this write was published. Wait for it to finish (the "
            "dataset then exists) or, if that writer is gone, run the write again: its claim is "
            f"taken over once its heartbeat has stood still for {STALE_AFTER:.0f}s"
        )

    def _still_ours(self) -> None:
        assert self.claim is not None, "commit() before begin()"
        # a .chk: someone published meanwhile (judging this writer dead, then removing every
        # claim, this one's too): nothing may be written now
        if self.dataset.exists():
            raise exists_error(self.dataset)
        if self.claims.superseded(self.claim):
            ds = self.dataset
            raise DatasetError(
                f"the publish claim of {ds.storage.url}/{ds.directory} was taken over by another "
                "writer (this one fell silent for too long); this write stopped before its .def "
                "and .chk"
            )

    def _release(self) -> None:
        self._stop()
        self.claims.clear()
        self.claim = None

    def _stop(self) -> None:
        if self._halt is not None:
            self._halt()
            self._halt = None

    # -- committing -------------------------------------------------------------------------------
    def commit(
        self,
        checksums: dict[str, str],
        staging: Staging,
        layouts: dict[str, list[Any]] | None = None,
    ) -> str:
        """Promote the staged chunks, write the index, the .def and the .chk; the checksum.
        ``layouts`` (chunk id -> members' ``(length, count)``) default to the staged ones."""
        from .index import chunk_from_sizes, write_index

        ds = self.dataset
        ids = ds.chunk_ids()
        self._still_ours()
        staged = staging.promote(ids)
        layouts = layouts if layouts is not None else staged
        def_text = fmt.dump_def(self._definition())
        chk = {fmt.chunk_file_name(ds.name, cid): checksums[cid] for cid in ids}
        chk[fmt.def_file_name(ds.name)] = fmt.sha1_text(def_text)
        chk_text = fmt.dump_chk(chk)
        checksum = fmt.sha1_text(chk_text)
        if layouts is not None:  # before the .chk: a published dataset has its index
            write_index(ds, checksum, [chunk_from_sizes(cid, layouts[cid]) for cid in ids])
        self._still_ours()
        ds.storage.write_text(ds.def_key, def_text)
        # the version's entry before the .chk: a published version can always be found by name
        register(ds, checksum, {"token": self.token, **self.meta})
        self._still_ours()
        if not ds.storage.put_if_absent(ds.chk_key, chk_text.encode("utf-8")):
            raise exists_error(ds)
        self._release()
        if self.ctx is not None and ds.version is not None:
            self.ctx.dataset_versions[context_key(ds)] = ds.version
        try:
            staging.published()
        except Exception as exc:  # published already: leftovers only cost space
            log.warning("%r: could not remove staged leftovers: %s", ds, exc)
        if self.ctx is not None and checksum not in self.ctx.output_datasets:
            self.ctx.output_datasets.append(checksum)
        return checksum

    def abort(self) -> None:
        """Give the claim up (marked failed: the next writer takes over at once)."""
        self._stop()
        if self.claim is not None:
            try:
                self.claims.fail(self.claim)
            finally:
                self.claim = None

    def owns_final_names(self) -> bool:
        """May this writer remove files under the final names (what it uploaded before it
        failed)? Only while its claim is live and nothing was published."""
        if self.claim is None:
            return False
        try:
            return not self.claims.superseded(self.claim) and not self.dataset.exists()
        except Exception:  # in doubt, leave them: the next holder overwrites them
            return False

    def publish(
        self, checksums: dict[str, str], staging: Staging, layouts: dict[str, Any] | None = None
    ) -> str:
        """``begin`` then ``commit`` (chunks staged beforehand, e.g. by chunk jobs)."""
        ds = self.dataset
        missing = [cid for cid in ds.chunk_ids() if cid not in checksums]
        if missing:
            raise DatasetUsageError(
                f"cannot publish {ds!r}: no checksum for chunk(s) {', '.join(missing[:5])}"
            )
        self.begin()
        try:
            return self.commit(checksums, staging, layouts)
        except BaseException:
            self.abort()
            raise

    def _definition(self) -> dict[str, Any]:
        ds = self.dataset
        deps = [d.dependency_record() for d in self.dependencies]
        seen = {d["chkFileChecksum"] for d in deps}
        for record in _context_inputs(self.ctx):
            if record["chkFileChecksum"] not in seen:
                seen.add(record["chkFileChecksum"])
                deps.append(record)
        return {
            # a version is the branch "<branch>@<version>" for Hypergol, which checks the .def
            "branch": f"{ds.branch}@{ds.version}" if ds.version else ds.branch,
            "chunkCount": ds.chunkCount,
            "creationTime": self.creation_time,
            "dataType": ds.dataType.__name__,
            "dependencies": deps,
            "name": ds.name,
            "project": ds.project,
            "repo": self.repo,
        }


def exists_error(ds: Dataset) -> DatasetExistsError:
    return DatasetExistsError(
        f"dataset {ds.storage.url}/{ds.directory} already exists; datasets are immutable: "
        "delete it first (Dataset.delete()) or write under another name or branch"
    )


def published_error(ds: Dataset) -> DatasetExistsError:
    """DatasetExistsError for a writer that found ``ds`` published, after removing what
    interrupted writers left in its directory (see ``leftovers``): the next write of a dataset
    cleans up after a writer killed once its .chk was in place."""
    from .leftovers import tidy

    tidy(ds.address)
    return exists_error(ds)


def _who(owner: dict[str, Any]) -> str:
    return f"process {owner.get('pid', '?')} on host {owner.get('host', '?')}"


def _repo_record(ds: Dataset, ctx: OpContext | None) -> dict[str, Any]:
    if ds.repoData is not None:
        data = ds.repoData.to_data() if hasattr(ds.repoData, "to_data") else dict(ds.repoData)
        return dict(data)
    state = repo_state()
    if ctx is not None:
        state = check_clean_for_pipeline(state, ds.directory, ctx.force)
    return dict(state)


def _context_inputs(ctx: OpContext | None) -> list[dict[str, Any]]:
    """Dependency records of every dataset the running op read."""
    if ctx is None:
        return []
    records: dict[str, dict[str, Any]] = getattr(ctx, "dataset_records", {})
    return [records[c] for c in ctx.input_datasets if c in records]
