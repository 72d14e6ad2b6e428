"""The errors.py docstring draws the whole error tree: every HypermodelError subclass in the
package appears in it (read from the source, so nothing optional has to be installed)."""

from __future__ import annotations

import ast
import re

import hypermodel.errors

from .source_graph import modules

ROOT = "HypermodelError"


def _error_classes() -> dict[str, str]:
    """Class name -> module of every class that derives from HypermodelError (by base names)."""
    bases: dict[str, tuple[list[str], str]] = {}
    for module in modules().values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                names = [ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases]
                bases.setdefault(node.name, (names, module.name))

    def derives(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name == ROOT:
            return True
        if name not in bases or name in seen:
            return False
        return any(derives(b, seen | {name}) for b in bases[name][0])

    return {name: where for name, (_, where) in bases.items() if derives(name)}


def test_the_tree_finds_the_errors_it_should() -> None:
    found = _error_classes()
    assert {"DatasetBusyError", "OpFailedError", "TaskFailedError"} <= set(found)
    assert len(found) > 30


def test_every_error_is_in_the_errors_docstring() -> None:
    doc = hypermodel.errors.__doc__ or ""
    named = set(re.findall(r"\b([A-Z]\w+)\b", doc))
    missing = sorted(f"{n} ({m})" for n, m in _error_classes().items() if n not in named)
    assert not missing, "add to the tree in hypermodel/errors.py's docstring: " + ", ".join(missing)
