"""Where the code that writes a dataset came from: the git state recorded in each ``.def``.

The ``repo`` record keeps Hypergol's keys (including its ``comitter`` spelling) so Hypergol
reads our ``.def`` files: ``branchName, commitHash, commitMessage, comitterName,
comitterEmail``. Two keys are added only when they are true: ``isDirty`` (uncommitted changes)
and ``forced`` (a pipeline op wrote anyway because ``--force`` was given).
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

from .errors import DirtyRepoError

log = logging.getLogger("hypermodel.data")

NO_REPO_COMMIT = "0" * 40


def repo_state(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The git state of the repository containing ``path`` (default: the working directory)."""
    where = os.path.abspath(path or os.getcwd())
    try:
        import git
    except ImportError:  # GitPython is a core dependency, but git itself may be missing
        return _outside_repo(where, "GitPython or git is not available")
    try:
        repo = git.Repo(where, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return _outside_repo(where, "not inside a git repository")
    except git.GitError as exc:  # pragma: no cover - git binary missing
        return _outside_repo(where, str(exc))
    try:
        with repo:
            try:
                branch = repo.active_branch.name
            except TypeError:  # detached HEAD (CI checkouts, images built from a commit)
                branch = "HEAD"
            try:
                commit = repo.head.commit
            except ValueError:  # a repository with no commit yet
                return _outside_repo(where, "the git repository has no commit yet")
            state: dict[str, Any] = {
                "branchName": branch,
                "commitHash": commit.hexsha,
                "commitMessage": str(commit.message).strip(),
                "comitterName": commit.committer.name or "",
                "comitterEmail": commit.committer.email or "",
            }
            if repo.is_dirty(untracked_files=False):
                state["isDirty"] = True
            return state
    except git.GitError as exc:  # pragma: no cover - a broken repository
        return _outside_repo(where, f"git failed: {exc}")


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
    """Inside a pipeline op, refuse to write from a dirty repository unless forced.

    A dirty tree means the commit recorded in the .def is not the code that ran."""
    if not state.get("isDirty"):
        return state
    if not force:
        raise DirtyRepoError(
            f"refusing to write dataset {dataset!r}: the git repository has uncommitted changes, "
            "so its lineage would name a commit that is not the code that ran. Commit your "
            "changes, or run the pipeline with --force (the dataset then records forced=true)"
        )
    return {**state, "forced": True}
