"""What the local runner needs of an app: a few fields, frozen, built once per run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..settings import Settings

if TYPE_CHECKING:
    from ..dsl.config import ContainerConfig
    from ..dsl.pipeline import Pipeline, Task
    from ..storage import Storage


@dataclass(frozen=True)
class LocalApp:
    """The app as the runner sees it: names, settings, and each op's container config (the
    app's env, the op's settings and the configurators, merged by the app)."""

    name: str
    package_entrypoint: str
    image_url: str | None
    settings: Settings
    container_config: Callable[[Pipeline, Task], ContainerConfig]

    def storage(self) -> Storage:
        from ..storage import open_storage

        return open_storage(self.settings.root)


def local_app(app: Any) -> LocalApp:
    """``app`` as a ``LocalApp``: itself, or what its ``local_app()`` builds (an ``HmlApp``)."""
    if isinstance(app, LocalApp):
        return app
    spec = app.local_app()
    if not isinstance(spec, LocalApp):  # pragma: no cover - a programming error
        raise TypeError(f"{app!r}.local_app() returned {spec!r}, not a LocalApp")
    return spec
