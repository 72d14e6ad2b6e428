"""Serving by alias and hot reload, through Flask's test client: a model loaded by an alias or
``latest`` follows it, a request answers with the version it started with, a failed load keeps
the old version serving and says why, and ``POST /-/reload`` needs the admin token."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hypermodel import hml
from hypermodel.errors import DeclarationError
from hypermodel.models.store import ModelStore
from hypermodel.serving.model import ModelContainer
from hypermodel.serving.reload import check_admin_token, is_moving
from hypermodel.serving.startup import Startup

TOKEN = "s3cret-admin-token-0123456789"
ROW = {"features": [13.2, 1.78, 2.14, 11.2, 100.0, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050]}


def publish(app: hml.HmlApp, wine: Any, version: str, answer: int) -> ModelContainer:
    """A model that always answers ``answer``, so a response shows which version made it."""
    from sklearn.dummy import DummyClassifier

    mc = ModelContainer("wine-clf")
    mc.model = DummyClassifier(strategy="constant", constant=answer).fit(
        wine.data.values, wine.target.values
    )
    mc.publish(app, version=version)
    return mc


def corrupt(app: hml.HmlApp, version: str) -> None:
    path = Path(app.storage().url.removeprefix("file://")) / "models/wine-clf" / version
    (path / "model.joblib").write_bytes(b"not the published model")


@pytest.fixture
def store(app: hml.HmlApp) -> ModelStore:
    return ModelStore(app.storage())


@pytest.fixture
def versions(app: hml.HmlApp, wine: Any, store: ModelStore) -> dict[str, ModelContainer]:
    published = {"v1": publish(app, wine, "v1", 0), "v2": publish(app, wine, "v2", 1)}
    store.set_alias("wine-clf", "production", "v1")
    return published


def serve(app: hml.HmlApp, ref: str = "production", gate: Any = None) -> Any:
    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        model = inference_app.load_model(ModelContainer("wine-clf"), ref)

        @inference_app.route("/predict")
        def predict(payload: Any) -> Any:
            answer = int(model.predict([payload["features"]])[0])
            if gate is not None:
                gate(answer)
            return {"cultivar": answer}

    return app.inference.build().test_client()


def version_of(response: Any) -> str:
    assert response.status_code == 200, response.json
    return str(response.headers["x-model-version"])


def test_an_alias_is_served_and_kept_with_the_model(
    app: hml.HmlApp, versions: dict[str, ModelContainer]
) -> None:
    client = serve(app)
    response = client.post("/predict", json=ROW)
    assert version_of(response) == "v1" and response.json == {"cultivar": 0}
    assert app.inference.model_refs["wine-clf"] == ("production", {})
    following = client.get("/").json["models"]["wine-clf"]["following"]
    assert following["ref"] == "production" and following["version"] == "v1"


def test_moving_the_alias_switches_the_version_on_check(
    app: hml.HmlApp, versions: dict[str, ModelContainer], store: ModelStore
) -> None:
    client = serve(app)
    assert version_of(client.post("/predict", json=ROW)) == "v1"
    assert [o.status for o in app.inference.reloader.check()] == ["unchanged"]
    store.set_alias("wine-clf", "production", "v2")
    (outcome,) = app.inference.reloader.check()
    assert (outcome.status, outcome.previous, outcome.version) == ("reloaded", "v1", "v2")
    response = client.post("/predict", json=ROW)
    assert version_of(response) == "v2" and response.json == {"cultivar": 1}
    assert response.headers["x-model-digest"] == f"sha256:{versions['v2'].reference.model_sha256}"  # type: ignore[union-attr]
    assert client.get("/").json["models"]["wine-clf"]["version"] == "v2"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'hml_model_reloads_total{model="wine-clf"} 1.0' in metrics
    assert 'hml_model_info{digest="' in metrics and 'version="v2"' in metrics


def test_a_request_in_flight_finishes_on_the_version_it_started_with(
    app: hml.HmlApp, versions: dict[str, ModelContainer], store: ModelStore
) -> None:
    entered, release = threading.Event(), threading.Event()
    answers: list[int] = []

    def gate(answer: int) -> None:
        if not entered.is_set():
            entered.set()
            assert release.wait(10)
        answers.append(answer)

    client = serve(app, gate=gate)
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(client.post("/predict", json=ROW)))
    first.start()
    assert entered.wait(10)  # the first request holds the v1 model, mid-handler
    store.set_alias("wine-clf", "production", "v2")
    assert app.inference.reloader.check()[0].status == "reloaded"
    second = client.post("/predict", json=ROW)  # arrives after the switch
    release.set()
    first.join(10)
    assert version_of(second) == "v2" and second.json == {"cultivar": 1}
    (old,) = results
    assert version_of(old) == "v1" and old.json == {"cultivar": 0}


def test_a_batched_route_answers_each_request_from_the_version_it_started_with(
    app: hml.HmlApp, versions: dict[str, ModelContainer], store: ModelStore
) -> None:
    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        model = inference_app.load_model(ModelContainer("wine-clf"), "production")

        def predict_many(rows: list[Any]) -> list[int]:
            return [int(answer) for answer in model.predict(rows)]

        inference_app.batch(predict_many, name="rows", max_latency_ms=50)

    client = app.inference.build().test_client()
    batcher, reloader = app.inference.batchers["rows"], app.inference.reloader
    answers: dict[str, int] = {}
    old_request_in = threading.Event()

    def old_request() -> None:
        with reloader.pinned():  # started before the switch
            old_request_in.set()
            time.sleep(0.2)  # queued after the switch, beside a new request
            answers["old"] = batcher(ROW["features"])

    thread = threading.Thread(target=old_request)
    thread.start()
    assert old_request_in.wait(10)
    store.set_alias("wine-clf", "production", "v2")
    assert reloader.check()[0].status == "reloaded"
    time.sleep(0.15)
    with reloader.pinned():
        answers["new"] = batcher(ROW["features"])
    thread.join(10)
    assert answers == {"old": 0, "new": 1}
    assert client.get("/").status_code == 200


def test_pinned_state_holds_within_a_block(
    app: hml.HmlApp, versions: dict[str, ModelContainer], store: ModelStore
) -> None:
    serve(app)
    container = app.models["wine-clf"]
    reloader = app.inference.reloader
    with reloader.pinned():
        before = container.reference, container.model
        store.set_alias("wine-clf", "production", "v2")
        reloader.check()
        assert (container.reference, container.model) == before
    assert container.reference.version == "v2"
    assert isinstance(container, ModelContainer) and type(container).__name__ == "ModelContainer"


def test_a_corrupt_version_keeps_the_old_one_serving_until_a_good_one(
    app: hml.HmlApp,
    versions: dict[str, ModelContainer],
    store: ModelStore,
    wine: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = serve(app)
    publish(app, wine, "v3", 2)
    corrupt(app, "v3")
    store.set_alias("wine-clf", "production", "v3")
    with caplog.at_level(logging.ERROR, "hypermodel.serving"):
        (outcome,) = app.inference.reloader.check()
    assert outcome.status == "failed" and "model.joblib has SHA256" in (outcome.error or "")
    assert "version v1 keeps serving" in caplog.text
    assert version_of(client.post("/predict", json=ROW)) == "v1"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    details = ready.json["details"]["wine-clf"]
    assert details["version"] == "v1" and details["reload_failures"] == 1
    assert "re-publish the model" in details["last_error"] and details["last_failure"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'hml_model_reload_failures_total{model="wine-clf"} 1.0' in metrics
    assert 'hml_model_reload_failing{model="wine-clf"} 1.0' in metrics
    assert "hml_model_last_reload_timestamp_seconds" in metrics
    app.inference.reloader.check()  # still broken: counted again, still v1
    assert client.get("/readyz").json["details"]["wine-clf"]["reload_failures"] == 2

    publish(app, wine, "v4", 2)
    store.set_alias("wine-clf", "production", "v4")
    assert app.inference.reloader.check()[0].status == "reloaded"
    response = client.post("/predict", json=ROW)
    assert version_of(response) == "v4" and response.json == {"cultivar": 2}
    details = client.get("/readyz").json["details"]["wine-clf"]
    assert "last_error" not in details and details["reloads"] == 1
    assert 'hml_model_reload_failing{model="wine-clf"} 0.0' in client.get("/metrics").get_data(
        as_text=True
    )


def test_a_bucket_that_goes_away_keeps_the_loaded_version_serving(
    app: hml.HmlApp, versions: dict[str, ModelContainer], store: ModelStore
) -> None:
    client = serve(app)
    bucket = Path(app.storage().url.removeprefix("file://"))
    store.set_alias("wine-clf", "production", "v2")
    moved = bucket.with_name(bucket.name + "-away")
    bucket.rename(moved)  # the bucket is gone while the server runs
    try:
        (outcome,) = app.inference.reloader.check()
        assert outcome.status == "failed" and outcome.version == "v1"
        assert version_of(client.post("/predict", json=ROW)) == "v1"
        assert client.get("/readyz").status_code == 200
    finally:
        moved.rename(bucket)
    assert app.inference.reloader.check()[0].status == "reloaded"  # back: the move is taken
    assert version_of(client.post("/predict", json=ROW)) == "v2"


def test_a_missing_version_and_a_pinned_digest_are_refused(
    app: hml.HmlApp,
    versions: dict[str, ModelContainer],
    store: ModelStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest = versions["v1"].reference.model_sha256  # type: ignore[union-attr]
    monkeypatch.setenv("HML_MODEL_SHA256_WINE_CLF", f"sha256:{digest}")
    client = serve(app)
    store.set_alias("wine-clf", "production", "v2")
    (outcome,) = app.inference.reloader.check()
    assert outcome.status == "failed" and "as pinned by $HML_MODEL_SHA256_WINE_CLF" in (
        outcome.error or ""
    )
    monkeypatch.delenv("HML_MODEL_SHA256_WINE_CLF")
    root = Path(app.storage().url.removeprefix("file://"))
    (root / "models/wine-clf/v2/model.joblib").unlink()
    (outcome,) = app.inference.reloader.check()
    assert outcome.status == "failed" and "is missing" in (outcome.error or "")
    assert version_of(client.post("/predict", json=ROW)) == "v1"


def test_latest_is_followed_and_a_version_is_not(
    app: hml.HmlApp, versions: dict[str, ModelContainer], wine: Any
) -> None:
    client = serve(app, ref="latest")
    assert version_of(client.post("/predict", json=ROW)) == "v2"
    publish(app, wine, "v3", 2)
    assert app.inference.reloader.check()[0].status == "reloaded"
    assert version_of(client.post("/predict", json=ROW)) == "v3"
    assert is_moving("latest", "v3") and is_moving("production", "v1")
    assert not is_moving("v1", "v1") and not is_moving("models/wine-clf/v1/reference.json", "v1")


def test_the_command_line_ref_replaces_the_initialisers(
    app: hml.HmlApp, versions: dict[str, ModelContainer], wine: Any
) -> None:
    app.inference.configure(models={"wine-clf": "v2"})
    client = serve(app, ref="latest")  # the initialiser asks for latest; v2 is pinned instead
    publish(app, wine, "v3", 2)
    assert version_of(client.post("/predict", json=ROW)) == "v2"
    assert app.inference.reloader.watches == {}
    assert app.inference.reloader.check() == []


def serve_loaded_by_hand(app: hml.HmlApp, ref: str) -> Any:
    """The seeds' way: the container is registered with the app and loaded by hand inside the
    initialiser (``model_container.load()``), not through ``inference_app.load_model``."""
    container = ModelContainer("wine-clf")
    app.register_model("wine-clf", container)

    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        container.load(ref)

        @inference_app.route("/predict")
        def predict(payload: Any) -> Any:
            return {"cultivar": int(container.predict([payload["features"]])[0])}

    return app.inference.build().test_client()


def test_a_model_loaded_by_hand_takes_the_command_line_ref(
    app: hml.HmlApp, versions: dict[str, ModelContainer], wine: Any
) -> None:
    app.inference.configure(models={"wine-clf": "v2"})
    client = serve_loaded_by_hand(app, "latest")
    publish(app, wine, "v3", 2)
    assert version_of(client.post("/predict", json=ROW)) == "v2"
    assert app.inference.model_refs["wine-clf"][0] == "v2"
    assert app.inference.reloader.check() == []  # a version: pinned, not followed


def test_a_model_loaded_by_hand_by_alias_is_followed(
    app: hml.HmlApp, versions: dict[str, ModelContainer], store: ModelStore
) -> None:
    client = serve_loaded_by_hand(app, "production")
    assert version_of(client.post("/predict", json=ROW)) == "v1"
    store.set_alias("wine-clf", "production", "v2")
    assert app.inference.reloader.check()[0].status == "reloaded"
    assert version_of(client.post("/predict", json=ROW)) == "v2"


def test_a_container_loaded_outside_an_initialiser_is_loaded_as_asked(
    app: hml.HmlApp, versions: dict[str, ModelContainer]
) -> None:
    app.inference.configure(models={"wine-clf": "v2"})  # only for what the server loads
    container = ModelContainer("wine-clf").load("v1", app.storage())
    assert container.reference.version == "v1"
    assert app.inference.model_refs == {}


def test_an_override_for_a_model_the_app_does_not_load_is_an_error(
    app: hml.HmlApp, versions: dict[str, ModelContainer]
) -> None:
    app.inference.configure(models={"price-model": "production"})
    with pytest.raises(DeclarationError, match=r"--model price-model=.*loads no model named"):
        serve(app)


def test_admin_reload_needs_the_token_and_never_shows_it(
    app: hml.HmlApp,
    versions: dict[str, ModelContainer],
    store: ModelStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = serve(app)
    missing = client.post("/-/reload")
    assert missing.status_code == 404 and missing.json["error"] == "not found"

    app.inference.configure(admin_token=TOKEN)
    store.set_alias("wine-clf", "production", "v2")
    with caplog.at_level(logging.DEBUG):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            refused = client.post("/-/reload", headers=headers)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"]
            assert "HML_ADMIN_TOKEN" in refused.json["detail"]
        assert version_of(client.post("/predict", json=ROW)) == "v1"
        unknown = client.post(
            "/-/reload?model=price-model", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert unknown.status_code == 404 and "wine-clf" in unknown.json["detail"]
        done = client.post("/-/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert done.status_code == 200
        assert done.json["models"]["wine-clf"] == {
            "ref": "production",
            "status": "reloaded",
            "version": "v2",
            "previous": "v1",
        }
        again = client.post(
            "/-/reload?model=wine-clf", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert again.json["models"]["wine-clf"]["status"] == "unchanged"
        assert client.get("/-/reload").status_code == 405
        for path in ("/", "/readyz", "/metrics"):
            assert TOKEN not in client.get(path).get_data(as_text=True)
    assert TOKEN not in caplog.text
    assert version_of(client.post("/predict", json=ROW)) == "v2"


def test_admin_reload_reports_a_failure_as_409(
    app: hml.HmlApp, versions: dict[str, ModelContainer], store: ModelStore, wine: Any
) -> None:
    client = serve(app)
    app.inference.configure(admin_token=TOKEN)
    publish(app, wine, "v3", 2)
    corrupt(app, "v3")
    store.set_alias("wine-clf", "production", "v3")
    failed = client.post("/-/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert failed.status_code == 409
    assert "previous versions keep serving" in failed.json["error"]
    assert failed.json["models"]["wine-clf"]["status"] == "failed"
    assert failed.json["models"]["wine-clf"]["version"] == "v1"


def test_the_token_is_compared_whole() -> None:
    assert check_admin_token(f"Bearer {TOKEN}", TOKEN)
    assert check_admin_token(f"bearer {TOKEN}", TOKEN)
    for header in (None, "", TOKEN, f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", "Bearer "):
        assert not check_admin_token(header, TOKEN)


def test_the_poll_thread_follows_the_alias(
    app: hml.HmlApp, versions: dict[str, ModelContainer], store: ModelStore
) -> None:
    app.inference.configure(poll_seconds=0.05)

    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        inference_app.load_model(ModelContainer("wine-clf"), "production")

    startup = Startup(app.inference)
    startup.start()
    try:
        container = app.models["wine-clf"]
        assert container.reference.version == "v1"
        store.set_alias("wine-clf", "production", "v2")
        deadline = time.monotonic() + 10
        while container.reference.version != "v2" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert container.reference.version == "v2"
        assert int(container.predict([ROW["features"]])[0]) == 1
    finally:
        startup.stop()
    assert app.inference.reloader._thread is None


def test_no_poll_thread_when_disabled_or_nothing_moves(
    app: hml.HmlApp, versions: dict[str, ModelContainer]
) -> None:
    app.inference.configure(poll_seconds=0)

    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        inference_app.load_model(ModelContainer("wine-clf"), "production")

    startup = Startup(app.inference)
    startup.start()
    assert app.inference.reloader.watches and app.inference.reloader._thread is None
    startup.stop()


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"poll_seconds": -1}, "poll seconds must be 0 or more"),
        ({"drift_threshold": 0}, "drift threshold must be above 0"),
        ({"drift_min_samples": 0}, "minimum sample count must be 1 or more"),
        ({"models": {"wine-clf": " "}}, "needs a reference to load"),
        ({"models": {"no/slash": "v1"}}, "model"),
    ],
)
def test_settings_are_checked(app: hml.HmlApp, settings: dict[str, Any], match: str) -> None:
    with pytest.raises(Exception, match=match):
        app.inference.configure(**settings)


def test_run_prod_passes_its_model_options(
    app: hml.HmlApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypermodel.serving import server

    served: list[hml.HmlInferenceApp] = []
    monkeypatch.setattr(
        server, "serve_prod", lambda inference_app, *a, **k: served.append(inference_app)
    )
    monkeypatch.setenv("HML_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("HML_MODEL_POLL_SECONDS", "5")
    args = ["inference", "run-prod", "--model", "wine-clf=production", "--model", "price=v3"]
    result = CliRunner().invoke(app.cli(), [*args, "--drift-threshold", "2.5"])
    assert result.exit_code == 0, result.output
    (inference_app,) = served
    assert inference_app.ref_overrides == {"wine-clf": "production", "price": "v3"}
    assert inference_app.model_poll_seconds == 5.0 and inference_app.drift_threshold == 2.5
    assert inference_app.admin_token == TOKEN


@pytest.mark.parametrize("command", ["run-prod", "run-dev"])
def test_a_model_option_that_is_not_name_equals_ref_is_refused(
    app: hml.HmlApp, command: str
) -> None:
    result = CliRunner().invoke(app.cli(), ["inference", command, "--model", "wine-clf"])
    assert result.exit_code == 2
    assert "'wine-clf' is not NAME=REF: write e.g. --model wine-clf=production" in result.output
