"""The standard protocols on `run-prod` (waitress) on a real socket: a KServe v2 request and an
MLflow /invocations request in every format answer what `container.predict` answers on the
same rows; Hypergol's `/` and `/output`; hostile bodies are 4xx JSON, never a 5xx."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from hypermodel import hml
from hypermodel.serving.model import ModelContainer
from tests.support import REPO, free_port, unavailable, wait_for_port
from tests.unit.serving.protocol_models import feature_names, publish_numeric, rows

APP = textwrap.dedent(
    """
    from hypermodel import hml
    from hypermodel.serving.hypergol_contract import output_route
    from hypermodel.serving.model import ModelContainer

    app = hml.HmlApp("proto", package_entrypoint="proto")


    @hml.inference(app.inference)
    def init(inference_app):
        model = inference_app.load_model(ModelContainer("wine-num"))
        output_route(inference_app, model)


    if __name__ == "__main__":
        app.start()
    """
)


def _call(
    url: str, raw: bytes | None, content_type: str = "application/json"
) -> tuple[int, dict[str, str], Any]:
    if raw is not None and len(raw) > 1024 * 1024:
        status, headers, body = _send_large(url, raw, content_type)
    else:
        request = urllib.request.Request(url, data=raw, headers={"content-type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                status, headers = response.status, dict(response.headers.items())
                body = response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, headers, body = exc.code, dict(exc.headers.items()), exc.read()
    lowered = {k.lower(): v for k, v in headers.items()}
    parsed = (
        json.loads(body)
        if lowered.get("content-type", "").startswith("application/json") and body.strip()
        else body
    )
    return status, lowered, parsed


def _send_large(url: str, raw: bytes, content_type: str) -> tuple[int, dict[str, str], bytes]:
    """POST a body the server may refuse before reading it all: it answers (413) and closes, so
    sending the rest can fail with a broken pipe; the answer is read all the same."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    try:
        conn.putrequest("POST", parts.path)
        conn.putheader("content-type", content_type)
        conn.putheader("content-length", str(len(raw)))
        conn.endheaders()
        try:
            for start in range(0, len(raw), 64 * 1024):
                conn.send(raw[start : start + 64 * 1024])
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused early: the answer is already on its way
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ModelContainer]]:
    tmp = tmp_path_factory.mktemp("protocols")
    root = tmp / "bucket"
    mc = publish_numeric(hml.HmlApp("proto", root=str(root)))
    (tmp / "proto_app.py").write_text(APP)
    port = free_port()
    log = tmp / "server.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "proto_app.py",
            "inference",
            "run-prod",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=tmp,
        env={**os.environ, "HML_ROOT": str(root), "PYTHONPATH": str(REPO)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc, timeout=60)
    except (RuntimeError, TimeoutError) as exc:
        proc.kill()
        proc.wait()
        unavailable(f"inference server did not start: {exc}: {log.read_text()[-2000:]}")
    try:
        yield f"http://127.0.0.1:{port}", mc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _records() -> list[dict[str, Any]]:
    return [{f: r[f] for f in feature_names()} for r in rows(10, start=70)]


def _expected(mc: ModelContainer) -> list[Any]:
    return mc.predict(np.asarray([[r[f] for f in feature_names()] for r in _records()])).tolist()


def test_v2_infer_matches_predict(server: tuple[str, ModelContainer]) -> None:
    url, mc = server
    records = _records()
    per_feature = {
        "id": "a",
        "inputs": [
            {
                "name": f,
                "shape": [len(records)],
                "datatype": "FP64",
                "data": [r[f] for r in records],
            }
            for f in feature_names()
        ],
    }
    matrix = [[r[f] for f in feature_names()] for r in records]
    two_d = {
        "inputs": [{"name": "x", "shape": [len(records), 13], "datatype": "FP64", "data": matrix}]
    }
    for body in (per_feature, two_d):
        status, headers, answer = _call(
            f"{url}/v2/models/wine-num/infer", json.dumps(body).encode()
        )
        assert status == 200, answer
        assert answer["outputs"][0]["data"] == _expected(mc)
        assert headers["x-model-long-name"] == mc.reference.long_name  # type: ignore[union-attr]
    assert _call(f"{url}/v2/health/ready", None)[2] == {"ready": True}


def test_mlflow_every_format_matches_predict(server: tuple[str, ModelContainer]) -> None:
    url, mc = server
    records = _records()
    names = feature_names()
    matrix = [[r[f] for f in names] for r in records]
    bodies = [
        {"dataframe_split": {"columns": names, "data": matrix}},
        {"dataframe_records": records},
        {"instances": matrix},
        {"instances": records},
        {"inputs": matrix},
        {"inputs": {f: [r[f] for r in records] for f in names}},
    ]
    for body in bodies:
        status, _, answer = _call(f"{url}/invocations", json.dumps(body).encode())
        assert status == 200, (body.keys(), answer)
        assert answer == {"predictions": _expected(mc)}
    text = ",".join(names) + "\n" + "\n".join(",".join(map(str, row)) for row in matrix) + "\n"
    status, _, answer = _call(f"{url}/invocations", text.encode(), "text/csv")
    assert status == 200 and answer == {"predictions": _expected(mc)}
    assert _call(f"{url}/ping", None)[0] == 200


def test_hypergol_contract(server: tuple[str, ModelContainer]) -> None:
    url, mc = server
    status, headers, index = _call(f"{url}/", None)
    assert status == 200 and index["model"] == mc.reference.long_name  # type: ignore[union-attr]
    status, headers, answer = _call(f"{url}/output", json.dumps(_records()).encode())
    assert status == 200 and answer == _expected(mc)
    assert headers["x-model-long-name"] == mc.reference.long_name  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "raw", "content_type"),
    [
        (
            "/v2/models/wine-num/infer",
            b'{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1]}]}',
            "application/json",
        ),
        ("/v2/models/wine-num/infer", b"[" * 100_000, "application/json"),
        (
            "/v2/models/wine-num/infer",
            b'{"inputs": [{"name": "x", "shape": [1, 13], "datatype": "FP64", "data": [NaN]}]}',
            "application/json",
        ),
        ("/v2/models/nope/infer", b"{}", "application/json"),
        ("/invocations", b"\x00\xff" * 1000, "application/json"),
        ("/invocations", b"a,b\n1", "text/plain"),
        ("/invocations", b"x" * (3 * 1024 * 1024), "text/csv"),
        ("/output", b'"one"', "application/json"),
    ],
)
def test_hostile_bodies_are_4xx_json(
    server: tuple[str, ModelContainer], path: str, raw: bytes, content_type: str
) -> None:
    url, _ = server
    status, _, answer = _call(f"{url}{path}", raw, content_type)
    assert 400 <= status < 500, answer
    assert isinstance(answer, dict) and isinstance(answer["error"], str)
