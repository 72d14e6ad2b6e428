"""`python -m tests.unit.spine.cli_app ...` behaves like an installed app console script."""

from __future__ import annotations

from hypermodel import hml

from . import apps

app = apps.make_app("spine")


@hml.pipeline(app.pipelines)
def structured(items: list, weights: dict):
    """Pipeline parameters typed list and dict (given as JSON on the command line)."""
    apps.tally(items=items, weights=weights)


if __name__ == "__main__":
    app.start()
