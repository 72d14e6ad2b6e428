"""Templates: ``templates/<name>.tmpl`` files with ``{{key}}`` placeholders.

A placeholder syntax of its own (not ``$name`` or ``{name}``) lets the templates hold Makefiles
and f-strings unchanged. A placeholder without a value is an error, never left in the output.
"""

from __future__ import annotations

import re
from importlib import resources

from ..errors import HypermodelError

_PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}")


def template(name: str) -> str:
    return (resources.files(__package__) / "templates" / f"{name}.tmpl").read_text("utf-8")


def render(template_name: str, /, **values: str) -> str:
    """Fill template ``template_name``; every placeholder in it must have a value."""
    name = template_name
    text = template(name)
    missing = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(values))
    if missing:
        raise HypermodelError(f"template {name!r} needs values for {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
