"""Who writes a run and where its code comes from: author, git state, package versions, machine.

Everything here is cheap by default (the git HEAD is read from files, no subprocess) because the
runner records it for every op; the expensive parts (``git status``, the package list) run only
when a user asks for them.
"""

from __future__ import annotations

import getpass
import os
import platform
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

_SHA = re.compile(r"^[0-9a-f]{40}$")


def author() -> str:
    """The identity that owns a run: ``$HML_AUTHOR``, else git's user.email, else user@host."""
    given = os.environ.get("HML_AUTHOR", "").strip()
    if given:
        return given
    email = _git_config_email()
    if email:
        return email
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def _git_config_email() -> str:
    """user.email from the git config files, read directly (no subprocess)."""
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    for path in (
        Path(os.environ.get("GIT_CONFIG_GLOBAL", home / ".gitconfig")),
        xdg / "git" / "config",
    ):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        section = ""
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("["):
                section = line.strip("[]").strip().lower()
            elif section == "user" and "=" in line:
                key, _, value = line.partition("=")
                if key.strip().lower() == "email" and value.strip():
                    return value.strip().strip('"')
    return ""


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
        return {"commit": ref if _SHA.match(ref) else "", "branch": None, "repo": str(repo)}
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


def git_state(start: str | os.PathLike[str], *, full: bool = False) -> dict[str, Any]:
    """Commit/branch (cheap); with ``full`` also remote (credentials stripped), dirty and message.

    ``$HML_GIT_COMMIT`` (baked into an image at build time) wins when no work tree is found.
    """
    repo = find_repo(start)
    if repo is None:
        commit = os.environ.get("HML_GIT_COMMIT", "")
        return (
            {"commit": commit, "branch": os.environ.get("HML_GIT_BRANCH") or None} if commit else {}
        )
    state = head(repo)
    if full and state:
        state.update(_git_details(repo))
    return state


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10, check=False
    )
    return out.stdout.strip() if out.returncode == 0 else ""


def _git_details(repo: Path) -> dict[str, Any]:
    try:
        status = _git(repo, "status", "--porcelain", "--untracked-files=no")
        return {
            "dirty": bool(status),
            "changed_files": len(status.splitlines()),
            "remote": strip_credentials(_git(repo, "remote", "get-url", "origin")),
            "message": _git(repo, "log", "-1", "--format=%s"),
            "committer": _git(repo, "log", "-1", "--format=%an <%ae>"),
        }
    except (OSError, subprocess.SubprocessError):
        return {}


def strip_credentials(url: str) -> str:
    """``https://user:token@host/x`` -> ``https://host/x``: tokens never enter tracking data."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", url.strip(), flags=re.IGNORECASE)


def package_repo_state(package: str) -> dict[str, Any]:
    """Git state of an importable package's source tree (``add_package_repo_state('mylib')``)."""
    import importlib

    module = importlib.import_module(package)
    paths = list(getattr(module, "__path__", [])) or [getattr(module, "__file__", "") or ""]
    for path in paths:
        if path:
            state = git_state(path, full=True)
            if state:
                return state
    return {}


def package_versions(names: list[str] | None = None) -> dict[str, str]:
    """Versions of the distributions behind the imported top-level modules (or of ``names``)."""
    from importlib import metadata

    if names is None:
        tops = {m.split(".", 1)[0] for m in list(sys.modules) if not m.startswith("_")}
        mapping = metadata.packages_distributions()
        names = sorted({d for top in tops for d in mapping.get(top, [])})
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def machine() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "cpus": os.cpu_count(),
    }
