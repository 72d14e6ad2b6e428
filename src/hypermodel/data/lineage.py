"""Where the code that writes a dataset came from: the git state recorded in each ``.def``.

The ``repo`` record keeps Hypergol's keys (including its ``comitter`` spelling) so Hypergol
reads our ``.def`` files: ``branchName, commitHash, commitMessage, comitterName,
comitterEmail``. Keys added only when they apply: ``isDirty`` and ``diffDigest`` (uncommitted
changes and the SHA-256 of ``git diff HEAD``), ``forced`` (written under ``--force``) and
``codeDigest`` (a task's code digest, see ``hypermodel.provenance``).
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

from ..provenance import NO_COMMIT, code_state

log = logging.getLogger("hypermodel.data")

NO_REPO_COMMIT = NO_COMMIT


def repo_state(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The git state of the repository containing ``path`` (default: the working directory),
    with Hypergol's keys. Inside an image without ``.git``, the commit baked in at build time."""
    state = code_state(path)
    if state["source"] == "none":
        return _outside_repo(os.path.abspath(path or os.getcwd()), state.get("why", ""))
    record: dict[str, Any] = {
        "branchName": state.get("branch") or "HEAD",
        "commitHash": state["commit"],
        "commitMessage": state.get("message", ""),
        "comitterName": state.get("committer_name", ""),
        "comitterEmail": state.get("committer_email", ""),
    }
    if state.get("dirty"):
        record["isDirty"] = True
        record["diffDigest"] = state.get("diff_digest", "")
    return record


def _outside_repo(where: str, why: str) -> dict[str, Any]:
    _say_once(where, why)
    return {
        "branchName": "none",
        "commitHash": NO_REPO_COMMIT,
        "commitMessage": f"no lineage: {why}",
        "comitterName": "unknown",
        "comitterEmail": "unknown",
    }


@functools.lru_cache(maxsize=64)
def _say_once(where: str, why: str) -> None:
    # a cache, not state: it only keeps the same warning from repeating for every dataset
    log.warning(
        "datasets written from %s record no code lineage (%s); commit your code in git to "
        "have each dataset name the commit that made it",
        where,
        why,
    )


def check_clean_for_pipeline(state: dict[str, Any], dataset: str, force: bool) -> dict[str, Any]:
    """Inside a pipeline op, a dirty tree is recorded, not refused: the record keeps the commit,
    ``isDirty`` and ``diffDigest`` (the uncommitted edits' SHA-256), and one warning says so.
    ``forced`` marks a write made with ``--force``. Compiling and deploying still refuse."""
    if not state.get("isDirty"):
        return state
    _dirty_once(state.get("commitHash", ""), state.get("diffDigest", ""))
    return {**state, "forced": True} if force else state


@functools.lru_cache(maxsize=16)
def _dirty_once(commit: str, diff: str) -> None:
    # a cache, not state: one warning per dirty tree, not one per dataset
    log.warning(
        "the git tree has uncommitted changes: datasets record commit %s plus the digest of "
        "the diff (%s); commit to make them reproducible from the commit alone",
        commit[:12],
        diff[:12],
    )
