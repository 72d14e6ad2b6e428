"""The package's modules and their imports, read from the source with ``ast`` (nothing is
imported), for the tests that check the architecture."""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import hypermodel

PACKAGE_DIR = Path(hypermodel.__file__).parent
PACKAGE = "hypermodel"


@dataclass(frozen=True)
class Import:
    """``module`` imports ``name`` from ``target`` (``name`` is None for ``import target``)."""

    module: str
    target: str
    name: str | None
    line: int
    lazy: bool  # inside a function: runs when called, not on import
    type_only: bool  # under ``if TYPE_CHECKING:``: never runs
    bound_as: str | None = None  # the local name the import binds (``as`` or the name)


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        name = module_name(path)
        found[name] = Module(name, path, ast.parse(path.read_text(), str(path)))
    return found


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return ids


def _function_nodes(tree: ast.Module) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            ids.update(id(n) for n in ast.walk(node) if n is not node)
    return ids


def resolve(module: Module, level: int, target: str | None) -> str:
    """The absolute name of a relative import in ``module``."""
    if not level:
        return target or ""
    base = module.name.split(".")
    if not module.is_package:
        base.pop()
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


@functools.cache
def imports() -> list[Import]:
    found: list[Import] = []
    for module in modules().values():
        typed = _type_checking_nodes(module.tree)
        inner = _function_nodes(module.tree)
        for node in ast.walk(module.tree):
            lazy, type_only = id(node) in inner, id(node) in typed
            if isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    found.append(
                        Import(module.name, alias.name, None, node.lineno, lazy, type_only, bound)
                    )
            elif isinstance(node, ast.ImportFrom):
                target = resolve(module, node.level, node.module)
                for alias in node.names:
                    bound = alias.asname or alias.name
                    found.append(
                        Import(module.name, target, alias.name, node.lineno, lazy, type_only, bound)
                    )
    return found


def imported_module(imp: Import) -> str:
    """The module an import makes the module depend on (``from pkg import mod``: pkg.mod)."""
    if imp.name is not None and f"{imp.target}.{imp.name}" in modules():
        return f"{imp.target}.{imp.name}"
    return imp.target


def required_modules() -> list[tuple[str, str, int]]:
    """``(module, imported, line)`` of every ``require("pkg", extra, purpose)`` call: an
    optional dependency imported by name (see ``hypermodel._lazy``)."""
    found = []
    for module in modules().values():
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "require"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.append((module.name, node.args[0].value, node.lineno))
    return found
