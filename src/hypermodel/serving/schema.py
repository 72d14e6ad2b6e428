"""Request and response schemas: hypermodel data models (BaseData) or pydantic models.

Both are duck-typed so that neither is imported unless a route uses it: a pydantic model has
``model_validate``; a data model has ``from_data``/``to_data`` and annotated fields. Validation
failures become a list of ``{"loc": ..., "msg": ...}`` problems that the server answers with 422.

Numbers are checked by the schema, never left to the model: a ``float`` field refuses NaN,
±Infinity and magnitudes beyond float32 (what scikit-learn computes in), an ``int`` field
anything outside int64, unless the field says otherwise with ``Number``::

    class Wine(BaseData):
        features: list[float]                                  # finite, within float32
        alcohol: Annotated[float, Number(ge=0, le=100)]        # and a range
        raw: Annotated[list[float], Number(finite=False)]      # anything, NaN included

A 422 lists at most ``MAX_PROBLEMS`` problems (and counts the rest), each at most
``MAX_TEXT`` characters, so that a large invalid body cannot make a larger answer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Union

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


FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_PROBLEMS = 20  # problems listed in a 422; the rest are counted
MAX_TEXT = 200  # characters of one problem's loc or msg


@dataclasses.dataclass(frozen=True)
class Number:
    """Options of a numeric request field, given with ``typing.Annotated``; on a list or dict
    annotation they apply to the numbers inside.

    ``finite`` (default True): a float must be finite and within float32 (±3.4e38), an int
    within int64; NaN, ±Infinity and larger numbers are a 422 naming the field. ``False``
    lifts these defaults (the explicit bounds still apply). ``ge``/``gt``/``le``/``lt``: bounds.
    """

    finite: bool = True
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def bounds(self, integer: bool) -> list[tuple[str, float]]:
        """(operator, value) pairs every accepted number satisfies."""
        found = [
            (op, value)
            for op, value in (("ge", self.ge), ("gt", self.gt), ("le", self.le), ("lt", self.lt))
            if value is not None
        ]
        if self.finite:
            low, high = (INT64_MIN, INT64_MAX) if integer else (-FLOAT32_MAX, FLOAT32_MAX)
            if self.ge is None and self.gt is None:
                found.append(("ge", low))
            if self.le is None and self.lt is None:
                found.append(("le", high))
        return found


_DEFAULT_NUMBER = Number()
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "ge": lambda v, b: v >= b,
    "gt": lambda v, b: v > b,
    "le": lambda v, b: v <= b,
    "lt": lambda v, b: v < b,
}
_OP_TEXT = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


class ProblemList(list[dict[str, Any]]):
    """At most MAX_PROBLEMS problems; ``more`` counts those left out."""

    more = 0

    def add(self, found: list[dict[str, Any]]) -> None:
        room = MAX_PROBLEMS - len(self)
        if room > 0:
            self.extend(found[:room])
        self.more += max(0, len(found) - max(room, 0)) + getattr(found, "more", 0)


class SchemaError(Exception):
    """Validation failed; ``problems`` says where and why (the first MAX_PROBLEMS of them,
    each loc and msg cut to MAX_TEXT characters), ``more`` how many were left out."""

    def __init__(self, problems: list[dict[str, Any]], more: int = 0) -> None:
        more += getattr(problems, "more", 0) + max(0, len(problems) - MAX_PROBLEMS)
        self.problems = [
            {
                k: _short(v) if k in ("loc", "msg") and isinstance(v, str) else v
                for k, v in p.items()
            }
            for p in problems[:MAX_PROBLEMS]
        ]
        self.more = more
        super().__init__("; ".join(f"{p['loc']}: {p['msg']}" for p in self.problems))

    def body(self) -> dict[str, Any]:
        """The 422 answer."""
        found: dict[str, Any] = {"error": "invalid request", "problems": self.problems}
        if self.more:
            found["more_problems"] = self.more
        return found


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
    request): the server validates every request, so this is on the hot path. With
    ``check_numbers`` (inputs) numbers are also checked against their ``Number`` options;
    outputs are only type-checked.
    """

    def __init__(self, schema: Any, check_numbers: bool = True) -> None:
        self.schema = schema
        self.check_numbers = check_numbers
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
        problems: ProblemList | None = None
        for name, check, required in self.fields(cls):
            if name in payload:
                found = check(payload[name], f"{loc}.{name}" if loc else name)
                if found:
                    problems = problems if problems is not None else ProblemList()
                    problems.add(found)
            elif required:
                problems = problems if problems is not None else ProblemList()
                problems.add([{"loc": f"{loc}.{name}" if loc else name, "msg": "field required"}])
        return problems or []

    def parse(self, payload: Any, lenient: bool = False) -> Any:
        """``payload`` (decoded JSON) -> an instance of the schema; raise SchemaError with reasons.

        ``lenient``: the body needed the lenient parser (NaN, Infinity or a number beyond
        float64): a pydantic model without ``allow_inf_nan`` in its config refuses them all.
        """
        schema = self.schema
        if is_pydantic(schema):
            if lenient and "allow_inf_nan" not in getattr(schema, "model_config", {}):
                non_finite = non_finite_numbers(payload)
                if non_finite:
                    raise SchemaError(non_finite)
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

    def _compile(self, annotation: Any, number: Number | None = None) -> Checker:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is Annotated:
            bare, number = _split_annotated(annotation, number)
            return self._compile(bare, number)
        if annotation is Any:
            return _ok
        if origin in (Union, types.UnionType):
            return self._compile_union(annotation, args, number)
        if origin in (list, tuple, set, frozenset) or annotation in (list, tuple):
            return self._compile_list(args[0] if args else Any, number)
        if origin is dict and len(args) == 2:
            return self._compile_dict(args[1], number)
        if origin is dict or annotation is dict:
            return _expect({dict}, "an object")
        if annotation in (int, float) and self.check_numbers:
            return _number(annotation, number or _DEFAULT_NUMBER)
        if annotation in _JSON_TYPES:
            return _expect(_JSON_TYPES[annotation], _describe(annotation))
        if is_data_model(annotation):
            return lambda value, loc: self.check_fields(annotation, value, loc)
        return _ok  # an annotation we cannot check: from_data decides

    def _compile_union(
        self, annotation: Any, args: tuple[Any, ...], number: Number | None
    ) -> Checker:
        nullable = type(None) in args
        options = [self._compile(a, number) for a in args if a is not type(None)]
        expected = _describe(annotation)

        def check(value: Any, loc: str) -> Problems:
            if value is None and nullable:
                return []
            if len(options) == 1:  # `X | None`: X's own reason (a range, a nested field)
                return options[0](value, loc)
            if any(not option(value, loc) for option in options):
                return []
            return [{"loc": loc, "msg": f"expected {expected}, got {_json_kind(value)}"}]

        return check

    def _compile_list(self, inner_annotation: Any, number: Number | None) -> Checker:
        inner = self._compile(inner_annotation, number)
        bare, options = _split_annotated(inner_annotation, number)
        fast = _JSON_TYPES.get(bare)  # a list of scalars: one pass over exact types
        model = is_data_model(bare)
        numbers = bare in (int, float) and self.check_numbers
        inside = _inside(options or _DEFAULT_NUMBER, bare is int) if numbers else None
        within = _within(options or _DEFAULT_NUMBER, bare is int) if numbers else None

        def check(value: Any, loc: str) -> Problems:
            if type(value) is not list:
                return [{"loc": loc, "msg": f"expected an array, got {_json_kind(value)}"}]
            if inner is _ok or (
                fast is not None
                and set(map(type, value)) <= fast  # C-speed passes: this runs per request
                and (
                    inside is None
                    or (within(value) if within is not None else all(map(inside, value)))
                )
            ):
                return []
            problems = ProblemList()
            for i, item in enumerate(value):
                found = inner(item, f"{loc}.{i}")
                if found:
                    problems.add(found)
                    if len(problems) >= MAX_PROBLEMS and (fast is not None or model):
                        problems.more += self._count_rest(value, i + 1, loc, inner, fast, inside)
                        break
            return problems

        return check

    @staticmethod
    def _count_rest(
        value: list[Any],
        start: int,
        loc: str,
        inner: Checker,
        fast: frozenset[type] | None,
        inside: Callable[[Any], bool] | None,
    ) -> int:
        """Problems of ``value[start:]`` once the list of problems is full, counted cheaply:
        a scalar, or anything but an object where an object is expected, has one at most."""
        if fast is not None:
            return sum(
                1
                for v in value[start:]
                if type(v) not in fast or (inside is not None and not inside(v))
            )
        count = 0
        for i in range(start, len(value)):
            item = value[i]
            if type(item) is not dict:
                count += 1
            elif found := inner(item, f"{loc}.{i}"):
                count += len(found) + getattr(found, "more", 0)
        return count

    def _compile_dict(self, value_annotation: Any, number: Number | None) -> Checker:
        inner = self._compile(value_annotation, number)

        def check(value: Any, loc: str) -> Problems:
            if type(value) is not dict:
                return [{"loc": loc, "msg": f"expected an object, got {_json_kind(value)}"}]
            if inner is _ok:
                return []
            problems: ProblemList | None = None
            for key, item in value.items():
                found = inner(item, f"{loc}.{key}")
                if found:
                    problems = problems if problems is not None else ProblemList()
                    problems.add(found)
            return problems or []

        return check


def _split_annotated(annotation: Any, number: Number | None) -> tuple[Any, Number | None]:
    """``Annotated[T, ..., Number(...)]`` -> (T, that Number); other annotations unchanged."""
    while typing.get_origin(annotation) is Annotated:
        for meta in reversed(annotation.__metadata__):
            if isinstance(meta, Number):
                number = meta
                break
        annotation = annotation.__origin__
    return annotation, number


def _inside(number: Number, integer: bool) -> Callable[[Any], bool] | None:
    """A predicate true for the numbers ``number`` accepts (None: every number)."""
    bounds = number.bounds(integer)
    if not bounds and not number.finite:
        return None
    if [op for op, _ in bounds] == ["ge", "le"] and all(math.isfinite(b) for _, b in bounds):
        low, high = bounds[0][1], bounds[1][1]
        return lambda v: low <= v <= high  # NaN and ±Infinity fail both comparisons
    tests = [(_OPS[op], bound) for op, bound in bounds]
    finite = number.finite

    def inside(v: Any) -> bool:
        if finite and type(v) is float and not math.isfinite(v):
            return False
        return all(test(v, bound) for test, bound in tests)

    return inside


def _within(number: Number, integer: bool) -> Callable[[list[Any]], bool] | None:
    """For plain finite ``ge``/``le`` bounds (the defaults among them), a test of a whole list
    of numbers in a few C-speed passes. True means every item is inside; False only that the
    per-item checks must decide (they name the items)."""
    bounds = number.bounds(integer)
    if [op for op, _ in bounds] != ["ge", "le"] or not all(math.isfinite(b) for _, b in bounds):
        return None
    low, high = bounds[0][1], bounds[1][1]

    def within(values: list[Any]) -> bool:
        if not values:
            return True
        if not (low <= min(values) and max(values) <= high):
            return False
        if integer:
            return True
        try:  # NaN can hide from min and max, not from the sum (nor can ±Infinity)
            return math.isfinite(sum(values))
        except OverflowError:  # pragma: no cover - ints beyond float64: decide per item
            return False

    return within


def _number(annotation: Any, number: Number) -> Checker:
    allowed, expected = _JSON_TYPES[annotation], _describe(annotation)
    integer = annotation is int
    inside = _inside(number, integer)

    def check(value: Any, loc: str) -> Problems:
        if type(value) not in allowed:
            return [{"loc": loc, "msg": f"expected {expected}, got {_json_kind(value)}"}]
        if inside is None or inside(value):
            return []
        return [{"loc": loc, "msg": _number_problem(value, number, integer)}]

    return check


def _number_problem(value: Any, number: Number, integer: bool) -> str:
    if type(value) is float and not math.isfinite(value) and number.finite:
        return f"expected a finite number, got {_number_text(value)}"
    for op, bound in number.bounds(integer):
        if not _OPS[op](value, bound):
            return (
                f"{_number_text(value)} is out of range: "
                f"must be {_OP_TEXT[op]} {_number_text(bound)}"
            )
    return f"{_number_text(value)} is out of range"  # pragma: no cover - inside() said no


def _number_text(value: Any) -> str:
    if type(value) is float:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 24 else f"{float(value):.6g}"


def non_finite_numbers(payload: Any, limit: int = MAX_PROBLEMS) -> ProblemList:
    """Where ``payload`` holds NaN or ±Infinity (at most ``limit`` places, the rest counted).

    For a body that needed the lenient parser and has no data model to decide: iterative, so
    nesting depth costs no recursion.
    """
    problems = ProblemList()
    stack: list[tuple[Any, str]] = [(payload, "")]
    while stack:
        value, loc = stack.pop()
        kind = type(value)
        if kind is float and not math.isfinite(value):
            problems.add(
                [
                    {
                        "loc": loc or "body",
                        "msg": f"expected a finite number, got {_number_text(value)}",
                    }
                ]
            )
        elif kind is dict:
            stack.extend((v, f"{loc}.{k}" if loc else str(k)) for k, v in value.items())
        elif kind is list:
            stack.extend((v, f"{loc}.{i}" if loc else str(i)) for i, v in enumerate(value))
    problems.sort(key=lambda p: p["loc"])
    return problems


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
            for err in exc.errors(include_url=False, include_input=False)[:MAX_PROBLEMS]
        ]
        raise SchemaError(problems, more=max(0, exc.error_count() - MAX_PROBLEMS)) from None


def field_types(schema: Any) -> dict[str, Any]:
    """The annotated fields of a data model class (BaseData fields, dataclass fields or annotations)."""
    try:
        hints = typing.get_type_hints(schema, include_extras=True)  # keeps Number options
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
    annotation = _split_annotated(annotation, None)[0]
    return typing.get_origin(annotation) in (Union, types.UnionType) and type(
        None
    ) in typing.get_args(annotation)


def _describe(annotation: Any) -> str:
    annotation = _split_annotated(annotation, None)[0]
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


def _annotation_schema(
    annotation: Any, components: dict[str, Any], number: Number | None = None
) -> dict[str, Any]:
    if typing.get_origin(annotation) is Annotated:
        bare, number = _split_annotated(annotation, number)
        return _annotation_schema(bare, components, number)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (int, float) and number is not None:
        return {"type": _OPENAPI_TYPES[annotation], **_openapi_bounds(number)}
    if annotation in _OPENAPI_TYPES:
        return {"type": _OPENAPI_TYPES[annotation]}
    if annotation in _TEMPORAL_FORMATS:
        return {"type": "string", "format": _TEMPORAL_FORMATS[annotation]}
    if origin in (Union, types.UnionType):
        options = [_annotation_schema(a, components, number) for a in args if a is not type(None)]
        doc = options[0] if len(options) == 1 else {"anyOf": options}
        return {**doc, "nullable": True} if type(None) in args else doc
    if origin in (list, tuple, set, frozenset):
        items = _annotation_schema(args[0], components, number) if args else {}
        return {"type": "array", "items": items}
    if origin is dict:
        return {"type": "object"}
    if is_data_model(annotation):
        return json_schema(annotation, components)
    return {}


def _openapi_bounds(number: Number) -> dict[str, Any]:
    """Explicit bounds as OpenAPI 3.0 keywords (the float32/int64 defaults are not listed)."""
    doc: dict[str, Any] = {}
    if number.ge is not None:
        doc["minimum"] = number.ge
    if number.gt is not None:
        doc["minimum"], doc["exclusiveMinimum"] = number.gt, True
    if number.le is not None:
        doc["maximum"] = number.le
    if number.lt is not None:
        doc["maximum"], doc["exclusiveMaximum"] = number.lt, True
    return doc
