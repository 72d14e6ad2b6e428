"""``Config``: a nested configuration usable like a dict and by attribute."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class Config(dict):  # type: ignore[type-arg]
    """``Config(lr=0.1, model=Config(depth=3))``: ``cfg.model.depth == cfg["model"]["depth"]``.

    Nested plain dicts become Configs, so ``model(**cfg.model)`` and ``cfg.model.depth`` both
    work. A Config is a real dict: it serialises to JSON as-is.
    """

    def __init__(self, *args: Mapping[str, Any] | Iterable[tuple[str, Any]], **kwargs: Any) -> None:
        super().__init__()
        self.update(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"Config has no key {name!r} (keys: {', '.join(map(str, self)) or 'none'})"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, _wrap(value))

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key not in self:
            self[key] = default
        return self[key]

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts and lists (what is stored)."""
        return {k: _unwrap(v) for k, v in self.items()}

    def merged(self, other: Mapping[str, Any]) -> Config:
        """A new Config: ``other``'s keys win, nested Configs merge recursively."""
        out = Config(self.to_dict())
        for key, value in other.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = Config(out[key]).merged(value)
            else:
                out[key] = value
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.items())
        return f"Config({inner})"

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(k for k in self if isinstance(k, str) and k.isidentifier())]

    # pickling: dict subclasses with __getattr__ need an explicit state protocol
    def __getstate__(self) -> dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.update(state)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Config, (self.to_dict(),))


def _wrap(value: Any) -> Any:
    if isinstance(value, Config):
        return value
    if isinstance(value, Mapping):
        return Config(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, tuple):
        return [_unwrap(v) for v in value]
    return value
