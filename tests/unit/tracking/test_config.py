from __future__ import annotations

import pickle

import orjson
import pytest

from hypermodel import hml
from hypermodel.tracking.config import Config


def test_nested_config_by_attribute_and_key() -> None:
    cfg = Config(hello="world", a=Config(path="./here", b=1))
    assert cfg.a.path == "./here"
    assert cfg["a"]["b"] == 1
    assert dict(**cfg.a) == {"path": "./here", "b": 1}
    cfg.lr = 0.1
    assert cfg["lr"] == 0.1


def test_plain_dicts_become_configs_and_serialise() -> None:
    cfg = Config({"model": {"depth": 3, "layers": [{"units": 8}]}})
    assert cfg.model.depth == 3
    assert cfg.model.layers[0].units == 8
    assert orjson.loads(orjson.dumps(cfg)) == {"model": {"depth": 3, "layers": [{"units": 8}]}}
    assert cfg.to_dict() == {"model": {"depth": 3, "layers": [{"units": 8}]}}


def test_missing_attribute_names_the_keys() -> None:
    with pytest.raises(AttributeError, match=r"no key 'nope'.*keys: a"):
        _ = Config(a=1).nope


def test_merge_and_pickle() -> None:
    cfg = Config(a=Config(x=1, y=2), b=1).merged({"a": {"y": 3, "z": 4}})
    assert cfg.to_dict() == {"a": {"x": 1, "y": 3, "z": 4}, "b": 1}
    back = pickle.loads(pickle.dumps(cfg))
    assert isinstance(back, Config) and back.a.z == 4


def test_facade_exports_config_and_run() -> None:
    assert hml.Config is Config
    from hypermodel.tracking.run import Run, current_run

    assert hml.Run is Run and hml.current_run is current_run
