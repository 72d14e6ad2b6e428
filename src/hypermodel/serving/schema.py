"""Request and response schemas: hypermodel data models (BaseData) or pydantic models.

Both are duck-typed so that neither is imported unless a route uses it: a pydantic model has
``model_validate``; a data model has ``from_data``/``to_data`` and annotated fields. Validation
failures become a list of ``{"loc": ..., "msg": ...}`` problems that the server answers with 422.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from collections.abc import Callable
from typing import Any, Union

# JSON types accepted for an annotation (bool is not an int here: JSON true is not 1).
_JSON_TYPES: dict[Any, frozenset[type]] = {
    int: frozenset({int}),
    float: frozenset({int, float}),
    str: frozenset({str}),
    bool: frozenset({bool}),
    dict: frozenset({dict}),
    list: frozenset({list}),
}
_TEMPORAL_FORMATS = {dt.datetime: "date-time", dt.date: "date", dt.time: "time"}
_OPENAPI_TYPES = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    dict: "object",
    list: "array",
}


class SchemaError(Exception):
    """Validation failed; ``problems`` says where and why."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{p['loc']}: {p['msg']}" for p in problems))
        self.problems = problems


def is_pydantic(schema: Any) -> bool:
    return (
        isinstance(schema, type)
        and hasattr(schema, "model_validate")
        and hasattr(schema, "model_json_schema")
    )


def is_data_model(schema: Any) -> bool:
    return (
        isinstance(schema, type)
        and callable(getattr(schema, "from_data", None))
        and callable(getattr(schema, "to_data", None))
    )


def check_schema(schema: Any, what: str) -> Any:
    from ..errors import DeclarationError

    if schema is None or is_pydantic(schema) or is_data_model(schema):
        return schema
    raise DeclarationError(
        f"{what} schema {schema!r} must be a hypermodel data model (BaseData) "
        "or a pydantic model class"
    )


def schema_name(schema: Any) -> str:
    return str(getattr(schema, "__name__", "Schema"))


# -- validation ----------------------------------------------------------------------------------
Problems = list[dict[str, Any]]
Checker = Callable[[Any, str], Problems]  # (value, loc) -> problems; [] when the value fits


def _ok(value: Any, loc: str) -> Problems:
    return []


class Validator:
    """parse/dump for one route's schema.

    A data model's annotations are compiled once into checker functions (not re-read per
    request): the server validates every request, so this is on the hot path.
    """

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self._fields: dict[Any, list[tuple[str, Checker, bool]]] = {}

    def fields(self, cls: Any) -> list[tuple[str, Checker, bool]]:
        found = self._fields.get(cls)
        if found is None:  # a race here only compiles the same list twice
            found = [
                (
                    name,
                    self._compile(annotation),
                    _required(cls, name) and not _optional(annotation),
                )
                for name, annotation in field_types(cls).items()
            ]
            self._fields[cls] = found
        return found

    def check_fields(self, cls: Any, payload: Any, loc: str = "") -> Problems:
        """Missing fields and JSON type mismatches of ``payload`` against a data model."""
        if type(payload) is not dict:
            return [
                {"loc": loc or "body", "msg": f"expected a JSON object, got {_json_kind(payload)}"}
            ]
        problems: Problems = []
        for name, check, required in self.fields(cls):
            if name in payload:
                found = check(payload[name], f"{loc}.{name}" if loc else name)
                if found:
                    problems += found
            elif required:
                problems.append({"loc": f"{loc}.{name}" if loc else name, "msg": "field required"})
        return problems

    def parse(self, payload: Any) -> Any:
        """``payload`` (decoded JSON) -> an instance of the schema; raise SchemaError with reasons."""
        schema = self.schema
        if is_pydantic(schema):
            return _parse_pydantic(schema, payload)
        problems = self.check_fields(schema, payload)
        if problems:
            raise SchemaError(problems)
        try:
            return schema.from_data(payload)
        except (
            Exception
        ) as exc:  # from_data sees client data: whatever it rejects is the client's error
            raise SchemaError([{"loc": "body", "msg": f"{type(exc).__name__}: {exc}"}]) from exc

    def dump(self, value: Any) -> Any:
        """A handler's result -> JSON-able data, checked against the schema when one is declared."""
        schema = self.schema
        if schema is None:
            return value
        if is_pydantic(schema):
            obj = value if isinstance(value, schema) else _parse_pydantic(schema, value)
            return obj.model_dump(mode="json")
        obj = value if isinstance(value, schema) else self.parse(value)
        return obj.to_data()

    def _compile(self, annotation: Any) -> Checker:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if annotation is Any:
            return _ok
        if origin in (Union, types.UnionType):
            return self._compile_union(annotation, args)
        if origin in (list, tuple, set, frozenset) or annotation in (list, tuple):
            return self._compile_list(args[0] if args else Any)
        if origin is dict or annotation is dict:
            return _expect({dict}, "an object")
        if annotation in _JSON_TYPES:
            return _expect(_JSON_TYPES[annotation], _describe(annotation))
        if is_data_model(annotation):
            return lambda value, loc: self.check_fields(annotation, value, loc)
        return _ok  # an annotation we cannot check: from_data decides

    def _compile_union(self, annotation: Any, args: tuple[Any, ...]) -> Checker:
        nullable = type(None) in args
        options = [self._compile(a) for a in args if a is not type(None)]
        expected = _describe(annotation)

        def check(value: Any, loc: str) -> Problems:
            if value is None and nullable:
                return []
            if any(not option(value, loc) for option in options):
                return []
            return [{"loc": loc, "msg": f"expected {expected}, got {_json_kind(value)}"}]

        return check

    def _compile_list(self, inner_annotation: Any) -> Checker:
        inner = self._compile(inner_annotation)
        fast = _JSON_TYPES.get(inner_annotation)  # a list of scalars: one pass over exact types

        def check(value: Any, loc: str) -> Problems:
            if type(value) is not list:
                return [{"loc": loc, "msg": f"expected an array, got {_json_kind(value)}"}]
            if inner is _ok or (fast is not None and all(type(v) in fast for v in value)):
                return []
            return [p for i, item in enumerate(value) for p in inner(item, f"{loc}.{i}")]

        return check


def _expect(allowed: frozenset[type] | set[type], expected: str) -> Checker:
    # Exact types: decoded JSON holds exact int/float/str/bool, and True must not pass as an int.
    def check(value: Any, loc: str) -> Problems:
        if type(value) in allowed:
            return []
        return [{"loc": loc, "msg": f"expected {expected}, got {_json_kind(value)}"}]

    return check


def _parse_pydantic(schema: Any, payload: Any) -> Any:
    import pydantic

    try:
        return schema.model_validate(payload)
    except pydantic.ValidationError as exc:
        problems = [
            {
                "loc": ".".join(str(p) for p in err["loc"]) or "body",
                "msg": err["msg"],
                "type": err["type"],
            }
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise SchemaError(problems) from None


def field_types(schema: Any) -> dict[str, Any]:
    """The annotated fields of a data model class (BaseData fields, dataclass fields or annotations)."""
    try:
        hints = typing.get_type_hints(schema)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = dict(getattr(schema, "__annotations__", {}))
    if dataclasses.is_dataclass(schema):
        return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(schema) if f.init}
    declared = getattr(schema, "_hml_fields", None)
    if isinstance(declared, tuple) and declared:  # a hypermodel BaseData class: its own field list
        return {name: hints.get(name, Any) for name in declared}
    return {
        k: v
        for k, v in hints.items()
        if not k.startswith("_") and typing.get_origin(v) is not typing.ClassVar
    }


def _required(schema: Any, name: str) -> bool:
    defaults = getattr(schema, "_hml_defaults", None)
    if isinstance(defaults, dict):  # a hypermodel BaseData class
        return name not in defaults
    if dataclasses.is_dataclass(schema):
        for f in dataclasses.fields(schema):
            if f.name == name:
                return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    return not hasattr(schema, name)


def _optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType) and type(
        None
    ) in typing.get_args(annotation)


def _describe(annotation: Any) -> str:
    if annotation in _OPENAPI_TYPES:
        return _OPENAPI_TYPES[annotation]
    return str(annotation).replace("typing.", "")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    for kind, name in (
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    ):
        if isinstance(value, kind):
            return name
    return type(value).__name__


# -- OpenAPI ------------------------------------------------------------------------------------
def json_schema(schema: Any, components: dict[str, Any]) -> dict[str, Any]:
    """A ``$ref`` to ``schema``'s JSON Schema, adding it (and nested models) to ``components``."""
    name = schema_name(schema)
    if name in components:
        return {"$ref": f"#/components/schemas/{name}"}
    if is_pydantic(schema):
        doc = schema.model_json_schema(ref_template="#/components/schemas/{model}")
        for sub, sub_doc in doc.pop("$defs", {}).items():
            components.setdefault(sub, sub_doc)
        components[name] = doc
    else:
        components[name] = {}  # placeholder first: recursive models terminate
        components[name] = _data_model_schema(schema, components)
    return {"$ref": f"#/components/schemas/{name}"}


def _data_model_schema(schema: Any, components: dict[str, Any]) -> dict[str, Any]:
    props = {}
    required = []
    for name, annotation in field_types(schema).items():
        props[name] = _annotation_schema(annotation, components)
        if _required(schema, name) and not _optional(annotation):
            required.append(name)
    doc: dict[str, Any] = {"title": schema_name(schema), "type": "object", "properties": props}
    if required:
        doc["required"] = required
    return doc


def _annotation_schema(annotation: Any, components: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in _OPENAPI_TYPES:
        return {"type": _OPENAPI_TYPES[annotation]}
    if annotation in _TEMPORAL_FORMATS:
        return {"type": "string", "format": _TEMPORAL_FORMATS[annotation]}
    if origin in (Union, types.UnionType):
        options = [_annotation_schema(a, components) for a in args if a is not type(None)]
        doc = options[0] if len(options) == 1 else {"anyOf": options}
        return {**doc, "nullable": True} if type(None) in args else doc
    if origin in (list, tuple, set, frozenset):
        return {"type": "array", "items": _annotation_schema(args[0], components) if args else {}}
    if origin is dict:
        return {"type": "object"}
    if is_data_model(annotation):
        return json_schema(annotation, components)
    return {}
