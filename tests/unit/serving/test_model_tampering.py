"""A model loads only from its own version's directory, and a broken pointer or a tampered
version directory is one line naming the file and the fix, never a raw exception."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hypermodel import hml
from hypermodel.errors import HypermodelError
from hypermodel.serving.model import ModelContainer, ModelIntegrityError
from tests.support import unavailable


class Unpickled(Exception):
    """Raised by the planted pickle if it is ever loaded."""


def _explode() -> None:
    raise Unpickled("the planted pickle was loaded")


class _Planted:
    def __reduce__(self) -> tuple[Callable[[], None], tuple[()]]:
        return _explode, ()


def _planted_pickle() -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(_Planted(), buffer)
    return buffer.getvalue()


def _one_line_error(call: Callable[[], Any], *fragments: str) -> str:
    """``call`` raises a ModelIntegrityError of one line holding every fragment."""
    with pytest.raises(ModelIntegrityError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plant_reference(store: Any, directory: str, reference: dict[str, Any]) -> str:
    """A self-consistent reference (digests that match) with its files, anywhere in the bucket."""
    model, dists = _planted_pickle(), b'{"numeric": {}, "categorical": {}}'
    store.write_bytes(f"{directory}/model.joblib", model)
    store.write_bytes(f"{directory}/distributions.json", dists)
    planted = {**reference, "model_sha256": _sha(model), "distributions_sha256": _sha(dists)}
    store.write_bytes(f"{directory}/reference.json", json.dumps(planted).encode())
    return f"{directory}/reference.json"


def _reference(app: hml.HmlApp, mc: ModelContainer) -> dict[str, Any]:
    assert mc.reference is not None and mc.reference.key is not None
    return dict(json.loads(app.storage().read_bytes(mc.reference.key)))


# -- item 11: a pointer or a reference names files of its own version only ------------------------
@pytest.mark.parametrize(
    "elsewhere",
    [
        "tracking/projects/default/artifacts/shared",  # anyone may push a shared artifact
        "datasets/wines/main/x",
        "models/wine-clf",  # beside latest.json, not in a version
        "models/wine-clf/v9/extra",  # below a version
        "models/other-model/v1",  # another model's version
    ],
)
def test_latest_pointing_outside_the_models_versions_is_refused(
    app: hml.HmlApp, published: ModelContainer, elsewhere: str
) -> None:
    store = app.storage()
    ref = _reference(app, published)
    name = "other-model" if "other-model" in elsewhere else "wine-clf"
    key = _plant_reference(store, elsewhere, {**ref, "name": name, "version": "v1"})
    pointer = {"name": "wine-clf", "reference": key}
    store.write_bytes("models/wine-clf/latest.json", json.dumps(pointer).encode())
    _one_line_error(
        lambda: ModelContainer("wine-clf").load("latest", app),
        "models/wine-clf/latest.json",
        repr(key),
        "re-publish",
    )


def test_an_explicit_key_outside_a_version_directory_is_refused(
    app: hml.HmlApp, published: ModelContainer
) -> None:
    store = app.storage()
    ref = _reference(app, published)
    for directory in ("tracking/projects/default/artifacts/shared", "models/wine-clf/v9/extra"):
        key = _plant_reference(store, directory, ref)
        _one_line_error(lambda k=key: ModelContainer("wine-clf").load(k, app), key)  # type: ignore[misc]
        _one_line_error(lambda d=directory: ModelContainer("wine-clf").load(d, app), directory)  # type: ignore[misc]


def test_a_reference_copied_into_another_version_is_refused(
    app: hml.HmlApp, published: ModelContainer
) -> None:
    store = app.storage()
    ref = _reference(app, published)
    key = _plant_reference(store, "models/wine-clf/v-copied", ref)  # records the old version
    _one_line_error(
        lambda: ModelContainer("wine-clf").load("v-copied", app), key, "copied or changed"
    )
    store.write_bytes(
        "models/wine-clf/latest.json",
        json.dumps({"reference": key, "version": "v-copied"}).encode(),
    )
    _one_line_error(lambda: ModelContainer("wine-clf").load("latest", app), key)


def test_latest_naming_another_version_than_it_points_at_is_refused(
    app: hml.HmlApp, published: ModelContainer
) -> None:
    assert published.reference is not None
    store = app.storage()
    pointer = {"reference": published.reference.key, "version": "something-else"}
    store.write_bytes("models/wine-clf/latest.json", json.dumps(pointer).encode())
    _one_line_error(lambda: ModelContainer("wine-clf").load("latest", app), "latest.json")


# -- item 13: a broken latest.json ----------------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'"models/wine-clf/v/reference.json"',
        b"{}",
        b'{"reference": 42}',
        b'{"reference": null}',
        b'{"reference": ["models"]}',
        b"",
    ],
)
def test_broken_latest_json_is_one_line_naming_it(
    app: hml.HmlApp, published: ModelContainer, content: bytes
) -> None:
    app.storage().write_bytes("models/wine-clf/latest.json", content)
    _one_line_error(
        lambda: ModelContainer("wine-clf").load("latest", app),
        "models/wine-clf/latest.json",
        "re-publish",
    )


def test_latest_json_that_is_a_directory(app: hml.HmlApp, published: ModelContainer) -> None:
    store = app.storage()
    path = Path(str(store.local_path("models/wine-clf/latest.json")))
    path.unlink()
    path.mkdir()
    _one_line_error(
        lambda: ModelContainer("wine-clf").load("latest", app), "latest.json", "directory"
    )


# -- item 13: a tampered model directory ----------------------------------------------------------
@pytest.mark.parametrize("file", ["model.joblib", "distributions.json", "reference.json"])
def test_a_file_replaced_by_a_directory(
    app: hml.HmlApp, published: ModelContainer, file: str
) -> None:
    assert published.reference is not None
    store = app.storage()
    path = Path(str(store.local_path(f"{published.reference.directory}/{file}")))
    path.unlink()
    path.mkdir()
    for ref in ("latest", published.reference.version):
        _one_line_error(
            lambda r=ref: ModelContainer("wine-clf").load(r, app),  # type: ignore[misc]
            f"{published.reference.directory}/{file}",
            "directory",
            "re-publish",
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 5),
        ("version", None),
        ("long_name", ["x"]),
        ("model_file", 7),
        ("model_file", "model.joblib\n"),
        ("distributions_file", "../../latest.json"),
        ("datasets", "abc"),
        ("datasets", [1, 2]),
        ("features", []),
        ("features", {"numeric": "alcohol"}),
        ("features", {"target": 3}),
        ("model_size", "big"),
        ("dirty", "yes"),
        ("run_id", 3),
        ("commit", {"sha": "x"}),
        ("model_sha256", "a" * 64 + "\n"),
        ("model_sha256", 12),
    ],
)
def test_a_reference_with_wrong_types_is_one_line(
    app: hml.HmlApp, published: ModelContainer, field: str, value: Any
) -> None:
    assert published.reference is not None and published.reference.key is not None
    data = {**_reference(app, published), field: value}
    app.storage().write_bytes(published.reference.key, json.dumps(data).encode())
    _one_line_error(
        lambda: ModelContainer("wine-clf").load("latest", app),
        published.reference.key,
        "re-publish",
    )


@pytest.mark.parametrize("content", [b"\xff\xfe\xfd", b"[1, 2]", b'{"name": "wine-clf"}'])
def test_a_reference_that_is_not_a_reference(
    app: hml.HmlApp, published: ModelContainer, content: bytes
) -> None:
    assert published.reference is not None and published.reference.key is not None
    app.storage().write_bytes(published.reference.key, content)
    _one_line_error(lambda: ModelContainer("wine-clf").load("latest", app), published.reference.key)


def test_files_that_match_forged_digests_but_are_not_a_model(
    app: hml.HmlApp, published: ModelContainer
) -> None:
    assert published.reference is not None and published.reference.key is not None
    store, directory = app.storage(), published.reference.directory
    ref = _reference(app, published)
    bad_dists = b"\xff\xfe not utf-8"
    store.write_bytes(f"{directory}/distributions.json", bad_dists)
    forged = {**ref, "distributions_sha256": _sha(bad_dists)}
    store.write_bytes(published.reference.key, json.dumps(forged).encode())
    _one_line_error(
        lambda: ModelContainer("wine-clf").load("latest", app),
        f"{directory}/distributions.json",
        "not valid JSON",
    )
    good_dists = b"{}"
    garbage = b"this is not a pickle"
    store.write_bytes(f"{directory}/distributions.json", good_dists)
    store.write_bytes(f"{directory}/model.joblib", garbage)
    forged = {**ref, "distributions_sha256": _sha(good_dists), "model_sha256": _sha(garbage)}
    store.write_bytes(published.reference.key, json.dumps(forged).encode())
    _one_line_error(
        lambda: ModelContainer("wine-clf").load("latest", app),
        f"{directory}/model.joblib",
        "cannot be unpickled",
    )


def test_a_model_file_linked_out_of_the_bucket(
    app: hml.HmlApp, published: ModelContainer, tmp_path: Path
) -> None:
    assert published.reference is not None
    store = app.storage()
    outside = tmp_path / "elsewhere.joblib"
    outside.write_bytes(_planted_pickle())
    path = Path(str(store.local_path(f"{published.reference.directory}/model.joblib")))
    path.unlink()
    os.symlink(outside, path)
    with pytest.raises(HypermodelError, match=r"model\.joblib") as info:
        ModelContainer("wine-clf").load("latest", app)
    assert "\n" not in str(info.value)


# -- the TensorFlow export's pointer follows the same rules ----------------------------------------
def test_tf_fetch_refuses_a_pointer_outside_its_versions(app: hml.HmlApp, tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        unavailable("TensorFlow is not installed (pip install 'hypermodel[tf]')")
    from hypermodel.tf.publish import fetch_export, publish_export

    export = tmp_path / "export"
    export.mkdir()
    (export / "saved_model.pb").write_bytes(b"graph")
    store = app.storage()
    reference = publish_export(store, "scorer", export, version="v1")
    planted = {**reference, "version": "v1"}
    store.write_bytes("tracking/projects/p/artifacts/saved_model.tar", b"tar")
    store.write_bytes("tracking/projects/p/artifacts/reference.json", json.dumps(planted).encode())
    pointer = {"reference": "tracking/projects/p/artifacts/reference.json"}
    store.write_bytes("models/scorer/latest.json", json.dumps(pointer).encode())
    _one_line_error(lambda: fetch_export(store, "scorer"), "models/scorer/latest.json")
    for content in (b"{oops", b"[]", b"{}"):
        store.write_bytes("models/scorer/latest.json", content)
        _one_line_error(lambda: fetch_export(store, "scorer"), "models/scorer/latest.json")
    data = json.loads(store.read_bytes("models/scorer/v1/reference.json"))
    for broken in ({**data, "model_file": None}, {**data, "model_file": "../x"}, [data]):
        store.write_bytes("models/scorer/v1/reference.json", json.dumps(broken).encode())
        _one_line_error(
            lambda: fetch_export(store, "scorer", "v1"), "models/scorer/v1/reference.json"
        )
