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
import sys
from pathlib import Path
from typing import Any

from ..provenance import code_state, find_repo, git, head

__all__ = ["author", "find_repo", "git_state", "head", "machine", "package_versions"]


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


def git_state(start: str | os.PathLike[str], *, full: bool = False) -> dict[str, Any]:
    """Commit/branch (cheap); with ``full`` also remote (credentials stripped), dirty and message.

    One reading of the code state for runs, datasets and models (``hypermodel.provenance``):
    the work tree around ``start``, else the commit baked into the image (``$HML_GIT_COMMIT``).
    """
    state = code_state(start, full=full)
    if state["source"] == "none":
        return {}
    found: dict[str, Any] = {"commit": state["commit"], "branch": state.get("branch")}
    if state["source"] == "git":
        found["repo"] = state["repo"]
        if full:
            found.update(
                dirty=state.get("dirty", False),
                changed_files=state.get("changed_files", 0),
                remote=strip_credentials(git(Path(state["repo"]), "remote", "get-url", "origin")),
                message=state.get("message", "").split("\n", 1)[0],
                committer=f"{state.get('committer_name', '')} <{state.get('committer_email', '')}>",
            )
            if state.get("diff_digest"):
                found["diff_digest"] = state["diff_digest"]
    return found


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
