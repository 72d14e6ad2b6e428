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
