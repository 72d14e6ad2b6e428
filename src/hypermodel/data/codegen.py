"""Generated serialisation code of data models: one compiled function per class and task.

The dataset writer and reader call these functions for every object, so each is generated
once per class (on first use) from the class's fields and their types: ``__init__``,
``to_data`` / ``from_data``, the JSON line encoder, the batch decoder, the text whose SHA1
places an object in its chunk, and the writer's whole ``append`` (encode, place, buffer). A
generated function is several times faster than a loop over field descriptions.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import typing
from collections.abc import Callable
from json.encoder import encode_basestring_ascii  # the C function json.dumps uses for str
from typing import Any

import orjson

from .errors import DataModelError
from .model import TEMPORAL, BaseData, generic_to_data, resolve_hints

_JSON_SCALARS = (int, str, float, bool, type(None))


class Schema:
    """What code generation needs to know about one class, resolved once."""

    def __init__(self, cls: type[BaseData]) -> None:
        self.cls = cls
        self.hints = resolve_hints(cls)
        self.names = list(cls._hml_fields)
        self.to_data: Callable[[Any], dict[str, Any]] = _compile_to_data(self)
        self.from_data: Callable[[dict[str, Any]], Any] = _compile_from_data(self)
        _COMPILING.add(cls)
        try:
            self.encode: Callable[[Any], str] = _compile_encoder(self)
        finally:
            _COMPILING.discard(cls)
        self.hash_text = _compile_hash_text(self)


# classes whose encoder is being generated: a nested field of one of them is encoded lazily
_COMPILING: set[type] = set()


def schema_of(cls: type[BaseData]) -> Schema:
    schema = cls.__dict__.get("_hml_schema")
    if schema is None:
        schema = Schema(cls)
        cls._hml_schema = schema  # type: ignore[attr-defined]  # per-class cache
    return schema  # type: ignore[no-any-return]


def encoder_for(cls: type[BaseData]) -> Callable[[Any], str] | None:
    """A fast ``obj -> json.dumps(obj.to_data(), sort_keys=True)`` for classes using the default
    to_data(), else None (callers then use the generic path)."""
    if not cls._hml_fields or cls.to_data is not BaseData.to_data:
        return None
    return schema_of(cls).encode


def decoder_for(cls: type[BaseData]) -> Callable[[dict[str, Any]], Any]:
    """``data -> object``: the generated decoder, or the class's own from_data()."""
    if cls._hml_fields and _default_from_data(cls):
        return schema_of(cls).from_data
    return cls.from_data


def batch_decoder_for(cls: type[BaseData]) -> Callable[[list[Any]], list[Any]]:
    """``[data, ...] -> [object, ...]`` for the reader's hot path. For the default from_data it
    converts the parsed dict in place and adopts it as the object's ``__dict__`` (the dict is
    fresh from the JSON parser); rows whose keys differ from the fields take the slow path."""
    decode = decoder_for(cls)
    if not adopts_parsed_rows(cls):
        return lambda rows: [decode(row) for row in rows]
    schema = schema_of(cls)
    env: dict[str, Any] = {
        "_cls": cls,
        "_new": object.__new__,
        "_slow": decode,
        "_dict": dict,
        "_len": len,
    }
    # the exact-keys test as a length and one `in` per field: 2x faster than keys() == set
    same_keys = " and ".join(
        [f"_len(data) == {len(schema.names)}"] + [f"{n!r} in data" for n in schema.names]
    )
    lines = [
        "def decode_all(rows):",
        "    out = []",
        "    add = out.append",
        "    for data in rows:",
        f"        if data.__class__ is _dict and {same_keys}:",
    ]
    for name in schema.names:
        expr = from_data_expr(schema.hints.get(name, Any), "_x", env)
        if expr is not None:
            lines.append(f"            _x = data[{name!r}]")
            lines.append(f"            data[{name!r}] = {expr}")
    lines += [
        "            obj = _new(_cls)",
        "            obj.__dict__ = data",
        "            add(obj)",
        "        else:",
        "            add(_slow(data))",
        "    return out",
    ]
    return compile_source("\n".join(lines) + "\n", "decode_all", env)  # type: ignore[no-any-return]


def adopts_parsed_rows(cls: type[BaseData]) -> bool:
    """Whether decoding may adopt a parsed dict as the object's ``__dict__`` (the default
    from_data() and a generated or no __init__)."""
    return decoder_for(cls) is _schema_from_data(cls) and (
        "__init__" not in cls.__dict__ or _generated_init(cls)
    )


def _schema_from_data(cls: type[BaseData]) -> Any:
    return schema_of(cls).from_data if cls._hml_fields else None


def _default_from_data(cls: type) -> bool:
    return all("from_data" not in k.__dict__ for k in cls.__mro__ if k is not BaseData)


# -- code generation ----------------------------------------------------------------------------
def compile_source(src: str, name: str, env: dict[str, Any]) -> Any:
    code = compile(src, f"<hypermodel generated {name}>", "exec")
    exec(code, env)
    return env[name]


def compile_init(cls: type, fields: list[str], defaults: dict[str, Any]) -> Callable[..., None]:
    env: dict[str, Any] = {"_copy": copy.copy}
    params, body = [], []
    ordered = True
    seen_default = False
    for name in fields:
        if name in defaults:
            seen_default = True
        elif seen_default:
            ordered = False
    for i, name in enumerate(fields):
        if name in defaults:
            env[f"_d{i}"] = defaults[name]
            params.append(f"{name}=_d{i}")
            mutable = isinstance(defaults[name], (list, dict, set))
            value = f"_copy({name}) if {name} is _d{i} else {name}" if mutable else name
        else:
            params.append(name)
            value = name
        body.append(f"    self.{name} = {value}")
    sig = ", ".join(params) if ordered else "*, " + ", ".join(params)
    src = f"def __init__(self, {sig}):\n" + "\n".join(body) + "\n"
    fn = compile_source(src, "__init__", env)
    fn.__qualname__ = f"{cls.__qualname__}.__init__"
    return fn  # type: ignore[no-any-return]


def _to_data_expr(tp: Any, var: str, env: dict[str, Any], depth: int = 0) -> str | None:
    """A Python expression converting ``var`` of type ``tp`` to JSON data; None if identity."""
    tp = strip_optional(tp)
    origin = typing.get_origin(tp)
    if tp in TEMPORAL:
        return f"(None if {var} is None else {var}.isoformat())"
    if isinstance(tp, type) and issubclass(tp, BaseData):
        return f"(None if {var} is None else {var}.to_data())"
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(tp)
        inner = _to_data_expr(args[0], f"_v{depth}", env, depth + 1) if args else None
        if inner is None:
            return None if origin is list else f"list({var})"
        return f"(None if {var} is None else [{inner} for _v{depth} in {var}])"
    if origin is dict:
        args = typing.get_args(tp)
        inner = _to_data_expr(args[1], f"_v{depth}", env, depth + 1) if args else None
        if inner is None:
            return None
        return f"(None if {var} is None else {{_k{depth}: {inner} for _k{depth}, _v{depth} in {var}.items()}})"
    if tp in _JSON_SCALARS or tp is Any or tp is dict or tp is list or origin is typing.Literal:
        return None
    return f"_generic({var})"


def from_data_expr(tp: Any, var: str, env: dict[str, Any], depth: int = 0) -> str | None:
    tp = strip_optional(tp)
    origin = typing.get_origin(tp)
    if tp in TEMPORAL:
        key = f"_T{len(env)}"
        env[key] = tp.fromisoformat
        return f"(None if {var} is None else {key}({var}))"
    if isinstance(tp, type) and issubclass(tp, BaseData):
        key = f"_T{len(env)}"
        env[key] = tp
        return f"(None if {var} is None else {key}.from_data({var}))"
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(tp)
        inner = from_data_expr(args[0], f"_v{depth}", env, depth + 1) if args else None
        if origin is list:
            return (
                None
                if inner is None
                else f"(None if {var} is None else [{inner} for _v{depth} in {var}])"
            )
        key = f"_T{len(env)}"
        env[key] = origin
        body = var if inner is None else f"({inner} for _v{depth} in {var})"
        return f"(None if {var} is None else {key}({body}))"
    if origin is dict:
        args = typing.get_args(tp)
        inner = from_data_expr(args[1], f"_v{depth}", env, depth + 1) if args else None
        if inner is None:
            return None
        return f"(None if {var} is None else {{_k{depth}: {inner} for _k{depth}, _v{depth} in {var}.items()}})"
    return None


def strip_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
        return Any
    return tp


def _compile_to_data(schema: Schema) -> Callable[[Any], dict[str, Any]]:
    env: dict[str, Any] = {"_generic": generic_to_data}
    plain, converted = [], []
    for name in schema.names:
        expr = _to_data_expr(schema.hints.get(name, Any), "_x", env)
        if expr is None:
            plain.append(f"{name!r}: d[{name!r}]")
        else:
            converted.append(f"    _x = d[{name!r}]\n    out[{name!r}] = {expr}")
    src = "def to_data(self):\n    d = self.__dict__\n    out = {" + ", ".join(plain) + "}\n"
    src += "".join(line + "\n" for line in converted) + "    return out\n"
    return compile_source(src, "to_data", env)  # type: ignore[no-any-return]


def _compile_from_data(schema: Schema) -> Callable[[dict[str, Any]], Any]:
    cls = schema.cls
    env: dict[str, Any] = {"_cls": cls, "_new": object.__new__, "_copy": copy.copy}
    lines = ["def from_data(data):", "    obj = _new(_cls)", "    d = obj.__dict__"]
    for i, name in enumerate(schema.names):
        expr = from_data_expr(schema.hints.get(name, Any), "_x", env)
        if name in cls._hml_defaults:
            env[f"_d{i}"] = cls._hml_defaults[name]
            lines.append(f"    _x = data.get({name!r}, _d{i})")
            lines.append(f"    if _x is _d{i}: _x = _copy(_x)")
        else:
            lines.append(f"    _x = data[{name!r}]")
        lines.append(f"    d[{name!r}] = {expr or '_x'}")
    lines.append("    return obj")
    if "__init__" in cls.__dict__ and not _generated_init(cls):
        # a user-written __init__ may do more than assign: go through it
        lines = ["def from_data(data):", "    kw = {}"]
        for name in schema.names:
            expr = from_data_expr(schema.hints.get(name, Any), "_x", env)
            lines.append(f"    if {name!r} in data:")
            lines.append(f"        _x = data[{name!r}]")
            lines.append(f"        kw[{name!r}] = {expr or '_x'}")
        lines.append("    return _cls(**kw)")
    try:
        return compile_source("\n".join(lines) + "\n", "from_data", env)  # type: ignore[no-any-return]
    except SyntaxError as exc:  # pragma: no cover - field names are identifiers
        raise DataModelError(f"{cls.__name__}: cannot generate from_data: {exc}") from exc


def _generated_init(cls: type) -> bool:
    init = cls.__dict__.get("__init__")
    return getattr(getattr(init, "__code__", None), "co_filename", "").startswith(
        "<hypermodel generated"
    )


# The encoder writes exactly what json.dumps(obj.to_data(), sort_keys=True) writes (default
# separators, ensure_ascii) without building the dict: a field of a known type goes through the
# same functions json uses (the C string escaper, float.__repr__ for finite floats, int.__repr__,
# the literals true/false/null), lists of them element by element with json's ", " separator;
# any other value, or a value not of its declared type, falls back to json's own encoder.
def _encoder_parts(
    schema: Schema, env: dict[str, Any], skip: tuple[str, ...] = ()
) -> tuple[list[str], str, tuple[str, str, str] | None]:
    """Statements binding each field value, the f-string body of the line, and the line's
    batched form where a class has three or more number or naive date/time fields (not those
    in ``skip``): ``(condition, unpack, body)``. When ``condition`` holds (every such value is
    of its declared type, a float in the range where orjson writes repr()'s digits, a datetime
    naive), ``unpack`` formats all of them with one ``orjson.dumps`` of a tuple, split at its
    commas (none of these texts holds one), and ``body`` is the f-string that uses them.
    orjson refuses an int beyond 64 bits (a TypeError): callers then use the first body."""
    _encoder_env(env)
    binds, pieces, fast_pieces = [], [], []
    conds, values, names = [], [], []
    for i, name in enumerate(sorted(schema.names)):
        v = f"v{i}"
        hint = schema.hints.get(name, Any)
        binds.append(f"    {v} = d[{name!r}]")
        expr = _value_expr(hint, v, env, f"{i}")
        key = encode_basestring_ascii(name) + ": "
        literal = _fstring_literal(("{" if i == 0 else ", ") + key)
        pieces.append(literal + "{" + expr + "}")
        cond = None if name in skip else _batch_condition(hint, v, env, f"{i}")
        if cond is None:
            fast_pieces.append(pieces[-1])
        else:
            conds.append(cond)
            values.append(v)
            names.append(f"b{i}")
            fast_pieces.append(literal + "{b" + str(i) + "}")
    body = "".join(pieces) + "}}" if pieces else "{{}}"
    if len(values) < _BATCH_MIN:
        return binds, body, None
    unpack = f"{', '.join(names)} = _od(({', '.join(values)},))[1:-1].decode().split(',')"
    return binds, body, (" and ".join(conds), unpack, "".join(fast_pieces) + "}}")


# below three values the tuple, the slice and the split cost more than they save (measured:
# record's datetime and float took 5-10% longer batched)
_BATCH_MIN = 3


def _batch_condition(hint: Any, v: str, env: dict[str, Any], tag: str) -> str | None:
    """When ``v`` (declared ``hint``) may go into the batched orjson call: orjson writes it
    exactly as json does, with no comma. None for the types that never do."""
    tp = strip_optional(hint)
    if tp is int:
        cond = f"{v}.__class__ is _int"
    elif tp is float:  # no exponent either way, neither nan nor inf (orjson writes null)
        cond = (
            f"{v}.__class__ is _float and (1e-4 <= {v} < 1e16 or -1e16 < {v} <= -1e-4 "
            f"or {v} == 0.0)"
        )
    elif tp is dt.date:
        env[f"_T{tag}"] = tp
        cond = f"{v}.__class__ is _T{tag}"
    elif tp is dt.datetime:
        env[f"_T{tag}"] = tp
        cond = f"{v}.__class__ is _T{tag} and {v}.tzinfo is None"
    else:
        return None
    if _is_optional(hint):  # None: null both ways
        cond = f"({v} is None or {cond})"
    return f"({cond})"


def _encoder_env(env: dict[str, Any]) -> None:
    env.update(
        {
            "_s": encode_basestring_ascii,
            "_od": orjson.dumps,
            "_i": int.__repr__,
            "_fr": float.__repr__,
            "_dumps": _dumps_sorted,
            "_generic": generic_to_data,
            "_str": str,
            "_int": int,
            "_float": float,
            "_list": list,
            "_SL": _str_list,
        }
    )


def _is_optional(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        return type(None) in typing.get_args(tp)
    return False


def _value_expr(hint: Any, v: str, env: dict[str, Any], tag: str) -> str:
    """An expression giving json's text for ``v`` declared as ``hint`` (to_data() applied).
    ``tag`` names the helpers this value binds in ``env``; it is unique per position."""
    tp = strip_optional(hint)
    origin = typing.get_origin(tp)
    if tp is str:
        expr = f"_s({v}) if {v}.__class__ is _str else _dumps({v})"
    elif tp is bool:
        expr = f'"true" if {v} is True else "false" if {v} is False else _dumps({v})'
    elif tp is int:
        expr = f"_i({v}) if {v}.__class__ is _int else _dumps({v})"
    elif tp is float:  # v - v == 0 is false for nan and inf, which json spells NaN/Infinity
        expr = f"_fr({v}) if {v}.__class__ is _float and {v} - {v} == 0.0 else _dumps({v})"
        # orjson writes repr()'s digits 2.5x faster, but no exponent below 1e-4: use it
        # only where repr() uses none either (checked on 590k random floats, and tested)
        expr = (
            f"_od({v}).decode() if {v}.__class__ is _float and (1e-4 <= {v} < 1e16 or "
            f"-1e16 < {v} <= -1e-4 or {v} == 0.0) else ({expr})"
        )
    elif tp in TEMPORAL:
        env[f"_T{tag}"] = tp
        # same conversion as to_data(): isoformat() of anything that has one, None as null
        expr = f"_s({v}.isoformat()) if {v}.__class__ is _T{tag} else _dumps(None if {v} is None else {v}.isoformat())"
        if tp is dt.date:  # orjson writes dates exactly as isoformat(), 4x faster
            expr = f"_od({v}).decode() if {v}.__class__ is _T{tag} else ({expr})"
        elif tp is dt.datetime:  # naive datetimes too (not aware ones, nor times: it differs)
            expr = f"_od({v}).decode() if {v}.__class__ is _T{tag} and {v}.tzinfo is None else ({expr})"
    elif isinstance(tp, type) and issubclass(tp, BaseData) and tp.to_data is BaseData.to_data:
        env[f"_T{tag}"] = tp
        env[f"_E{tag}"] = _nested_encoder(tp)
        # anything else as to_data() does it: a subclass by its own to_data(), None as null
        expr = f"_E{tag}({v}) if {v}.__class__ is _T{tag} else _dumps(None if {v} is None else {v}.to_data())"
    elif origin is list and typing.get_args(tp):
        (item,) = typing.get_args(tp)
        conv = _to_data_expr(tp, v, env)
        slow = f"_dumps({v})" if conv is None else f"_dumps({conv})"
        numbers = _number_nesting(tp)
        if numbers is not None:  # one orjson call for the whole list
            env[f"_N{tag}"] = _number_list(*numbers)
            expr = f"_N{tag}({v})"
        elif item is str:  # one C-level pass (map) over the list
            expr = f"_SL({v})"
        else:  # anything else element by element, each element as its own declared type
            x = f"_x{tag.replace('_', '')}_{len(tag)}"
            inner = _value_expr(item, x, env, f"{tag}_")
            expr = (
                f'"[" + ", ".join([{inner} for {x} in {v}]) + "]" '
                f"if {v}.__class__ is _list else {slow}"
            )
            if inner.startswith("_dumps("):  # no fast path for the elements (Any, dicts)
                expr = slow
    else:
        conv = _to_data_expr(hint, v, env)
        expr = f"_dumps({v})" if conv is None else f"_dumps({conv})"
    if _is_optional(hint):  # to_data() keeps None as None whatever the type
        expr = f'"null" if {v} is None else ({expr})'
    return expr


def _str_list(value: Any) -> str:
    """json's text of a list of str (the same C escaper), else json's own."""
    if value.__class__ is list:
        try:
            return "[" + ", ".join(map(encode_basestring_ascii, value)) + "]"
        except TypeError:  # an element that is not a str
            pass
    return _dumps_sorted(value)


# orjson writes a number as json does (int.__repr__, float.__repr__) except for the
# separators, nan and inf (null), ints beyond 64 bits (refused) and the exponents of floats
# (1e+16 alike, but 1e-07 and 1e-05 by repr are 1e-7 and 0.00001 by orjson). A list's orjson
# text made only of digits, "-", ".", ",", "[" and "]", with no ".0000", is json's once each
# "," is followed by a space (checked on 3M random floats of every exponent, and tested);
# floats of 1e16 and more, below 1e-4, and numbers like 1.00001 take json's path.
_FLOAT_BYTES = b"0123456789-.,[]"
_INT_BYTES = b"0123456789-,[]"


def _number_list(depth: int, floats: bool) -> Callable[[Any], str]:
    """json's text of a list (of lists, ``depth`` deep) of ints or floats, else json's own.
    The sum refuses every element that is not a number before orjson sees it (an enum member,
    which orjson writes by value and json refuses; a str, None); a bool passes the sum but
    orjson spells it true, with bytes outside the allowed ones, as it spells nan null.
    Generated per depth: the sums nest as ``map`` calls (no Python loop), and lists
    of ints skip the ``.0000`` search (an int has no dot)."""
    total = "value"  # depth 1: sum(value); 2: sum(map(sum, value)); 3: ...map(sum, chain(value))
    if depth > 1:
        for _ in range(depth - 2):
            total = f"_chain({total})"
        total = f"_map(_sum, {total})"
    check = "not text.translate(None, _allowed)"
    if floats:
        check += ' and text.find(b".0000") < 0'
    src = (
        "def encode(value):\n"
        "    if value.__class__ is _list:\n"
        "        try:\n"
        f"            _sum({total})\n"
        "            text = _od(value)\n"
        "        except TypeError:  # orjson's JSONEncodeError is one\n"
        "            return _slow(value)\n"
        f"        if {check}:\n"
        '            return text.replace(b",", b", ").decode()\n'
        "    return _slow(value)\n"
    )
    env: dict[str, Any] = {
        "_list": list,
        "_sum": sum,
        "_map": map,
        "_chain": itertools.chain.from_iterable,
        "_od": orjson.dumps,
        "_allowed": _FLOAT_BYTES if floats else _INT_BYTES,
        "_slow": lambda value: _dumps_sorted(value),  # looked up per call: tests replace it
    }
    return compile_source(src, "encode", env)  # type: ignore[no-any-return]


def _number_nesting(tp: Any) -> tuple[int, bool] | None:
    """(depth, floats) for list[int], list[float], list[list[float]]..., else None."""
    depth = 0
    while typing.get_origin(tp) is list and len(typing.get_args(tp)) == 1:
        depth += 1
        (tp,) = typing.get_args(tp)
    if depth and tp in (int, float):
        return depth, tp is float
    return None


def _compile_encoder(schema: Schema) -> Callable[[Any], str]:
    env: dict[str, Any] = {}
    binds, body, fast = _encoder_parts(schema, env, ())
    src = "def encode(obj):\n    d = obj.__dict__\n" + "".join(b + "\n" for b in binds)
    if fast is not None:
        cond, unpack, fast_body = fast
        src += f"    if {cond}:\n        try:\n            {unpack}\n"
        src += "        except TypeError:\n            pass\n"
        src += f"        else:\n            return f'{fast_body}'\n"
    src += f"    return f'{body}'\n"
    return compile_source(src, "encode", env)  # type: ignore[no-any-return]


def _chunk_index_expr(chunk_count: int) -> str:
    """The generated expression of an object's chunk index from its id text ``key``: the
    leading bits of its SHA1 (``format.chunk_index``, for the chunk counts 16, 256 and 4096)."""
    if chunk_count == 4096:
        return "((h := _sha1(key.encode()).digest())[0] << 4) | (h[1] >> 4)"
    return "_sha1(key.encode()).digest()[0]" + (" >> 4" if chunk_count == 16 else "")


def placer_for(
    cls: type[BaseData], chunk_count: int
) -> Callable[[Any, list[list[str]]], int] | None:
    """``(obj, lines) -> bytes added``: encodes the object and appends its line (with newline)
    to ``lines[chunk index]`` in one generated function (the writer's hot path), for classes
    with the default to_data/get_id/get_hash_id and int/str ids. Returns -1, adding nothing,
    when an id value is not of its declared type: callers then take the checked path."""
    if encoder_for(cls) is None or schema_of(cls).hash_text is None:
        return None
    schema = schema_of(cls)
    env: dict[str, Any] = {"_sha1": __import__("hashlib").sha1}
    binds, body, fast = _encoder_parts(schema, env, ())
    bound = {name: f"v{i}" for i, name in enumerate(sorted(schema.names))}
    checks, parts = [], []
    for name in cls._hml_id:
        tp = schema.hints[name]
        var = bound[name]
        checks.append(f"{var}.__class__ is not _{tp.__name__}")
        parts.append(var if tp is str else f"_str({var})")
    index = _chunk_index_expr(chunk_count)
    src = "def place(obj, lines):\n    d = obj.__dict__\n" + "".join(b + "\n" for b in binds)
    src += f"    if {' or '.join(checks)}:\n        return -1\n"
    src += f"    key = {' + '.join(parts)}\n"
    line = f"    line = f'{body}\\n'\n"
    if fast is not None:
        cond, unpack, fast_body = fast
        line = (
            f"    if {cond}:\n        try:\n            {unpack}\n"
            f"        except TypeError:\n        {line}"
            f"        else:\n            line = f'{fast_body}\\n'\n"
            f"    else:\n    {line}"
        )
    src += line
    src += f"    lines[{index}].append(line)\n"
    src += "    return len(line)\n"
    return compile_source(src, "place", env)  # type: ignore[no-any-return]


def appender_for(
    cls: type[BaseData],
    chunk_count: int,
    lines: list[list[str]],
    writer: Any,
    slow: Callable[[Any], None],
) -> tuple[Callable[..., None], ...] | None:
    """The whole ``writer.append(obj)`` in one generated function: encode, place, buffer, and
    spill (``writer.spill_all()``) when the lines buffered reach ``writer.buffer_bytes``.
    Returns ``(append, seal, charge, reset)``: ``seal()`` sends every later call to ``slow``;
    ``charge(n)`` counts n bytes buffered by another path; ``reset()`` (called by the spill)
    starts the count again. Anything unusual (a sealed writer, a subclass, an id or value of an
    unexpected type, an encoding error) goes to ``slow``, which appends through the checked
    path or raises the right error. The count and the seal live in closure cells: a cell is
    cheaper to read and write than an attribute, once per object."""
    if encoder_for(cls) is None or schema_of(cls).hash_text is None:
        return None
    schema = schema_of(cls)
    env: dict[str, Any] = {
        "_sha1": _small_sha1(),
        "_cls": cls,
        "_w": writer,
        "_lines": lines,
        "_slow": slow,
    }
    binds, body, fast = _encoder_parts(schema, env, tuple(cls._hml_id))
    fast_body = "" if fast is None else fast[2]
    bound = {name: f"v{i}" for i, name in enumerate(sorted(schema.names))}
    checks, parts, texts = [], [], []
    for name in cls._hml_id:
        tp = schema.hints[name]
        var = bound[name]
        checks.append(f"{var}.__class__ is not _{tp.__name__}")
        if tp is str:
            parts.append(var)
        else:  # an int id's text serves the key and the line (str() is repr() for an int)
            texts.append(f"            t{var} = _str({var})\n")
            parts.append(f"t{var}")
            expr = f"{{_i({var}) if {var}.__class__ is _int else _dumps({var})}}"
            body = body.replace(expr, f"{{t{var}}}")
            fast_body = fast_body.replace(expr, f"{{t{var}}}")
    index = _chunk_index_expr(chunk_count)
    src = "def make():\n    closed = False\n    left = _budget\n"
    src += "    def append(obj):\n        nonlocal left\n"
    src += "        if obj.__class__ is not _cls or closed:\n            return _slow(obj)\n"
    src += "        try:\n            d = obj.__dict__\n"
    src += "".join("        " + b + "\n" for b in binds)
    src += f"            if {' or '.join(checks)}:\n                return _slow(obj)\n"
    src += "".join(texts)
    src += f"            key = {' + '.join(parts)}\n"
    if fast is None:
        src += f"            line = f'{body}\\n'\n"
    else:  # orjson refuses an int beyond 64 bits: that line is made field by field
        src += f"            if {fast[0]}:\n                try:\n                    {fast[1]}\n"
        src += f"                except TypeError:\n                    line = f'{body}\\n'\n"
        src += f"                else:\n                    line = f'{fast_body}\\n'\n"
        src += f"            else:\n                line = f'{body}\\n'\n"
    src += "        except Exception:\n            return _slow(obj)\n"
    src += f"        _lines[{index}].append(line)\n"
    src += "        left -= len(line)\n"
    src += "        if left <= 0:\n            _w.spill_all()\n"
    src += "    def seal():\n        nonlocal closed\n        closed = True\n"
    src += "    def charge(n):\n        nonlocal left\n        left -= n\n"
    src += "        if left <= 0:\n            _w.spill_all()\n"
    src += "    def reset():\n        nonlocal left\n        left = _budget\n"
    src += "    return append, seal, charge, reset\n"
    env["_budget"] = writer.buffer_bytes
    return compile_source(src, "make", env)()  # type: ignore[no-any-return]


def _small_sha1() -> Callable[[bytes], Any]:
    """CPython's built-in SHA1 is ~30% faster than OpenSSL's for the few bytes of an id."""
    try:
        import _sha1

        return _sha1.sha1  # type: ignore[no-any-return]
    except ImportError:  # pragma: no cover - other interpreters
        import hashlib

        return hashlib.sha1


def _fstring_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("{", "{{").replace("}", "}}")


def _compile_hash_text(schema: Schema) -> Callable[[Any], str | None] | None:
    """``obj -> the text whose SHA1 places it`` for the default get_id/get_hash_id of int/str
    ids; None means "use obj.get_hash_id()". Returns None from the function for values of the
    wrong type, so that the checked path raises the error."""
    cls = schema.cls
    if (
        not cls._hml_id
        or cls.get_id is not BaseData.get_id
        or cls.get_hash_id is not BaseData.get_hash_id
    ):
        return None
    env: dict[str, Any] = {"_str": str, "_int": int}
    lines = ["def hash_text(obj):", "    d = obj.__dict__"]
    parts = []
    for i, name in enumerate(cls._hml_id):
        tp = schema.hints[name]
        lines.append(f"    v{i} = d[{name!r}]")
        lines.append(f"    if v{i}.__class__ is not _{tp.__name__}: return None")
        parts.append(f"v{i}" if tp is str else f"_str(v{i})")
    lines.append("    return " + " + ".join(parts))
    return compile_source("\n".join(lines) + "\n", "hash_text", env)  # type: ignore[no-any-return]


def hash_text_for(cls: type[BaseData]) -> Callable[[Any], str | None] | None:
    if not cls._hml_fields:
        return None
    return schema_of(cls).hash_text


def _nested_encoder(tp: type[BaseData]) -> Callable[[Any], str]:
    """The nested class's own generated encoder (one call per nested record), or, while that
    class is itself still compiling (a class that contains itself), a lazy one."""
    if tp not in _COMPILING:
        try:
            return schema_of(tp).encode
        except Exception:  # raised again at its first use, where it belongs
            pass

    def encode(v: Any) -> str:
        return schema_of(tp).encode(v)

    return encode


# json.dumps(value, sort_keys=True) builds this very encoder on every call; made once, it gives
# the same text (same options, same C encoder) about 2x faster.
dumps_sorted: Callable[[Any], str] = json.JSONEncoder(sort_keys=True).encode
_dumps_sorted = dumps_sorted
