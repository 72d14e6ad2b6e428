"""One reference schema for every kind of model: new fields, old TensorFlow references, and the
checks every read makes."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from hypermodel.errors import NotFoundError, UsageError
from hypermodel.models import ModelReference, ModelStore
from hypermodel.serving.errors import ModelIntegrityError
from hypermodel.serving.model import ModelContainer
from hypermodel.storage import Storage

from ...support import require_module
from .conftest import publish

OLD_TF_LINEAGE = {
    "long_name": "Scorer_20260101_abc123",
    "dataset_checksum": "d" * 40,
    "commit": "abc123",
    "epochs": 3,
    "model_class": "Scorer",
}


def test_the_serving_names_are_the_store_s() -> None:
    from hypermodel import models
    from hypermodel.serving import model as serving_model

    assert serving_model.ModelReference is models.ModelReference
    assert serving_model.latest_reference_key.__module__ == "hypermodel.models.reference"


def test_publish_records_kind_metrics_and_params(storage: Storage, fitted: Any) -> None:
    mc = ModelContainer("clf")
    mc.model = fitted
    mc.metrics = {"accuracy": 0.93}
    mc.params = {"max_depth": 2, "criterion": "gini"}
    ref = mc.publish(storage, version="v1", metrics={"f1": 0.9})
    stored = json.loads(storage.read_bytes("models/clf/v1/reference.json"))
    assert stored["kind"] == "joblib"
    assert stored["metrics"] == {"accuracy": 0.93, "f1": 0.9}
    assert stored["params"] == {"max_depth": 2, "criterion": "gini"}
    back = ModelStore(storage).resolve("clf", "v1")
    assert back == ref
    assert back.summary()["metrics"] == {"accuracy": 0.93, "f1": 0.9}


@pytest.mark.parametrize(
    "metrics", [{"auc": float("nan")}, {"auc": float("inf")}, {"auc": "high"}, {"auc": True}]
)
def test_publish_refuses_metrics_that_are_not_finite_numbers(
    storage: Storage, fitted: Any, metrics: dict[str, Any]
) -> None:
    with pytest.raises(UsageError, match="metric 'auc'"):
        publish(storage, fitted, "v1", metrics=metrics)
    assert not storage.exists("models/clf/v1/model.joblib")


def test_publish_refuses_params_that_are_not_json(storage: Storage, fitted: Any) -> None:
    with pytest.raises(UsageError, match="params must be JSON values"):
        publish(storage, fitted, "v1", params={"model": object()})


def test_references_without_the_new_fields_still_load(published: Storage) -> None:
    key = "models/clf/v1/reference.json"
    data = json.loads(published.read_bytes(key))
    for field in ("kind", "metrics", "params", "tree_digest", "lineage"):
        data.pop(field)
    published.write_bytes(key, json.dumps(data).encode())
    ref = ModelStore(published).resolve("clf", "v1")
    assert (ref.kind, ref.metrics, ref.params) == ("joblib", {}, {})
    assert ModelContainer("clf").load("v1", published).is_loaded


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "onnx"}, "kind 'onnx'"),
        ({"metrics": {"auc": "x"}}, "'metrics' is not an object of finite numbers"),
        ({"params": []}, "'params' is a list, not an object"),
        ({"model_file": "../model.joblib"}, "model_file '../model.joblib' is not allowed"),
        ({"distributions_sha256": "abc"}, "malformed SHA256"),
        ({"version": "v2"}, "not the 'clf' 'v1' of its directory"),
    ],
)
def test_every_read_checks_the_reference(
    published: Storage, change: dict[str, Any], message: str
) -> None:
    key = "models/clf/v1/reference.json"
    data = json.loads(published.read_bytes(key))
    published.write_bytes(key, json.dumps({**data, **change}).encode())
    with pytest.raises(ModelIntegrityError, match=message) as info:
        ModelStore(published).resolve("clf", "v1")
    assert "\n" not in str(info.value)
    with pytest.raises(ModelIntegrityError, match=message):
        ModelContainer("clf").load("v1", published)


def test_reserved_version_names_are_refused(storage: Storage, fitted: Any) -> None:
    for version in ("latest", "aliases"):
        with pytest.raises(UsageError, match="reserved"):
            publish(storage, fitted, version)


def _old_tensorflow_version(storage: Storage, tmp_path: Path, version: str) -> dict[str, Any]:
    """A version as TensorFlow publishing wrote it before the common schema."""
    from hypermodel.tf.export import directory_digest

    export = tmp_path / f"export-{version}"
    (export / "assets.extra").mkdir(parents=True)
    (export / "saved_model.pb").write_bytes(b"graph bytes")
    (export / "assets.extra" / "hml_lineage.json").write_text(json.dumps(OLD_TF_LINEAGE))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(p for p in export.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(path.relative_to(export).as_posix())
            info.size = path.stat().st_size
            tar.addfile(info, io.BytesIO(path.read_bytes()))
    archive = buffer.getvalue()
    reference = {
        "kind": "tensorflow-saved-model",
        "name": "scorer",
        "version": version,
        "created": "2026-01-01T00:00:00+00:00",
        "archive_file": "saved_model.tar",
        "archive_sha256": hashlib.sha256(archive).hexdigest(),
        "digest": directory_digest(export),
        "lineage": OLD_TF_LINEAGE,
    }
    base = f"models/scorer/{version}"
    storage.write_bytes(f"{base}/saved_model.tar", archive)
    storage.write_bytes(f"{base}/reference.json", json.dumps(reference).encode())
    pointer = {"name": "scorer", "version": version, "reference": f"{base}/reference.json"}
    storage.write_bytes("models/scorer/latest.json", json.dumps(pointer).encode())
    return reference


def test_an_old_tensorflow_reference_reads_as_the_common_schema(storage: Storage) -> None:
    archive = b"not a real tar"
    old = {
        "kind": "tensorflow-saved-model",
        "name": "scorer",
        "version": "v1",
        "created": "2026-01-01T00:00:00+00:00",
        "archive_file": "saved_model.tar",
        "archive_sha256": hashlib.sha256(archive).hexdigest(),
        "digest": "e" * 64,
        "lineage": OLD_TF_LINEAGE,
    }
    storage.write_bytes("models/scorer/v1/saved_model.tar", archive)
    storage.write_bytes("models/scorer/v1/reference.json", json.dumps(old).encode())
    store = ModelStore(storage)
    ref = store.resolve("scorer", "v1")
    assert ref.kind == "tensorflow"
    assert ref.model_file == "saved_model.tar"
    assert ref.model_sha256 == old["archive_sha256"]
    assert ref.tree_digest == "e" * 64
    assert ref.long_name == "Scorer_20260101_abc123"
    assert ref.datasets == ["d" * 40] and ref.commit == "abc123"
    assert store.verify("scorer", "v1") == ref  # the archive's digest checks
    store.set_alias("scorer", "production", "v1")
    assert store.resolve("scorer", "production") == ref
    with pytest.raises(ModelIntegrityError, match=r"load it with hypermodel\.tf"):
        ModelContainer("scorer").load("production", storage)
    for broken in ({**old, "archive_sha256": None}, {**old, "digest": 7}):
        storage.write_bytes("models/scorer/v1/reference.json", json.dumps(broken).encode())
        with pytest.raises(ModelIntegrityError, match="lacks a string"):
            store.resolve("scorer", "v1")
    storage.write_bytes(
        "models/scorer/v1/reference.json", json.dumps({**old, "archive_file": "../x"}).encode()
    )
    with pytest.raises(ModelIntegrityError, match=re.escape("model_file '../x' is not allowed")):
        store.resolve("scorer", "v1")


def test_old_tensorflow_versions_fetch_by_alias_beside_new_ones(
    storage: Storage, tmp_path: Path
) -> None:
    require_module("tensorflow")
    from hypermodel.tf.publish import fetch_export, publish_export

    old = _old_tensorflow_version(storage, tmp_path, "v1")
    new_export = tmp_path / "export-v2"
    (new_export / "assets.extra").mkdir(parents=True)
    (new_export / "saved_model.pb").write_bytes(b"other graph")
    lineage = {**OLD_TF_LINEAGE, "long_name": "Scorer_v2"}
    (new_export / "assets.extra" / "hml_lineage.json").write_text(json.dumps(lineage))
    new = publish_export(storage, "scorer", new_export, "v2", metrics={"loss": 0.25})
    stored = json.loads(storage.read_bytes("models/scorer/v2/reference.json"))
    assert stored["kind"] == "tensorflow" and "archive_sha256" not in stored
    assert stored["model_sha256"] == new["archive_sha256"] and stored["metrics"] == {"loss": 0.25}
    assert stored["datasets"] == ["d" * 40] and stored["long_name"] == "Scorer_v2"

    store = ModelStore(storage)
    assert [r.version for r in store.versions("scorer")] == ["v1", "v2"]
    store.set_alias("scorer", "production", "v1")
    path, reference = fetch_export(storage, "scorer", "production")
    assert (path / "saved_model.pb").read_bytes() == b"graph bytes"
    assert reference["version"] == "v1" and reference["archive_sha256"] == old["archive_sha256"]
    assert reference["lineage"] == OLD_TF_LINEAGE
    path, reference = fetch_export(storage, "scorer")  # latest: v2
    assert (path / "saved_model.pb").read_bytes() == b"other graph"

    storage.write_bytes("models/scorer/v1/saved_model.tar", b"swapped")
    with pytest.raises(ModelIntegrityError, match="does not match the SHA256"):
        fetch_export(storage, "scorer", "production")
    with pytest.raises(NotFoundError, match="no version or alias 'staging'"):
        fetch_export(storage, "scorer", "staging")


def test_fetch_export_refuses_a_joblib_model(published: Storage) -> None:
    require_module("tensorflow")
    from hypermodel.tf.publish import fetch_export

    with pytest.raises(ModelIntegrityError, match="not a TensorFlow model reference"):
        fetch_export(published, "clf", "v1")


def test_reference_round_trips_every_field() -> None:
    ref = ModelReference(
        name="m",
        version="v",
        long_name="m_x",
        created="now",
        model_sha256="a" * 64,
        kind="tensorflow",
        model_file="saved_model.tar",
        distributions_file="",
        tree_digest="b" * 64,
        metrics={"loss": 0.1},
        params={"lr": 0.01},
        lineage={"epochs": 2},
    )
    back = ModelReference.from_json(ref.to_json(), key="models/m/v/reference.json")
    assert back == ModelReference(**{**ref.to_dict(), "key": "models/m/v/reference.json"})
    view = back.tensorflow_view()
    assert (view["archive_sha256"], view["digest"]) == ("a" * 64, "b" * 64)
    with pytest.raises(ModelIntegrityError, match="lacks tree_digest"):
        data = ref.to_dict()
        data.pop("tree_digest")
        ModelReference.from_json(json.dumps(data))
