"""ModelContainer: publish writes digests and lineage; load verifies before unpickling."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hypermodel import hml
from hypermodel.context import _CURRENT, OpContext
from hypermodel.errors import AlreadyExistsError, HypermodelError, NotFoundError, UsageError
from hypermodel.serving.model import ModelContainer, ModelIntegrityError, ModelReference, git_state
from hypermodel.storage import open_storage


def _reference(app: hml.HmlApp, mc: ModelContainer) -> dict[str, Any]:
    assert mc.reference is not None and mc.reference.key is not None
    return dict(json.loads(app.storage().read_bytes(mc.reference.key)))


def test_publish_writes_model_distributions_reference_and_latest(
    app: hml.HmlApp, published: ModelContainer
) -> None:
    store = app.storage()
    ref = published.reference
    assert ref is not None
    base = f"models/wine-clf/{ref.version}"
    assert sorted(store.list("models/wine-clf")) == sorted(
        [
            f"{base}/model.joblib",
            f"{base}/distributions.json",
            f"{base}/reference.json",
            "models/wine-clf/latest.json",
        ]
    )
    data = _reference(app, published)
    assert (
        data["model_sha256"] == hashlib.sha256(store.read_bytes(f"{base}/model.joblib")).hexdigest()
    )
    assert (
        data["distributions_sha256"]
        == hashlib.sha256(store.read_bytes(f"{base}/distributions.json")).hexdigest()
    )
    assert data["datasets"] == ["0123abcd" * 5]
    assert re.fullmatch(r"wine-clf_\d{8}-\d{6}_[0-9a-z]{1,8}", data["long_name"])
    assert data["long_name"].endswith("_" + data["commit"][:8])
    assert (
        json.loads(store.read_bytes("models/wine-clf/latest.json"))["reference"]
        == f"{base}/reference.json"
    )
    assert "key" not in data


def test_load_latest_round_trips_model_and_distributions(
    app: hml.HmlApp, published: ModelContainer, wine: Any
) -> None:
    loaded = ModelContainer("wine-clf").load("latest", app)
    assert loaded.is_loaded
    assert loaded.reference == published.reference
    assert list(loaded.predict(wine.data.values[:5])) == list(
        published.predict(wine.data.values[:5])
    )
    assert loaded.distributions == published.distributions
    assert loaded.features_categorical == ["colour"]
    assert loaded.datasets == published.datasets


def test_load_by_version_key_path_and_reference(app: hml.HmlApp, published: ModelContainer) -> None:
    ref = published.reference
    assert ref is not None and ref.key is not None
    store = app.storage()
    assert ModelContainer("wine-clf").load(ref.version, store).reference == ref
    assert ModelContainer("wine-clf").load(ref.key, store).reference == ref
    assert ModelContainer("wine-clf").load(ref.directory, store).reference == ref
    local = store.local_path(ref.key)
    assert local is not None
    by_path = ModelContainer("wine-clf").load(Path(local))
    assert by_path.reference is not None and by_path.reference.model_sha256 == ref.model_sha256
    assert ModelContainer("wine-clf").load(ref, store).is_loaded


def test_latest_follows_the_newest_publish(app: hml.HmlApp, published: ModelContainer) -> None:
    assert published.reference is not None
    first = published.reference.version
    second = published.publish(app, version="v2")
    assert ModelContainer("wine-clf").load("latest", app).reference == second
    assert ModelContainer("wine-clf", app=app).versions() == sorted([first, "v2"])


def test_tampered_model_is_refused_before_unpickling(
    app: hml.HmlApp, published: ModelContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import joblib

    ref = published.reference
    assert ref is not None
    key = f"{ref.directory}/model.joblib"
    store = app.storage()
    store.write_bytes(key, store.read_bytes(key) + b"\x00")

    def must_not_unpickle(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("joblib.load called on a tampered file")

    monkeypatch.setattr(joblib, "load", must_not_unpickle)
    target = ModelContainer("wine-clf")
    with pytest.raises(
        ModelIntegrityError, match=r"model\.joblib has SHA256 .* re-publish"
    ) as info:
        target.load("latest", app)
    assert isinstance(info.value, HypermodelError)
    assert ref.model_sha256 in str(info.value)
    assert not target.is_loaded


def test_tampered_distributions_are_refused(app: hml.HmlApp, published: ModelContainer) -> None:
    ref = published.reference
    assert ref is not None
    key = f"{ref.directory}/distributions.json"
    store = app.storage()
    store.write_bytes(key, store.read_bytes(key).replace(b"red", b"blue"))
    with pytest.raises(ModelIntegrityError, match=r"distributions\.json"):
        ModelContainer("wine-clf").load(ref.version, app)


def test_missing_model_file_and_broken_reference(
    app: hml.HmlApp, published: ModelContainer
) -> None:
    ref = published.reference
    assert ref is not None and ref.key is not None
    store = app.storage()
    store.delete(f"{ref.directory}/model.joblib")
    with pytest.raises(ModelIntegrityError, match="missing"):
        ModelContainer("wine-clf").load("latest", app)
    store.write_bytes(ref.key, b"{not json")
    with pytest.raises(ModelIntegrityError, match="not valid JSON"):
        ModelContainer("wine-clf").load("latest", app)
    data = json.loads(ref.to_json())
    data["model_file"] = "../../../etc/passwd"
    store.write_bytes(ref.key, json.dumps(data).encode())
    with pytest.raises(HypermodelError, match="not allowed"):
        ModelContainer("wine-clf").load("latest", app)


def test_pinned_digest_must_match(app: hml.HmlApp, published: ModelContainer) -> None:
    ref = published.reference
    assert ref is not None
    assert (
        ModelContainer("wine-clf")
        .load("latest", app, sha256=f"sha256:{ref.model_sha256}")
        .is_loaded
    )
    with pytest.raises(ModelIntegrityError, match="pinned"):
        ModelContainer("wine-clf").load("latest", app, sha256="0" * 64)


def test_unknown_references_say_what_exists(app: hml.HmlApp, published: ModelContainer) -> None:
    with pytest.raises(NotFoundError, match="never been published"):
        ModelContainer("other").load("latest", app)
    with pytest.raises(NotFoundError, match=r"published versions: \d{8}"):
        ModelContainer("wine-clf").load("no-such-version", app)
    with pytest.raises(UsageError):
        ModelContainer("wine-clf").load(42, app)


def test_a_version_is_never_overwritten(app: hml.HmlApp, fitted: Any) -> None:
    mc = ModelContainer("m")
    mc.model = fitted
    mc.publish(app, version="v1")
    with pytest.raises(AlreadyExistsError, match="already published"):
        mc.publish(app, version="v1")
    with pytest.raises(HypermodelError, match="not allowed"):
        mc.publish(app, version="../x")


def test_publish_without_model_is_a_clear_error(app: hml.HmlApp) -> None:
    with pytest.raises(HypermodelError, match="no fitted model"):
        ModelContainer("m").publish(app)


def test_training_datasets_from_objects_and_strings(fitted: Any) -> None:
    class Ds:
        checksum = "feedface"

    mc = ModelContainer("m")
    assert mc.add_training_dataset(Ds()) == "feedface"
    mc.add_training_dataset("feedface")
    mc.add_training_dataset("beef")
    assert mc.datasets == ["feedface", "beef"]
    with pytest.raises(UsageError, match="checksum"):
        mc.add_training_dataset(object())


def test_lineage_inside_an_op_and_outside_a_repo(
    tmp_path: Path, fitted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HML_GIT_COMMIT", raising=False)
    assert git_state() == ("unknown", False)
    ctx = OpContext(
        app="a",
        pipeline="p",
        task="train",
        op="train",
        run_id="run-123",
        attempt=1,
        root=str(tmp_path / "bucket"),
        workdir=tmp_path,
        output_key="k",
    )
    mc = ModelContainer("m")
    mc.model = fitted
    token = _CURRENT.set(ctx)
    try:
        ref = mc.publish()  # no target: the running op's bucket
    finally:
        _CURRENT.reset(token)
    assert (ref.run_id, ref.pipeline, ref.task, ref.commit) == ("run-123", "p", "train", "unknown")
    assert ref.long_name.endswith("_unknown")
    assert open_storage(str(tmp_path / "bucket")).exists(ref.key or "")
    monkeypatch.setenv("HML_GIT_COMMIT", "abcdef0123456789")
    assert git_state() == ("abcdef0123456789", False)


def test_one_hot_encoding_uses_recorded_values(published: ModelContainer) -> None:
    import pandas as pd

    encoded = published.one_hot_encode(
        pd.DataFrame({"colour": ["red", "white", "green"], "x": [1, 2, 3]})
    )
    assert list(encoded.columns) == ["x", "colour_red", "colour_white"]
    assert encoded[["colour_red", "colour_white"]].values.tolist() == [[1, 0], [0, 1], [0, 0]]
    with pytest.raises(UsageError, match="no recorded values"):
        published.one_hot_encode(pd.DataFrame({"a": [1]}), columns=["a"])


def test_scaling_with_recorded_summaries(published: ModelContainer, wine: Any) -> None:
    scaled = published.scale(wine.data, columns=["alcohol"])
    assert abs(float(scaled["alcohol"].mean())) < 1e-9
    assert abs(float(scaled["alcohol"].std()) - 1.0) < 1e-9
    minmax = published.scale(wine.data, columns=["alcohol"], method="minmax")
    assert float(minmax["alcohol"].min()) == 0.0 and float(minmax["alcohol"].max()) == 1.0
    with pytest.raises(UsageError, match="scale method"):
        published.scale(wine.data, method="log")


def test_build_features_from_one_record(published: ModelContainer, wine: Any) -> None:
    record = {**wine.data.iloc[0].to_dict(), "colour": "white"}
    features = published.build_features(record)
    assert list(features.columns) == [*wine.feature_names, "colour_red", "colour_white"]
    assert features[["colour_red", "colour_white"]].values.tolist() == [[0, 1]]


def test_analyze_distributions_names_missing_columns(wine: Any) -> None:
    with pytest.raises(UsageError, match="not in the frame"):
        ModelContainer("m").analyze_distributions(wine.frame, numeric=["nope"])


def test_reference_json_round_trip_and_headers() -> None:
    ref = ModelReference(
        name="m",
        version="v",
        long_name="m_x_y",
        created="now",
        model_sha256="a" * 64,
        distributions_sha256="b" * 64,
        datasets=["d1", "d2"],
        commit="c" * 40,
    )
    back = ModelReference.from_json(ref.to_json(), key="models/m/v/reference.json")
    assert back.directory == "models/m/v"
    assert back.lineage_headers() == {
        "x-model-long-name": "m_x_y",
        "x-model-version": "v",
        "x-model-digest": "sha256:" + "a" * 64,
        "x-model-dataset": "d1,d2",
        "x-model-commit": "c" * 40,
    }
    with pytest.raises(ModelIntegrityError, match="malformed SHA256"):
        ModelReference.from_json(ref.to_json().replace(b"a" * 64, b"xyz"))
    with pytest.raises(ModelIntegrityError, match="lacks"):
        ModelReference.from_json(b"{}")


def test_importing_serving_stays_light() -> None:
    code = (
        "import sys, hypermodel.serving.model, hypermodel.serving.app, hypermodel.cli.inference; "
        "heavy = [m for m in ('joblib', 'numpy', 'pandas', 'flask', 'sklearn', 'prometheus_client', "
        "'waitress', 'pydantic', 'git') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
