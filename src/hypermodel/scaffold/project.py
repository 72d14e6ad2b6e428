"""Where generated files go, and how they are written: all or nothing, never over a file.

A generated project says which package it is in its ``pyproject.toml``::

    [tool.hypermodel]
    package = "my_project"

so ``hml new data-model`` (and the other generators) run from anywhere inside the project find
``src/<package>/`` without guessing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .fields import ScaffoldError

_PACKAGE_LINE = re.compile(r'^\s*package\s*=\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*$', re.M)


@dataclass(frozen=True)
class ProjectLayout:
    """A generated project: its root directory and its package."""

    root: Path
    package: str

    @property
    def package_dir(self) -> Path:
        return self.root / "src" / self.package

    @property
    def tests_dir(self) -> Path:
        return self.root / "tests"

    def subpackage(self, name: str) -> Path:
        return self.package_dir / name

    def has_module(self, subpackage: str, module: str) -> bool:
        return (self.subpackage(subpackage) / f"{module}.py").is_file()


def find_project(start: str | Path | None = None) -> ProjectLayout:
    """The project containing ``start`` (default: the working directory)."""
    here = Path(start or ".").resolve()
    for directory in (here, *here.parents):
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            package = _package_of(pyproject)
            if package is not None:
                return ProjectLayout(directory, package)
    raise ScaffoldError(
        f"no hypermodel project found at or above {here}: run this inside a project made by "
        "`hml new project NAME` (its pyproject.toml has [tool.hypermodel] package = ...), "
        "or pass --project DIR"
    )


def _package_of(pyproject: Path) -> str | None:
    text = pyproject.read_text(encoding="utf-8")
    if sys.version_info >= (3, 11):
        import tomllib

        try:
            package = tomllib.loads(text).get("tool", {}).get("hypermodel", {}).get("package")
        except tomllib.TOMLDecodeError as exc:
            raise ScaffoldError(f"{pyproject} is not valid TOML: {exc}") from exc
        return package if isinstance(package, str) else None
    section = text.split("[tool.hypermodel]", 1)
    if len(section) < 2:
        return None
    match = _PACKAGE_LINE.search(section[1].split("\n[", 1)[0])
    return match.group(1) if match else None


@dataclass
class Plan:
    """Files to create, checked together before any is written."""

    root: Path
    files: dict[Path, str] = field(default_factory=dict)

    def add(self, path: Path, content: str) -> None:
        if path in self.files:
            raise ScaffoldError(f"two generated files would both be written to {path}")
        self.files[path] = content.rstrip("\n") + "\n" if content.strip() else content

    def add_package(self, directory: Path, doc: str) -> None:
        """An ``__init__.py`` unless the package already has one (packages are shared)."""
        init = directory / "__init__.py"
        if not init.exists() and init not in self.files:
            self.add(init, f'"""{doc}"""\n')

    def conflicts(self) -> list[Path]:
        return [path for path in self.files if path.exists() or path.is_symlink()]

    def write(self) -> list[Path]:
        """Create every file, or none: an existing file is never overwritten."""
        existing = self.conflicts()
        if existing:
            names = ", ".join(str(p) for p in existing)
            raise ScaffoldError(
                f"refusing to overwrite existing file(s): {names}. Delete or rename them, "
                "or choose another name (generated code is yours to edit; it is never replaced)"
            )
        written: list[Path] = []
        try:
            for path, content in self.files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "x", encoding="utf-8") as fh:  # "x": fail if it appeared meanwhile
                    fh.write(content)
                written.append(path)
        except OSError as exc:
            for path in written:  # leave no half-generated piece behind
                path.unlink(missing_ok=True)
            raise ScaffoldError(f"could not write {exc.filename}: {exc.strerror}") from exc
        return written

    def render(self) -> str:
        """What ``--dry-run`` prints: each file's path and content."""
        parts = []
        for path, content in self.files.items():
            parts.append(f"# ---- {_relative(path, self.root)} ----\n{content}")
        return "\n".join(parts)

    def relative_paths(self) -> list[str]:
        return [_relative(p, self.root) for p in self.files]


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def require_models(layout: ProjectLayout, names: Iterable[str], used_by: str) -> None:
    """Every data model class named must already exist in ``data_models/``."""
    from .fields import module_name

    missing = [n for n in names if not layout.has_module("data_models", module_name(n))]
    if missing:
        where = layout.subpackage("data_models")
        raise ScaffoldError(
            f"{used_by} refers to data model class(es) {', '.join(missing)} that do not exist in "
            f"{where}: create them first with `hml new data-model NAME field:type ...`"
        )


def require_modules(
    layout: ProjectLayout, subpackage: str, names: Iterable[str], what: str
) -> None:
    from .fields import module_name

    missing = [n for n in names if not layout.has_module(subpackage, module_name(n))]
    if missing:
        raise ScaffoldError(
            f"{what} {', '.join(missing)} not found in {layout.subpackage(subpackage)}: "
            f"create them first with `hml new {what.rstrip('s')} ...`"
        )


# -- the app still imports ------------------------------------------------------------------------
_IMPORT_CHECK = """
import importlib, sys
sys.path.insert(0, sys.argv[1])
package = sys.argv[2].split(".")[0]
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # a third-party module missing from this interpreter says nothing about the code
        if (exc.name or "").split(".")[0] not in (package, "hypermodel"):
            continue
        raise
"""


def import_error(layout: ProjectLayout, modules: Iterable[str] = ()) -> str | None:
    """Import the project's app (and ``modules``) in a fresh interpreter: None, or the error.

    The project's ``src`` comes first on the path, so the checkout is what is imported even
    where the project is also installed.
    """
    import os
    import subprocess

    names = [f"{layout.package}.app", *modules] if (layout.package_dir / "app.py").is_file() else []
    names = [*dict.fromkeys([*names, *modules])]
    if not names:
        return None
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_CHECK, str(layout.root / "src"), *names],
            cwd=layout.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # cannot tell: do not block the generator on the check itself
    if out.returncode == 0:
        return None
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {out.returncode}"


def module_of(layout: ProjectLayout, path: Path) -> str | None:
    """``src/<package>/tasks/load.py`` -> ``<package>.tasks.load`` (None outside the package)."""
    try:
        relative = path.relative_to(layout.root / "src")
    except ValueError:
        return None
    if path.suffix != ".py" or relative.parts[0] != layout.package:
        return None
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def write_checked(plan: Plan, layout: ProjectLayout) -> list[Path]:
    """Write ``plan``, then make sure the app and the new modules import; if they did before
    the write and do not after it, remove what was written and raise a ScaffoldError naming
    the error (a generator never leaves an app that does not import)."""
    before = import_error(layout)
    written = plan.write()
    if before is not None:
        return written  # the project did not import before: not this generator's doing
    # models/ need TensorFlow at import, which the interpreter running `hml` may lack
    modules = [
        m
        for m in (module_of(layout, p) for p in written)
        if m is not None and not m.startswith(f"{layout.package}.models")
    ]
    after = import_error(layout, modules)
    if after is None:
        return written
    for path in written:
        path.unlink(missing_ok=True)
    raise ScaffoldError(
        f"the generated code would stop the app from importing ({after}); nothing was written. "
        "Choose other names, or report this as a hypermodel bug"
    )
