"""Where code came from: the git state of a work tree, and the digest of the code an op runs.

One place answers both questions for datasets, models, tracking, the runner's cache and the
compiler:

- :func:`code_state` — commit, branch, dirty flag, a digest of the uncommitted diff, message and
  committer. A work tree around the path wins; without one (an image built from a clone has no
  ``.git``) the commit baked into the image at build time (``$HML_GIT_COMMIT``, and
  ``$HML_GIT_BRANCH``) is used; otherwise the state says so (``source: "none"``).
- :func:`code_digest` — what an op's cache key and a task's "up to date" check cover: the op's
  own source, every ``*.py`` file of the top-level package that defines it (its content, keyed
  by path inside the package), and the installed version of hypermodel. A change anywhere in the
  app's package misses the cache; a README, a notebook or a data file beside it does not. The
  same files are installed in the app's image, so a pod computes the same digest.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_SHA = re.compile(r"[0-9a-f]{40}")

#: The commit recorded when no work tree and no baked-in commit tell which code ran.
NO_COMMIT = "0" * 40


# -- the work tree ----------------------------------------------------------------------------------
def find_repo(start: str | os.PathLike[str]) -> Path | None:
    """The git work tree containing ``start`` (a file or directory), or None."""
    path = Path(start).absolute()
    if path.is_file():
        path = path.parent
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _git_dir(repo: Path) -> Path:
    dot = repo / ".git"
    if dot.is_file():  # worktrees and submodules: "gitdir: <path>"
        text = dot.read_text(encoding="utf-8").strip()
        if text.startswith("gitdir:"):
            target = Path(text.split(":", 1)[1].strip())
            return target if target.is_absolute() else (repo / target).resolve()
    return dot


def head(repo: Path) -> dict[str, Any]:
    """Commit and branch of ``repo`` read from .git files: microseconds, safe to do per op."""
    git_dir = _git_dir(repo)
    try:
        ref = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return {}
    if not ref.startswith("ref:"):
        return {"commit": ref if _SHA.fullmatch(ref) else "", "branch": None, "repo": str(repo)}
    name = ref.split(":", 1)[1].strip()
    branch = name.removeprefix("refs/heads/")
    common = git_dir
    if (git_dir / "commondir").exists():
        common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    commit = ""
    for base in (git_dir, common):
        try:
            commit = (base / name).read_text(encoding="utf-8").strip()
            break
        except OSError:
            continue
    if not commit:
        try:
            for line in (common / "packed-refs").read_text(encoding="utf-8").splitlines():
                if line.endswith(" " + name):
                    commit = line.split(" ", 1)[0]
                    break
        except OSError:
            pass
    return {"commit": commit, "branch": branch, "repo": str(repo)}


def git(repo: Path, *args: str) -> str:
    """``git -C repo args`` stdout, stripped; "" when git fails or is missing."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _diff_digest(repo: Path) -> str:
    """SHA-256 of ``git diff HEAD`` (tracked files): two dirty trees with the same edits agree."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "diff", "HEAD", "--no-color", "--no-ext-diff"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return hashlib.sha256(out.stdout).hexdigest() if out.returncode == 0 else ""


def code_state(path: str | os.PathLike[str] | None = None, *, full: bool = True) -> dict[str, Any]:
    """The state of the code around ``path`` (default: the working directory).

    Keys: ``source`` ("git", "image" or "none"), ``commit``, ``branch``, and with ``full`` also
    ``dirty``, ``diff_digest`` (only when dirty), ``message``, ``committer_name``,
    ``committer_email``. ``full=False`` reads .git files only (no subprocess)."""
    repo = find_repo(path or os.getcwd())
    if repo is not None:
        state = head(repo)
        if state.get("commit"):
            result: dict[str, Any] = {
                "source": "git",
                "commit": state["commit"],
                "branch": state.get("branch"),
                "repo": str(repo),
            }
            if full:
                result.update(_details(repo))
            return result
    baked = os.environ.get("HML_GIT_COMMIT", "").strip()
    if baked:
        return {
            "source": "image",
            "commit": baked,
            "branch": os.environ.get("HML_GIT_BRANCH") or None,
            "dirty": False,
        }
    why = "not inside a git repository" if repo is None else "the git repository has no commit"
    return {"source": "none", "commit": "", "branch": None, "dirty": False, "why": why}


def _details(repo: Path) -> dict[str, Any]:
    status = git(repo, "status", "--porcelain", "--untracked-files=no")
    log = git(repo, "log", "-1", "--format=%an%x00%ae%x00%B")
    name, email, message = ([*log.split("\x00", 2), "", "", ""])[:3]
    details: dict[str, Any] = {
        "dirty": bool(status),
        "message": message.strip(),
        "committer_name": name,
        "committer_email": email,
    }
    if status:
        details["changed_files"] = len(status.splitlines())
        details["diff_digest"] = _diff_digest(repo)
    return details


# -- the code an op runs ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def hypermodel_version() -> str:
    """The installed hypermodel's version (read once: metadata lookups cost milliseconds)."""
    from importlib import metadata

    try:
        return metadata.version("hypermodel")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _package_files(module_name: str) -> tuple[str, list[Path]]:
    """(label, files) of the code a module's top-level package holds."""
    top = module_name.split(".", 1)[0]
    module = sys.modules.get(top)
    if module is None:
        import importlib

        try:
            module = importlib.import_module(top)
        except Exception:  # pragma: no cover - a module that cannot be imported by name
            module = None
    paths = [Path(p) for p in getattr(module, "__path__", [])]
    if paths:
        return top, sorted(
            {f for root in paths for f in _py_files(root)}, key=lambda f: _rel(f, paths)
        )
    file = getattr(module, "__file__", None) or getattr(
        sys.modules.get(module_name), "__file__", None
    )
    return top, [Path(file)] if file else []


def _py_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in filenames:
            if name.endswith(".py"):
                yield Path(dirpath) / name


def _rel(file: Path, roots: list[Path]) -> str:
    for root in roots:
        try:
            return file.relative_to(root).as_posix()
        except ValueError:
            continue
    return file.name


def package_digest(module_name: str) -> str:
    """SHA-256 over every ``*.py`` file of the module's top-level package (path and content).

    Files are stat'ed on every call and read again only when one changed, so asking per op is
    cheap in a long-lived process (a notebook, a server) and still sees edits."""
    top, files = _package_files(module_name)
    roots = [Path(p) for p in getattr(sys.modules.get(top), "__path__", [])] or [
        f.parent for f in files
    ]
    stats = []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        stats.append((_rel(f, roots), str(f), st.st_size, st.st_mtime_ns))
    return _digest_files(top, tuple(stats))


@functools.lru_cache(maxsize=256)
def _digest_files(top: str, stats: tuple[tuple[str, str, int, int], ...]) -> str:
    # a cache keyed by every file's size and mtime: a stale digest is impossible
    h = hashlib.sha256(f"package {top}\n".encode())
    for rel, path, _size, _mtime in stats:
        try:
            data = Path(path).read_bytes()
        except OSError:
            continue
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def code_digest(obj: Any) -> str:
    """The digest of the code ``obj`` (a function or class) can reach: its own source, its
    top-level package and the installed hypermodel version."""
    module = getattr(obj, "__module__", "") or ""
    h = hashlib.sha256()
    for part in (_own_source(obj), package_digest(module), hypermodel_version()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=1024)
def _own_source(obj: Any) -> str:
    try:
        text = inspect.getsource(obj).encode()
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        text = (
            code.co_code + repr(code.co_consts).encode()
            if code is not None
            else getattr(obj, "__qualname__", repr(obj)).encode()
        )
    return hashlib.sha256(text).hexdigest()
