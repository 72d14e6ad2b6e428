"""Parsing of the command line's names and field specs (``classId:int:id``, ``"values:List[Other]"``).

Everything a user types ends up as Python identifiers and file names, so it is checked here,
before any file is planned: a bad name is a UsageError naming the argument and the fix.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from ..errors import UsageError
from ..names import snake_case

_CLASS = re.compile(r"[A-Z][A-Za-z0-9]*")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LIST = re.compile(r"(?:List|list|typing\.List)\[\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\]")

# type name as typed -> (annotation, module to import it from, sample literal)
SCALARS: dict[str, tuple[str, str | None, str]] = {
    "int": ("int", None, "1"),
    "float": ("float", None, "1.5"),
    "str": ("str", None, '"text"'),
    "bool": ("bool", None, "True"),
    "dict": ("dict", None, '{"key": "value"}'),
    "datetime": ("datetime", "datetime", "datetime(2024, 1, 2, 3, 4, 5)"),
    "date": ("date", "datetime", "date(2024, 1, 2)"),
    "time": ("time", "datetime", "time(3, 4, 5)"),
}
ID_TYPES = ("int", "str")


class ScaffoldError(UsageError):
    """A scaffolding command got a bad name, field spec or target (exit code 2)."""


def check_class_name(name: str, what: str = "class") -> str:
    """A CamelCase Python class name (``ExampleClass``)."""
    if not _CLASS.fullmatch(name or "") or keyword.iskeyword(name):
        raise ScaffoldError(
            f"{what} name {name!r} is not a CamelCase class name: start with a capital letter, "
            "then letters and digits only (e.g. ExampleClass)"
        )
    return name


def module_name(class_name: str) -> str:
    """The module (file) name of a class: ``ExampleClass`` -> ``example_class``."""
    return snake_case(class_name)


def check_project_name(name: str) -> str:
    """A project name (CamelCase or snake_case) -> its package name (snake_case identifier)."""
    package = snake_case(name or "")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", package) or keyword.iskeyword(package):
        raise ScaffoldError(
            f"project name {name!r} is not usable: use CamelCase or snake_case letters and "
            "digits, starting with a letter (e.g. MyProject -> directory my_project)"
        )
    if package in _RESERVED_PACKAGES:
        raise ScaffoldError(
            f"project name {name!r} would shadow the Python package '{package}': choose another"
        )
    return package


_RESERVED_PACKAGES = frozenset(
    {"hypermodel", "tests", "test", "src", "typing", "json", "os", "sys", "click", "tensorflow"}
)


@dataclass(frozen=True)
class Field:
    """One declared field of a data model."""

    name: str
    type_name: str  # the scalar or class name; for lists, the element's
    is_list: bool = False
    is_id: bool = False

    @property
    def is_model(self) -> bool:
        return self.type_name not in SCALARS

    @property
    def annotation(self) -> str:
        base = SCALARS[self.type_name][0] if not self.is_model else self.type_name
        return f"list[{base}]" if self.is_list else base


def parse_field(spec: str) -> Field:
    """``name:type[:id]`` where type is a scalar, a data model class, or ``List[...]`` of either."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "id"):
        raise ScaffoldError(
            f"field {spec!r} must look like name:type or name:type:id "
            "(e.g. classId:int:id, value:float, 'values:List[Other]')"
        )
    name, type_text = parts[0].strip(), parts[1].strip()
    if not _FIELD.fullmatch(name) or keyword.iskeyword(name) or name.startswith("_"):
        raise ScaffoldError(
            f"field name {name!r} in {spec!r} is not a valid Python identifier (no leading '_')"
        )
    match = _LIST.fullmatch(type_text)
    type_name = match.group(1) if match else type_text
    if type_name not in SCALARS:
        check_class_name(type_name, f"type of field '{name}'")
    is_id = len(parts) == 3
    if is_id and (match or type_name not in ID_TYPES):
        raise ScaffoldError(
            f"field {name!r} is marked id but has type {type_text!r}: only int and str fields "
            "can be ids (their values decide the dataset chunk)"
        )
    return Field(name=name, type_name=type_name, is_list=bool(match), is_id=is_id)


def parse_fields(specs: list[str] | tuple[str, ...]) -> list[Field]:
    fields = [parse_field(spec) for spec in specs]
    seen: set[str] = set()
    for field in fields:
        if field.name in seen:
            raise ScaffoldError(f"field {field.name!r} is declared twice")
        seen.add(field.name)
    return fields
