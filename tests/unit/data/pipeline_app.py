"""A small app whose ops write and read datasets (module level, so worker processes import it)."""

from __future__ import annotations

from hypermodel import hml
from hypermodel.data import Dataset

from .models import Item, items


def _ds(name: str) -> Dataset:
    return Dataset(Item, project="shop", branch="main", name=name)  # location: the op's root


@hml.op()
def make_raw(n: int = 50) -> str:
    raw = _ds("raw")
    with raw.open("w") as writer:
        for obj in items(n):
            writer.append(obj)
    return raw.checksum


@hml.op()
def clean(raw: str) -> str:
    out = _ds("clean")
    with out.open("w") as writer:
        for obj in _ds("raw").open("r"):
            if obj.itemId % 2 == 0:
                writer.append(obj)
    ctx = hml.context()
    assert ctx.input_datasets == [raw], "the read was recorded"
    return out.checksum


def make_app() -> hml.HmlApp:
    app = hml.HmlApp(name="shopdata")

    @hml.pipeline(app.pipelines)
    def shop(n: int = 50):
        clean(raw=make_raw(n=n))

    return app
