"""Data models: typed classes whose objects are stored, one JSON line each, in datasets.

Declare fields with annotations and the id with the class keyword ``id``::

    class Wine(BaseData, id="wineId"):
        wineId: int
        name: str
        created: datetime
        tags: list[str] = []

``to_data()`` / ``from_data()`` round-trip nested BaseData, lists and dicts of them,
``datetime`` / ``date`` / ``time`` (ISO strings) and plain JSON values, without hand-written code.
The seed's hand-written style (own ``__init__``, ``get_id``, ``to_data``, ``from_data``) still
works: overridden methods are used as they are.

Serialisation code is generated once per class (on first use) because the dataset writer and
reader call it for every object: a generated function is several times faster than a loop
over field descriptions.
"""

from __future__ import annotations

import datetime as dt
import inspect
import sys
import typing
from typing import Any, ClassVar

from .errors import DataModelError, NoIdError

_ID_TYPES = (int, str)
TEMPORAL = (dt.datetime, dt.date, dt.time)
_PLAIN = frozenset((str, int, float, bool, type(None)))  # values to_data() keeps as they are
_MISSING: Any = object()

# What generates the serialisation code lives in ``codegen``; these names were importable
# from here and still are.
_GENERATED = (
    "adopts_parsed_rows",
    "appender_for",
    "batch_decoder_for",
    "decoder_for",
    "encoder_for",
    "hash_text_for",
    "placer_for",
)


def __getattr__(name: str) -> Any:
    if name in _GENERATED:
        from . import codegen

        return getattr(codegen, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class BaseData:
    """Base class of every data model. Equality is by type and value."""

    _hml_fields: ClassVar[tuple[str, ...]] = ()
    _hml_defaults: ClassVar[dict[str, Any]] = {}
    _hml_id: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(
        cls, id: str | tuple[str, ...] | list[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        fields, defaults = _declared_fields(cls)
        cls._hml_fields = tuple(fields)
        cls._hml_defaults = defaults
        if id is not None:
            cls._hml_id = (id,) if isinstance(id, str) else tuple(id)
        _check_id_fields(cls)
        if "__init__" not in cls.__dict__ and fields:
            from .codegen import compile_init

            cls.__init__ = compile_init(cls, fields, defaults)  # type: ignore[method-assign,misc]

    # -- identity ---------------------------------------------------------------------------
    def get_id(self) -> tuple[Any, ...]:
        """The id as a tuple of the id fields' values (ints and strs)."""
        if not self._hml_id:
            raise NoIdError(
                f"{type(self).__name__} declares no id: declare one with "
                f"`class {type(self).__name__}(BaseData, id='fieldName')` or override get_id()"
            )
        d = self.__dict__
        return tuple(d[name] for name in self._hml_id)

    def get_hash_id(self) -> tuple[Any, ...] | int | str:
        """What decides the object's chunk; the id unless overridden."""
        return self.get_id()

    # -- serialisation ----------------------------------------------------------------------
    def to_data(self) -> dict[str, Any]:
        """A JSON-ready dict of the object (nested models and temporal values converted)."""
        cls = type(self)
        if cls._hml_fields:
            from .codegen import schema_of

            return schema_of(cls).to_data(self)
        # a class written by hand (no declared fields): a copy of its attributes, converting
        # only what is not a plain JSON scalar (one set lookup per field, not one call)
        data = self.__dict__.copy()
        for k, v in data.items():
            if v.__class__ not in _PLAIN:
                data[k] = generic_to_data(v)
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Any:
        """The object back from ``to_data()``'s output."""
        if cls._hml_fields:
            from .codegen import schema_of

            return schema_of(cls).from_data(data)
        return cls(**data)

    # -- value semantics --------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable values: not hashable, as with dicts

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({body})"


# -- declaration --------------------------------------------------------------------------------
def _declared_fields(cls: type) -> tuple[list[str], dict[str, Any]]:
    fields: list[str] = []
    defaults: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is BaseData or not issubclass(klass, BaseData):
            continue
        for name, ann in inspect.get_annotations(klass).items():
            if name.startswith("_") or _is_classvar(ann):
                continue
            if name not in fields:
                fields.append(name)
            if name in klass.__dict__:
                defaults[name] = klass.__dict__[name]
    return fields, defaults


def _is_classvar(ann: Any) -> bool:
    if isinstance(ann, str):
        return ann.startswith(("ClassVar", "typing.ClassVar"))
    return typing.get_origin(ann) is ClassVar or ann is ClassVar


def _check_id_fields(cls: type[BaseData]) -> None:
    """Id fields must be declared and of type int or str: a float id would hash differently
    depending on its repr, so it is refused when the class is declared."""
    if not cls._hml_fields:  # hand-written style: get_id() is the user's
        return
    raw = {}
    for klass in reversed(cls.__mro__):
        raw.update(inspect.get_annotations(klass))
    for name in cls._hml_id:
        if name not in cls._hml_fields:
            raise DataModelError(f"{cls.__name__}: id field {name!r} is not a declared field")
        ann = raw[name]
        resolved = _try_resolve(cls, ann)
        if resolved is _MISSING:
            continue  # a forward reference: checked again when the schema is built
        if resolved not in _ID_TYPES:
            raise DataModelError(
                f"{cls.__name__}: id field {name!r} has type {getattr(resolved, '__name__', resolved)}; "
                "id fields must be int or str (floats do not hash stably)"
            )


def _try_resolve(cls: type, ann: Any) -> Any:
    if not isinstance(ann, str):
        return ann
    module = sys.modules.get(cls.__module__)
    namespace = dict(vars(module)) if module else {}
    namespace.setdefault("datetime", dt.datetime)
    try:
        return eval(ann, namespace, dict(vars(cls)))
    except Exception:
        return _MISSING


def resolve_hints(cls: type[BaseData]) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:
        raise DataModelError(
            f"{cls.__name__}: cannot resolve the field annotations ({exc}); "
            "import every type a field names in the class's module"
        ) from exc
    _check_id_fields(cls)
    for name in cls._hml_id:
        if hints.get(name) not in _ID_TYPES:
            raise DataModelError(f"{cls.__name__}: id field {name!r} must be int or str")
    return hints


def generic_to_data(value: Any) -> Any:
    """Convert a value of unknown declared type the way a declared one would be."""
    if isinstance(value, BaseData):
        return value.to_data()
    if isinstance(value, TEMPORAL):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [generic_to_data(v) for v in value]
    if isinstance(value, dict):
        return {k: generic_to_data(v) for k, v in value.items()}
    return value
