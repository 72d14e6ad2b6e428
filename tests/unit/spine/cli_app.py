"""`python -m tests.unit.spine.cli_app ...` behaves like an installed app console script."""

from __future__ import annotations

from . import apps

app = apps.make_app("spine")

if __name__ == "__main__":
    app.start()
