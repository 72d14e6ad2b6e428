"""`<app> inference run-prod` (waitress) and `run-dev` on a real socket, driven with urllib."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hypermodel import hml
from hypermodel.serving.model import ModelContainer
from tests.support import REPO, free_port, unavailable, wait_for_port

APP = textwrap.dedent(
    """
    from hypermodel import hml
    from hypermodel.data.model import BaseData
    from hypermodel.serving.model import ModelContainer

    app = hml.HmlApp("svc", package_entrypoint="svc")


    class Wine(BaseData):
        features: list[float]


    class Prediction(BaseData):
        cultivar: int


    @hml.inference(app.inference)
    def init(inference_app):
        model = inference_app.load_model(ModelContainer("clf"))

        @inference_app.route("/predict", input=Wine, output=Prediction, model="clf")
        def predict(wine):
            if wine.features[0] < 0:
                raise RuntimeError("negative alcohol: internal detail")
            return Prediction(cultivar=int(model.predict([wine.features])[0]))


    if __name__ == "__main__":
        app.start()
    """
)


def _call(
    url: str, body: Any = None, raw: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
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


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelContainer]:
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    data = load_wine()
    root = tmp_path_factory.mktemp("serving") / "bucket"
    mc = ModelContainer("clf")
    mc.model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(data.data, data.target)
    mc.add_training_dataset("d" * 40)
    mc.publish(hml.HmlApp("svc", root=str(root)))
    return root, mc


def _start(root: Path, tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    script = tmp / "svc_app.py"
    script.write_text(APP)
    port = free_port()
    env = {**os.environ, "HML_ROOT": str(root), "PYTHONPATH": str(REPO)}
    log = (tmp / f"server-{port}.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            "inference",
            *args,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=tmp,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc, timeout=60)
    except (RuntimeError, TimeoutError) as exc:
        proc.kill()
        proc.wait()
        unavailable(
            f"inference server did not start: {exc}: {(tmp / f'server-{port}.log').read_text()[-2000:]}"
        )
    return proc, port


@pytest.fixture(scope="module")
def prod(
    published: tuple[Path, ModelContainer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ModelContainer, Path]]:
    root, mc = published
    tmp = tmp_path_factory.mktemp("prod")
    proc, port = _start(root, tmp, "run-prod", "--threads", "4")
    yield f"http://127.0.0.1:{port}", mc, tmp
    proc.terminate()
    proc.wait(timeout=10)


def test_prediction_over_http_carries_lineage(prod: tuple[str, ModelContainer, Path]) -> None:
    from sklearn.datasets import load_wine

    url, mc, _ = prod
    row = [float(v) for v in load_wine().data[0]]
    status, headers, body = _call(f"{url}/predict", {"features": row})
    assert status == 200, body
    assert json.loads(body) == {"cultivar": int(mc.predict([row])[0])}
    ref = mc.reference
    assert ref is not None
    assert headers["x-model-long-name"] == ref.long_name
    assert headers["x-model-digest"] == f"sha256:{ref.model_sha256}"
    assert headers["x-model-dataset"] == "d" * 40
    assert headers["x-model-commit"] == ref.commit
    assert headers["x-model-version"] == ref.version


def test_bad_requests_are_4xx_with_reasons(prod: tuple[str, ModelContainer, Path]) -> None:
    url, _, _ = prod
    status, _, body = _call(f"{url}/predict", raw=b'{"features": [')
    assert status == 400 and json.loads(body)["error"] == "malformed JSON"
    status, _, body = _call(f"{url}/predict", {"features": ["x"]})
    assert status == 422 and json.loads(body)["problems"][0]["loc"] == "features.0"
    status, _, body = _call(f"{url}/predict", {})
    assert status == 422 and json.loads(body)["problems"] == [
        {"loc": "features", "msg": "field required"}
    ]
    status, _, body = _call(f"{url}/predict", raw=b'{"features": [' + b"1.0," * 400_000 + b"1.0]}")
    assert status == 413 and json.loads(body)["error"] == "request body too large"


def test_internal_error_is_500_without_details(prod: tuple[str, ModelContainer, Path]) -> None:
    url, _, tmp = prod
    status, _, body = _call(f"{url}/predict", {"features": [-1.0] * 13})
    assert status == 500
    answer = json.loads(body)
    assert answer["error"] == "internal error" and set(answer) == {"error", "request_id"}
    assert b"internal detail" not in body
    logs = "".join(p.read_text() for p in tmp.glob("server-*.log"))
    assert answer["request_id"] in logs and "internal detail" in logs


def test_probes_index_and_metrics(prod: tuple[str, ModelContainer, Path]) -> None:
    url, mc, _ = prod
    assert _call(f"{url}/livez")[0] == 200
    status, _, body = _call(f"{url}/readyz")
    assert status == 200 and json.loads(body)["models"] == ["clf"]
    index = json.loads(_call(f"{url}/")[2])
    assert index["models"]["clf"]["model_sha256"] == mc.reference.model_sha256  # type: ignore[union-attr]
    assert "/predict" in json.loads(_call(f"{url}/openapi.json")[2])["paths"]
    before = _call(f"{url}/metrics")[2].decode()
    _call(f"{url}/predict", {})
    after = _call(f"{url}/metrics")[2].decode()

    def count(text: str) -> float:
        for line in text.splitlines():
            if (
                line.startswith("hml_http_errors_total{")
                and 'route="/predict"' in line
                and 'status="422"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    assert count(after) == count(before) + 1
    assert "hml_http_request_duration_seconds_bucket" in after


def test_run_dev_serves_the_same_app(
    published: tuple[Path, ModelContainer], tmp_path: Path
) -> None:
    root, _ = published
    proc, port = _start(root, tmp_path, "run-dev", "--no-reload")
    try:
        status, headers, _ = _call(f"http://127.0.0.1:{port}/predict", {"features": [1.0] * 13})
        assert status == 200 and headers["x-model-long-name"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
