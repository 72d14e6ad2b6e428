"""HmlInferenceApp: the inference side of one app. Flask is imported only when serving starts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..dsl.config import ContainerConfig

if TYPE_CHECKING:
    from ..app import HmlApp


class HmlInferenceApp:
    def __init__(self, app: HmlApp) -> None:
        self.app = app
        self._initialisers: list[Callable[[HmlInferenceApp], Any]] = []
        self._deploy_configurators: list[Callable[[ContainerConfig], Any]] = []

    def on_init(self, fn: Callable[[HmlInferenceApp], Any]) -> Callable[[HmlInferenceApp], Any]:
        self._initialisers.append(fn)
        return fn

    def on_deploy(self, fn: Callable[[ContainerConfig], Any]) -> Callable[[ContainerConfig], Any]:
        self._deploy_configurators.append(fn)
        return fn

    def get_model(self, name: str) -> Any:
        return self.app.get_model(name)
