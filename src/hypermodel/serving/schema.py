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
_JSON_TYPES: dict[Any, tuple[type, ...]] = {
    int: (int,),
    float: (int, float),
    str: (str,),
    bool: (bool,),
    dict: (dict,),
    list: (list,),
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
FieldList = list[tuple[str, Any, bool]]  # (name, annotation, required)


def describe_fields(schema: Any) -> FieldList:
    return [
        (n, a, _required(schema, n) and not _optional(a)) for n, a in field_types(schema).items()
    ]


class Validator:
    """parse/dump for one route's schema; data-model field lists are resolved once, not per request."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self._fields: dict[Any, FieldList] = {}

    def fields(self, cls: Any) -> FieldList:
        found = self._fields.get(cls)
        if found is None:  # a race here only computes the same list twice
            found = self._fields[cls] = describe_fields(cls)
        return found

    def parse(self, payload: Any) -> Any:
        return parse(self.schema, payload, self.fields)

    def dump(self, value: Any) -> Any:
        return dump(self.schema, value, self.fields)


def parse(schema: Any, payload: Any, fields: Callable[[Any], FieldList] = describe_fields) -> Any:
    """``payload`` (decoded JSON) -> an instance of ``schema``; raise SchemaError with reasons."""
    if is_pydantic(schema):
        return _parse_pydantic(schema, payload)
    problems = check_fields(schema, payload, "", fields)
    if problems:
        raise SchemaError(problems)
    try:
        return schema.from_data(payload)
    except (
        Exception
    ) as exc:  # from_data sees client data: whatever it rejects is the client's error
        raise SchemaError([{"loc": "body", "msg": f"{type(exc).__name__}: {exc}"}]) from exc


def dump(schema: Any, value: Any, fields: Callable[[Any], FieldList] = describe_fields) -> Any:
    """A handler's result -> JSON-able data, checked against ``schema`` when one is declared."""
    if schema is None:
        return value
    if is_pydantic(schema):
        obj = value if isinstance(value, schema) else _parse_pydantic(schema, value)
        return obj.model_dump(mode="json")
    obj = value if isinstance(value, schema) else parse(schema, value, fields)
    return obj.to_data()


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
    """The annotated fields of a data model class (dataclass fields or annotations)."""
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


def check_fields(
    schema: Any, payload: Any, loc: str = "", fields: Callable[[Any], FieldList] = describe_fields
) -> list[dict[str, Any]]:
    """Missing fields and JSON type mismatches of ``payload`` against a data model's annotations."""
    if not isinstance(payload, dict):
        return [{"loc": loc or "body", "msg": f"expected a JSON object, got {_json_kind(payload)}"}]
    problems = []
    for name, annotation, required in fields(schema):
        where = f"{loc}.{name}" if loc else name
        if name not in payload:
            if required:
                problems.append({"loc": where, "msg": "field required"})
            continue
        problems += _check_value(annotation, payload[name], where, fields)
    return problems


def _check_value(
    annotation: Any, value: Any, loc: str, fields: Callable[[Any], FieldList]
) -> list[dict[str, Any]]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any or annotation is typing.Any:
        return []
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        for arg in (a for a in args if a is not type(None)):
            if not _check_value(arg, value, loc, fields):
                return []
        return [{"loc": loc, "msg": f"expected {_describe(annotation)}, got {_json_kind(value)}"}]
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple):
        if not isinstance(value, list):
            return [{"loc": loc, "msg": f"expected an array, got {_json_kind(value)}"}]
        inner = args[0] if args else Any
        return [
            p
            for i, item in enumerate(value)
            for p in _check_value(inner, item, f"{loc}.{i}", fields)
        ]
    if origin is dict or annotation is dict:
        return (
            []
            if isinstance(value, dict)
            else [{"loc": loc, "msg": f"expected an object, got {_json_kind(value)}"}]
        )
    if annotation in _JSON_TYPES:
        ok = isinstance(value, _JSON_TYPES[annotation]) and not (
            annotation is not bool and isinstance(value, bool)
        )
        return (
            []
            if ok
            else [{"loc": loc, "msg": f"expected {_describe(annotation)}, got {_json_kind(value)}"}]
        )
    if is_data_model(annotation):
        return check_fields(annotation, value, loc, fields)
    return []  # an annotation we cannot check: from_data decides


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
