"""`run-prod` serving a model by alias on a real waitress socket, under load, while the alias
moves: no request fails, the lineage headers switch from v1 to v2; a corrupted v3 is refused and
v2 keeps serving, with the reason on /readyz and /metrics; drift of the live inputs shows on
/metrics."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hypermodel import hml
from hypermodel.models.store import ModelStore
from hypermodel.serving.model import ModelContainer
from tests.support import REPO, free_port, unavailable, wait_for_port

TOKEN = "integration-admin-token-7f3a91"
APP = textwrap.dedent(
    """
    from hypermodel import hml
    from hypermodel.data.model import BaseData
    from hypermodel.serving.model import ModelContainer

    app = hml.HmlApp("svc", package_entrypoint="svc")


    class Sample(BaseData):
        alcohol: float
        malic_acid: float


    @hml.inference(app.inference)
    def init(inference_app):
        model = inference_app.load_model(ModelContainer("clf"), "production")

        @inference_app.route("/predict", input=Sample)
        def predict(sample):
            return {"cultivar": int(model.predict([[sample.alcohol, sample.malic_acid]])[0])}


    if __name__ == "__main__":
        app.start()
    """
)


def _publish(app: hml.HmlApp, version: str, answer: int) -> None:
    import pandas as pd
    from sklearn.dummy import DummyClassifier

    frame = pd.DataFrame({"alcohol": [12.0, 13.0, 14.0], "malic_acid": [1.0, 2.0, 3.0]})
    mc = ModelContainer("clf")
    mc.model = DummyClassifier(strategy="constant", constant=answer).fit(frame.values, [0, 1, 2])
    mc.analyze_distributions(frame, numeric=["alcohol", "malic_acid"])
    mc.publish(app, version=version)


def _call(
    url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        headers={"content-type": "application/json", **(headers or {})},
        method="POST" if data is not None or headers else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


class Load:
    """Requests in a loop on two threads; every answer's status and model version recorded."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[int, str, Any]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self.by_client: list[list[str]] = [[], []]  # each client's versions, in its order
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(2)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def _run(self, client: int) -> None:
        while not self._stop.is_set():
            try:
                status, headers, body = _call(
                    f"{self.url}/predict", {"alcohol": 25.0, "malic_acid": 2.0}
                )
            except OSError as exc:  # a refused or reset connection is a failed request too
                self.errors.append(repr(exc))
                continue
            version = headers.get("x-model-version", "")
            self.answers.append((status, version, json.loads(body)))
            self.by_client[client].append(version)

    def wait_for(self, version: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(v == version for _, v, _ in self.answers[-20:]):
                return
            time.sleep(0.05)
        raise AssertionError(f"no answer from {version}: last {self.answers[-5:]}")

    def versions(self) -> list[list[str]]:
        """The versions answering each client, in its order, each run collapsed to one entry.
        (Across clients the order of completion may interleave at the switch: a request
        started before it answers from the old version.)"""
        collapsed: list[list[str]] = []
        for seen in self.by_client:
            runs: list[str] = []
            for version in seen:
                if not runs or runs[-1] != version:
                    runs.append(version)
            collapsed.append(runs)
        return collapsed


@contextlib.contextmanager
def run_prod(
    tmp_path: Path, production: str, args: list[str], env: dict[str, str] | None = None
) -> Iterator[tuple[str, hml.HmlApp, Path]]:
    """v1 and v2 published (answering 0 and 1), the alias 'production' at ``production``, and
    the app's run-prod started with ``args``: (its URL, the app, its log)."""
    root = tmp_path / "bucket"
    app = hml.HmlApp("svc", root=str(root))
    _publish(app, "v1", 0)
    _publish(app, "v2", 1)
    ModelStore(app.storage()).set_alias("clf", "production", production)
    script = tmp_path / "svc_app.py"
    script.write_text(APP)
    port = free_port()
    log_path = tmp_path / "server.log"
    command = [sys.executable, str(script), "inference", "run-prod", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*command, "--port", str(port), *args],
        cwd=tmp_path,
        env={**os.environ, "HML_ROOT": str(root), "PYTHONPATH": str(REPO), **(env or {})},
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_for_port(port, proc, timeout=60)
        except (RuntimeError, TimeoutError) as exc:
            unavailable(f"inference server did not start: {exc}: {log_path.read_text()[-2000:]}")
        yield f"http://127.0.0.1:{port}", app, log_path  # a failure from here on is the test's
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, hml.HmlApp, Path]]:
    env = {"HML_ADMIN_TOKEN": TOKEN, "HML_MODEL_POLL_SECONDS": "0.5"}
    with run_prod(tmp_path, "v1", ["--threads", "4", "--drift-min-samples", "20"], env) as started:
        yield started


def test_alias_moves_under_load_without_a_failed_request(
    server: tuple[str, hml.HmlApp, Path],
) -> None:
    url, app, log_path = server
    store = ModelStore(app.storage())
    with Load(url) as load:
        load.wait_for("v1")
        store.set_alias("clf", "production", "v2")  # the poll (0.5 s) finds it
        load.wait_for("v2")

        _publish(app, "v3", 2)
        model_file = Path(app.storage().url.removeprefix("file://")) / "models/clf/v3/model.joblib"
        model_file.write_bytes(b"corrupted after publishing")
        store.set_alias("clf", "production", "v3")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        status, _, body = _call(f"{url}/-/reload", headers=auth)  # no wait for the poll
        assert status == 409, body
        outcome = json.loads(body)["models"]["clf"]
        assert outcome["status"] == "failed" and outcome["version"] == "v2"
        time.sleep(1.5)  # the poll keeps failing too, while v2 answers
        seen_after_failure = len(load.answers)

    assert load.errors == [] and len(load.answers) > 50
    assert all(status == 200 for status, _, _ in load.answers), load.answers[-5:]
    # each client: switched once, never back, never to v3
    assert all(runs in (["v1", "v2"], ["v2"]) for runs in load.versions()), load.versions()
    assert ["v1", "v2"] in load.versions()
    assert {(v, a["cultivar"]) for _, v, a in load.answers} == {("v1", 0), ("v2", 1)}
    assert seen_after_failure > 0

    status, _, body = _call(f"{url}/readyz")
    ready = json.loads(body)
    assert status == 200 and ready["status"] == "ready"
    details = ready["details"]["clf"]
    assert details["ref"] == "production" and details["version"] == "v2"
    assert details["reload_failures"] >= 2 and "model.joblib has SHA256" in details["last_error"]

    metrics = _call(f"{url}/metrics")[2].decode()
    failures = [
        line for line in metrics.splitlines() if line.startswith("hml_model_reload_failures_total")
    ]
    assert failures and float(failures[0].split()[-1]) >= 2
    assert 'hml_model_reload_failing{model="clf"} 1.0' in metrics
    assert 'hml_model_reloads_total{model="clf"} 1.0' in metrics
    assert 'version="v2"' in metrics and "hml_model_info" in metrics
    # every request sent alcohol 25 against a training range of 12..14: drift on live traffic
    assert 'hml_drift_detected{model="clf",version="v2"} 1.0' in metrics
    assert 'hml_drift_out_of_range_ratio{feature="alcohol",model="clf",version="v2"} 1.0' in metrics

    log = log_path.read_text()
    assert "model 'clf' now serves version v2" in log
    assert "reloading 'production' failed, version v2 keeps serving" in log
    assert "drift: model 'clf' version" in log and "feature 'alcohol'" in log
    assert TOKEN not in log


def test_a_pinned_version_does_not_follow(tmp_path: Path) -> None:
    with run_prod(tmp_path, "v2", ["--model", "clf=v1"]) as (url, _, _):
        status, headers, _ = _call(f"{url}/predict", {"alcohol": 13.0, "malic_acid": 2.0})
        assert status == 200 and headers["x-model-version"] == "v1"
        assert _call(f"{url}/-/reload", headers={"Authorization": "Bearer x"})[0] == 404
        assert "details" not in json.loads(_call(f"{url}/readyz")[2])
